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
# premailer copies width, height, text-align and background-color into attributes on any element;
# these are the elements where HTML (and the mail clients that read them) takes each attribute
_ATTRIBUTE_HOSTS = {
    "width": {"img", "table", "td", "th", "col"},
    "height": {"img", "table", "td", "th", "tr"},
    "align": {"table", "tr", "td", "th"},
    "valign": {"tr", "td", "th"},
    "bgcolor": {"body", "table", "tr", "td", "th"},
}
_START_TAG = re.compile(r"<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=/>]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*(/?)>")
_ATTRIBUTE = re.compile(r"\s+([^\s=/>]+)(?:\s*=\s*(\"[^\"]*\"|'[^']*'|[^\s>]+))?")
_BASIC = re.compile(r"\s(?:width|height|align|valign|bgcolor)\s*=", re.IGNORECASE)


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
    return clean_attributes(inliner.transform()), warnings


def clean_attributes(html: str) -> str:
    """Drop the presentational attributes premailer puts where they are invalid (STANDARDS J3):
    `height="auto"` on images, `width`/`bgcolor` on a div; keep them on tables, cells and images."""
    def tag(match: re.Match[str]) -> str:
        name, attrs = match.group(1).lower(), match.group(2)
        if not attrs or not _BASIC.search(attrs):
            return match.group(0)

        def attribute(m: re.Match[str]) -> str:
            key, value = m.group(1).lower(), (m.group(2) or "").strip("\"'").strip()
            if key not in _ATTRIBUTE_HOSTS:
                return m.group(0)
            if name not in _ATTRIBUTE_HOSTS[key]:
                return ""
            # images take pixel counts only; tables and cells a number or a percentage
            if key in ("width", "height") and not re.fullmatch(r"\d+" if name == "img" else r"\d+%?", value):
                return ""
            return m.group(0)

        return f"<{match.group(1)}{_ATTRIBUTE.sub(attribute, attrs)}{match.group(3)}>"

    return _START_TAG.sub(tag, html)
