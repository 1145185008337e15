"""reports + issue.toml -> a composed issue: subject, inlined HTML and text with placeholders."""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from markupsafe import Markup

from mailer.config import Settings
from mailer.errors import ComposeError
from mailer.headers import has_header_trick
from mailer.content.inline import inline_css
from mailer.content.lint import lint_issue
from mailer.content.reports import Report, read_report, render_markdown
from mailer.content.templating import make_environment, render

ISSUE_FILE = "issue.toml"
ISSUE_KEYS = {"subject", "preheader", "date", "template", "text_template", "intro", "reports", "lists",
              "title"}
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


@dataclass(frozen=True)
class IssueSpec:
    """What issue.toml says."""

    subject: str
    title: str
    preheader: str
    date: str
    template: str
    text_template: str
    intro: str
    reports: tuple[Path, ...]
    lists: tuple[str, ...]


def find_issue(settings: Settings, issue: str | Path) -> Path:
    """The issue folder for a path or a bare name under settings.issues_dir."""
    path = Path(issue)
    candidates = [settings.path(str(path)), Path.cwd() / path, settings.path(settings.issues_dir) / path]
    for candidate in candidates:
        if (candidate / ISSUE_FILE).is_file():
            return candidate.resolve()
    for candidate in candidates:
        if candidate.is_dir():
            raise ComposeError(f"{candidate / ISSUE_FILE}: missing (every issue folder needs one; "
                               "see `mailer new-issue`)")
    raise ComposeError(f"{issue}: no such issue folder")


def read_spec(folder: Path) -> IssueSpec:
    """Parse and check issue.toml; every problem names the file and the key."""
    path = folder / ISSUE_FILE
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ComposeError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ComposeError(f"{path}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - ISSUE_KEYS)
    if unknown:
        raise ComposeError(f"{path}: unknown key {unknown[0]!r} (known: {', '.join(sorted(ISSUE_KEYS))})")

    def text(key: str, default: str = "", one_line: bool = True) -> str:
        value = data.get(key, default)
        if isinstance(value, date):
            value = value.isoformat()
        if not isinstance(value, str):
            raise ComposeError(f"{path}: {key!r} must be a string")
        if one_line and has_header_trick(value):
            raise ComposeError(f"{path}: {key!r} contains a line break, control character or encoded word")
        return value.strip()

    subject = text("subject")
    if not subject:
        raise ComposeError(f"{path}: 'subject' is missing or empty")
    if len(subject) > 200:
        raise ComposeError(f"{path}: 'subject' is {len(subject)} characters; keep it under 200")
    reports_dir = folder / "reports"
    names = data.get("reports")
    if names is None:
        files = sorted(p for p in reports_dir.glob("*") if p.is_file() and not p.name.startswith("."))
    elif isinstance(names, list) and all(isinstance(n, str) for n in names):
        files = [reports_dir / n for n in names]
        for listed in files:
            if not listed.is_file():
                raise ComposeError(f"{path}: report {listed.name!r} is listed but {listed} does not exist")
    else:
        raise ComposeError(f"{path}: 'reports' must be a list of file names in reports/")
    lists = data.get("lists", [])
    if isinstance(lists, str):
        lists = [lists]
    if not isinstance(lists, list) or not all(isinstance(x, str) for x in lists):
        raise ComposeError(f"{path}: 'lists' must be a list of list slugs")
    return IssueSpec(
        subject=subject, title=text("title") or subject, preheader=text("preheader"), date=text("date"),
        template=text("template", "issue.html"), text_template=text("text_template", "issue.txt"),
        intro=text("intro", one_line=False), reports=tuple(files), lists=tuple(lists),
    )


def compose_issue(settings: Settings, issue_dir: str | Path) -> ComposedIssue:
    """Read, render, inline and lint one issue; ComposeError on any error."""
    folder = find_issue(settings, issue_dir)
    spec = read_spec(folder)
    if not spec.reports:
        raise ComposeError(f"{folder / 'reports'}: no reports in this issue")
    reports = [read_report(p, folder) for p in spec.reports]
    html_env, text_env = make_environment(settings, html=True), make_environment(settings, html=False)
    intro_html, intro_blocks, intro_links = render_markdown(spec.intro) if spec.intro else ("", [], [])
    context = {
        "group": {"name": settings.group_name, "address": settings.group_address,
                  "website": settings.group_website},
        "issue": {"slug": folder.name, "subject": spec.subject, "title": spec.title,
                  "preheader": spec.preheader, "date": spec.date,
                  "intro_html": Markup(intro_html), "intro_blocks": intro_blocks,
                  "intro_links": intro_links},
        "reports": reports,
        "lang": settings.language,
    }
    wide = render(html_env, spec.template, {**context, "archive": False})
    html, inline_warnings = inline_css(wide)
    archive_html = _strip_personal(html)
    text = re.sub(r"\n{3,}", "\n\n", render(text_env, spec.text_template, context)).strip("\n") + "\n"
    warnings = [w for r in reports for w in r.warnings] + inline_warnings
    errors, lint_warnings = lint_issue(reports, html, text)
    warnings += lint_warnings
    if errors:
        raise ComposeError("\n".join(errors))
    return ComposedIssue(
        slug=folder.name, path=folder, subject=" ".join(spec.subject.split()), preheader=spec.preheader,
        lists=spec.lists, html=html, text=text, archive_html=archive_html,
        content_hash=content_hash(settings, folder, spec), warnings=tuple(warnings),
        report_count=len(reports), reports=tuple(reports),
    )


def content_hash(settings: Settings, folder: Path, spec: IssueSpec | None = None) -> str:
    """sha256 over what the issue is made of: issue.toml, its reports, the templates in use."""
    spec = spec or read_spec(folder)
    digest = hashlib.sha256()
    env = make_environment(settings, html=True)
    files = [folder / ISSUE_FILE, *spec.reports]
    for name in (spec.template, spec.text_template, "base.html"):
        try:
            files.append(Path(env.loader.get_source(env, name)[1]))  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - a missing template is reported by compose itself
            continue
    for f in files:
        digest.update(str(f.name).encode() + b"\0")
        digest.update(f.read_bytes() if f.exists() else b"")
    return digest.hexdigest()


def _strip_personal(html: str) -> str:
    """The web version: drop the blocks the template marks as personal."""
    out = re.sub(re.escape(PERSONAL_START) + r".*?" + re.escape(PERSONAL_END), "", html, flags=re.DOTALL)
    return re.sub(r"__mailer_[a-z_]+__", "", out)
