"""Issue folders without rendering: find one, read its issue.toml, hash what it is made of.

Light on purpose (standard library and the floor only, no Jinja, Markdown or premailer), so
`mailer status` and `mailer schedule list` can name and check an issue without loading the
composer. Also the one home of the template search path, shared with content.templating.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

from mailer.config import Settings
from mailer.errors import ComposeError, InputError, MailerError
from mailer.headers import has_header_trick
from mailer.shipped import TEMPLATES

ISSUE_FILE = "issue.toml"
ISSUE_KEYS = {"subject", "preheader", "date", "template", "text_template", "intro", "reports", "lists",
              "title"}


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


def slugify(title: str) -> str:
    """A folder name from a title: lower-case letters, digits and dashes, at most 60 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:60].strip("-") or "issue"


def slug_problem(slug: str) -> str | None:
    """Why *slug* cannot name an issue folder (None when it can); the rule of `mailer new-issue --slug`."""
    if not slug or slugify(slug) != slug.lower():
        return "use lower-case letters, digits and dashes"
    return None


def create_issue_folder(settings: Settings, slug: str, fill: Callable[[Path], None]) -> Path:
    """issues_dir/<slug>, made whole or not at all: *fill* writes into a staging folder that is then
    renamed. InputError when the folder exists already; MailerError when the disk refuses."""
    target = settings.path(settings.issues_dir) / slug
    if target.exists():
        raise InputError(f"{target}: already exists")
    staging = target.parent / f".{slug}.{secrets.token_hex(4)}.new"
    try:
        staging.mkdir(parents=True)
        fill(staging)
        if target.exists():     # made meanwhile by someone else
            raise InputError(f"{target}: already exists")
        staging.rename(target)
    except OSError as exc:
        raise MailerError(f"{target}: cannot create the issue folder: {exc.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


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


def content_hash(settings: Settings, folder: Path, spec: IssueSpec | None = None) -> str:
    """sha256 over what the issue is made of: issue.toml, its reports, the templates in use."""
    spec = spec or read_spec(folder)
    digest = hashlib.sha256()
    images = folder / "images"
    files = [folder / ISSUE_FILE, *spec.reports,
             *(sorted(p for p in images.rglob("*") if p.is_file()) if images.is_dir() else [])]
    for name in (spec.template, spec.text_template, "base.html"):
        found = find_template_file(settings, name)
        if found is not None:  # a missing template is reported by compose itself
            files.append(found)
    for f in files:
        digest.update(str(f.name).encode() + b"\0")
        digest.update(f.read_bytes() if f.exists() else b"")
    return digest.hexdigest()


def search_path(settings: Settings) -> list[str]:
    """The configured template folders, then the built-in ones."""
    folders = [Path(settings.path(p)) for p in settings.templates_path]
    if TEMPLATES.is_dir() and TEMPLATES not in folders:   # the shipped ones (mailer.shipped) come last
        folders.append(TEMPLATES)
    return [str(f) for f in folders]


def find_template_file(settings: Settings, name: str) -> Path | None:
    """The first file called *name* on the search path (static assets such as the site's CSS)."""
    for folder in search_path(settings):
        candidate = Path(folder, *_template_parts(name))
        if candidate.is_file():
            return candidate
    return None


def _template_parts(name: str) -> list[str]:
    """A template name as path parts, refusing `..` like Jinja's loader does."""
    parts = [p for p in name.split("/") if p and p != "."]
    if ".." in parts or any("\\" in p for p in parts):
        return ["\0invalid"]
    return parts
