"""reports + issue.toml -> a composed issue: subject, inlined HTML and text with placeholders."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup

from mailer.config import Settings
from mailer.errors import ComposeError
from mailer.content.folders import content_hash, find_issue, read_spec
from mailer.content.images import (ImageCheck, IssueImage, check_image, check_images, is_local, link_images,
                                   media_url)
from mailer.content.inline import inline_css
from mailer.content.lint import lint_issue
from mailer.content.reports import Report, read_report, render_markdown
from mailer.content.templating import make_environment, render

PERSONAL_START, PERSONAL_END = "<!--personal-->", "<!--/personal-->"


@dataclass(frozen=True)
class ComposedIssue:
    """One edition, rendered and inlined once; personalised later by mailer.content.personalize."""

    slug: str                       # the issue folder's name
    path: Path                      # the issue folder
    subject: str                    # clean one-line subject (header-safe)
    preheader: str
    lists: tuple[str, ...]          # list slugs named in issue.toml (may be empty)
    html: str                       # inlined HTML holding __mailer_<key>__ placeholders
    text: str                       # plain text (wrapped at 72) holding the same placeholders
    archive_html: str               # the web version: no personal data, no placeholders
    content_hash: str               # sha256 over issue.toml, reports and templates used
    warnings: tuple[str, ...] = field(default_factory=tuple)
    report_count: int = 0
    reports: tuple[Report, ...] = field(default_factory=tuple, compare=False, repr=False)
    images: tuple[IssueImage, ...] = field(default_factory=tuple)   # local images, published on preview/send


def compose_issue(settings: Settings, issue_dir: str | Path, *, online: bool = True) -> ComposedIssue:
    """Read, render, inline and lint one issue; ComposeError on any error. *online* False for a mail
    that has no web version (a welcome mail): the templates then leave out their view-online links."""
    folder = find_issue(settings, issue_dir)
    spec = read_spec(folder)
    if not spec.reports:
        raise ComposeError(f"{folder / 'reports'}: no reports in this issue")
    reports = [read_report(p, folder, settings.language) for p in spec.reports]
    found = ImageCheck({}, [], [])
    for report in reports:
        check_images(report.html, settings, folder, report.path.name, found)
        if report.image and is_local(report.image):
            image = check_image(settings, folder, report.image, report.path.name, found)
            report.image = media_url(settings, folder.name, image.name) if image else ""
    html_env, text_env = make_environment(settings, html=True), make_environment(settings, html=False)
    intro_html, intro_blocks, intro_links = render_markdown(spec.intro) if spec.intro else ("", [], [])
    context = {
        "group": {"name": settings.group_name, "address": settings.group_address,
                  "website": settings.group_website},
        "issue": {"slug": folder.name, "subject": spec.subject, "title": spec.title,
                  "preheader": spec.preheader, "date": spec.date,
                  "intro_html": Markup(intro_html), "intro_blocks": intro_blocks,
                  "intro_links": intro_links, "online": online},
        "reports": reports,
        "lang": settings.language,
        "dir": settings.text_direction,
    }
    wide = render(html_env, spec.template, {**context, "archive": False})
    html, inline_warnings = inline_css(wide)
    html = link_images(html, settings, folder, found)
    archive_html = _strip_personal(html)
    text = re.sub(r"\n{3,}", "\n\n", render(text_env, spec.text_template, context)).strip("\n") + "\n"
    warnings = [w for r in reports for w in r.warnings] + inline_warnings + found.warnings
    errors, lint_warnings = lint_issue(reports, html, text, spec.template,
                                       own_media=media_url(settings, folder.name, ""))
    errors = found.errors + errors
    warnings += lint_warnings
    if errors:
        raise ComposeError("\n".join(errors))
    return ComposedIssue(
        slug=folder.name, path=folder, subject=" ".join(spec.subject.split()), preheader=spec.preheader,
        lists=spec.lists, html=html, text=text, archive_html=archive_html,
        content_hash=content_hash(settings, folder, spec), warnings=tuple(warnings),
        report_count=len(reports), reports=tuple(reports), images=tuple(found.images.values()),
    )


def _strip_personal(html: str) -> str:
    """The web version: drop the blocks the template marks as personal."""
    out = re.sub(re.escape(PERSONAL_START) + r".*?" + re.escape(PERSONAL_END), "", html, flags=re.DOTALL)
    return re.sub(r"__mailer_[a-z_]+__", "", out)
