"""CSS inlining with premailer: the one place premailer is imported. Once per issue.

premailer (with cssutils, requests and lxml's CSS selectors) takes longer to import than the
rest of a command, so it is imported in inline_css, when something is inlined, not with this
module: `mailer --help` and the commands that compose nothing never load it.
"""

from __future__ import annotations

import logging
import re

# external stylesheets are never fetched (STANDARDS D3) and never left for mail clients to load
_STYLESHEET_LINK = re.compile(r"<link\b[^>]*\brel\s*=\s*[\"']?stylesheet[^>]*>", re.IGNORECASE)


def inline_css(html: str) -> tuple[str, list[str]]:
    """Inline the <style> rules into style attributes; return the HTML and warnings.

    @media rules stay in a <style> block with their !important (STANDARDS H1).
    No network or file access (D3): external stylesheets are removed with a warning.
    """
    from premailer import Premailer

    warnings = []
    if _STYLESHEET_LINK.search(html):
        warnings.append("external stylesheet links were removed: put CSS in a <style> block")
        html = _STYLESHEET_LINK.sub("", html)
    inliner = Premailer(
        html,
        allow_network=False,
        allow_loading_external_files=False,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        disable_validation=True,
        disable_leftover_css=False,
        cssutils_logging_level=logging.CRITICAL,
        cssutils_logging_handler=logging.NullHandler(),
    )
    return inliner.transform(), warnings
