"""What the desk shows and changes of the issue folders: their status (draft, scheduled, sending,
sent), a new folder, and issue.toml's subject, preheader, intro and lists.

issue.toml is rewritten with tomlkit, so its comments and every other key stay as they were, and
replaced whole (a temporary file renamed over it). An issue that is being sent or was sent cannot
change (IssueLocked): what went out is what its folder says. Reports and images: mailer.desk.issuefiles.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Iterator

import tomlkit

from mailer.config import Settings
from mailer.content.folders import ISSUE_FILE, IssueSpec, create_issue_folder, read_spec, slug_problem
from mailer.db import Database
from mailer.errors import InputError, MailerError
from mailer.headers import has_header_trick
from mailer.models import ScheduleStatus, SendStatus
from mailer.scheduling.plans import list_schedules
from mailer.sending.ledger.reads import send_statuses_by_issue

ORDER = ("sending", "scheduled", "sent", "draft")
LOCKED = ("sending", "sent")
FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
INTRO_MAX = 20_000


class IssueFieldError(InputError):
    """A form field the issue cannot take (422); `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class IssueExists(InputError):
    """The slug names a folder that exists already (409)."""


class IssueLocked(InputError):
    """The issue is being sent or was sent: its folder no longer changes (409)."""


class NoSuchIssue(InputError):
    """No issue folder by that name (404)."""


@dataclass(frozen=True)
class IssueRow:
    slug: str
    subject: str
    date: str
    status: str          # one of ORDER
    problem: str = ""    # issue.toml cannot be read: what is wrong


def issue_folders(settings: Settings) -> list[Path]:
    """The folders under issues_dir holding an issue.toml, by name."""
    base = settings.path(settings.issues_dir)
    if not base.is_dir():
        return []
    return sorted((p for p in base.iterdir() if (p / ISSUE_FILE).is_file()), key=lambda p: p.name)


def _status(send_statuses: set[SendStatus], scheduled: bool) -> str:
    if send_statuses & {SendStatus.SENDING, SendStatus.PAUSED}:
        return "sending"
    if scheduled or SendStatus.SCHEDULED in send_statuses:
        return "scheduled"
    if SendStatus.DONE in send_statuses:
        return "sent"
    return "draft"


_HEADLINES: dict[Path, tuple[tuple[int, int, int], tuple[str, str]]] = {}


def _subject_and_date(folder: Path) -> tuple[str, str]:
    """issue.toml's subject and date, parsed again only when the file changed (inode, mtime, size).

    Parsing every folder's issue.toml was two thirds of the issue list's time (bench/desk_bench.py);
    the desk and the CLI replace the file on a write, so the key changes with every edit. A file
    that does not read is not remembered: its error shows until it is fixed."""
    stat = (folder / ISSUE_FILE).stat()
    key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    known = _HEADLINES.get(folder)
    if known is not None and known[0] == key:
        return known[1]
    spec = read_spec(folder)
    _HEADLINES[folder] = (key, (spec.subject, spec.date))
    return spec.subject, spec.date


def list_issues(settings: Settings, db: Database) -> list[IssueRow]:
    """Every issue folder with its subject and where it stands, grouped by status, newest name first."""
    with db.session() as session:
        sends = send_statuses_by_issue(session)
    pending = {s.issue for s in list_schedules(db, settings, include_finished=False)
               if s.status in (ScheduleStatus.SCHEDULED, ScheduleStatus.RUNNING)}
    rows = []
    for folder in issue_folders(settings):
        status = _status(sends.get(folder.name, set()), folder.name in pending)
        try:
            subject, date = _subject_and_date(folder)
        except (MailerError, OSError) as exc:
            rows.append(IssueRow(folder.name, "", "", status, problem=str(exc)))
            continue
        rows.append(IssueRow(folder.name, subject, date, status))
    rows.sort(key=lambda r: r.slug, reverse=True)
    rows.sort(key=lambda r: ORDER.index(r.status))
    return rows


def list_choices(db: Database) -> list[tuple[str, str]]:
    """Every list as (slug, name), by name: what an issue can go to (no counting of subscribers)."""
    from mailer.people.lists import all_lists

    with db.session() as session:
        return [(m.slug, m.name) for m in all_lists(session)]


def issue_folder(settings: Settings, slug: str) -> Path:
    """issues_dir/<slug> when it holds an issue.toml; NoSuchIssue for anything else (a path, `..`)."""
    folder = settings.path(settings.issues_dir) / slug
    if not FOLDER_NAME.fullmatch(slug) or ".." in slug or not (folder / ISSUE_FILE).is_file():
        raise NoSuchIssue(f"no issue folder {slug!r}")
    return folder


def issue_status(settings: Settings, db: Database, slug: str) -> str:
    """Where one issue stands: draft, scheduled, sending or sent (as the issue list says)."""
    with db.session() as session:
        sends = send_statuses_by_issue(session).get(slug, set())
    pending = any(s.issue == slug and s.status in (ScheduleStatus.SCHEDULED, ScheduleStatus.RUNNING)
                  for s in list_schedules(db, settings, include_finished=False))
    return _status(sends, pending)


def editable_folder(settings: Settings, db: Database, slug: str) -> Path:
    """The folder of an issue that may still change; NoSuchIssue or IssueLocked otherwise."""
    folder = issue_folder(settings, slug)
    status = issue_status(settings, db, slug)
    if status in LOCKED:
        raise IssueLocked(f"this issue is {status}: what was sent stays as it was. Make a new issue instead")
    return folder


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """One desk change at a time per issue folder (two editors saving at once lose nothing)."""
    with open(folder / ".desk.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomic(path: Path, text: str) -> None:
    """Replace *path* with *text* (UTF-8) all at once: a temporary file beside it, renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def update_toml(folder: Path, changes: dict[str, object]) -> None:
    """Set *changes* in folder/issue.toml, keeping its comments and other keys; atomic."""
    path = folder / ISSUE_FILE
    try:
        document = tomlkit.parse(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, tomlkit.exceptions.ParseError) as exc:
        raise IssueFieldError("", f"{ISSUE_FILE} cannot be read ({exc}); fix it in the folder first") from None
    for key, value in changes.items():
        if key == "intro" and isinstance(value, str):
            value = tomlkit.string("\n" + value.strip("\n") + "\n" if value.strip() else "", multiline=True)
        document[key] = value
    write_atomic(path, tomlkit.dumps(document))


def _one_line(field: str, label: str, value: str, limit: int) -> str:
    value = value.strip()
    if has_header_trick(value):
        raise IssueFieldError(field, f"{label}: must be one line of text")
    if len(value) > limit:
        raise IssueFieldError(field, f"{label}: {len(value)} characters; at most {limit}")
    return value


def check_subject(subject: str) -> str:
    subject = _one_line("subject", "subject", subject, 200)
    if not subject:
        raise IssueFieldError("subject", "subject: write one")
    return subject


def create_issue(settings: Settings, slug: str, issue_date: str, subject: str) -> Path:
    """A new issue folder: issue.toml (subject, date, empty intro and lists) and an empty reports/."""
    slug = slug.strip()
    problem = slug_problem(slug) if FOLDER_NAME.fullmatch(slug) else "use lower-case letters, digits and dashes"
    if problem or slug != slug.lower():
        raise IssueFieldError("slug", f"folder name {slug[:60]!r}: {problem or 'use lower-case letters'}")
    try:
        day = date.fromisoformat(issue_date.strip()).isoformat()
    except ValueError:
        raise IssueFieldError("date", f"date {issue_date[:40]!r}: use YYYY-MM-DD") from None
    subject = check_subject(subject)
    if (settings.path(settings.issues_dir) / slug).exists():
        raise IssueExists(f"folder name {slug!r}: an issue folder by that name exists already")
    document = tomlkit.document()
    document.add(tomlkit.comment("Made on the desk. Every key is documented in the README (\"Issue folders\")."))
    for key, value in (("subject", subject), ("preheader", ""), ("date", day), ("lists", []), ("intro", ""),
                       ("reports", [])):
        document[key] = value

    def fill(staging: Path) -> None:
        (staging / "reports").mkdir()
        (staging / ISSUE_FILE).write_text(tomlkit.dumps(document), encoding="utf-8")

    try:
        return create_issue_folder(settings, slug, fill)
    except InputError as exc:          # made meanwhile
        raise IssueExists(f"folder name {slug!r}: {exc}") from None


def edit_issue(settings: Settings, db: Database, slug: str, subject: str, preheader: str, intro: str,
               lists: list[str], known_lists: set[str]) -> None:
    """Change issue.toml's subject, preheader, intro and lists (each checked first; nothing half-written)."""
    folder = editable_folder(settings, db, slug)
    values = {"subject": check_subject(subject), "preheader": _one_line("preheader", "preheader", preheader, 300)}
    intro = intro.replace("\r\n", "\n").replace("\r", "\n")
    if len(intro) > INTRO_MAX:
        raise IssueFieldError("intro", f"intro: {len(intro):,} characters; at most {INTRO_MAX:,}")
    unknown = sorted(set(lists) - known_lists)
    if unknown:
        raise IssueFieldError("lists", f"lists: no list {unknown[0][:60]!r}")
    with folder_lock(folder):
        update_toml(folder, {**values, "intro": intro, "lists": sorted(set(lists))})


@dataclass(frozen=True)
class IssueDetail:
    """One issue as its page shows it."""

    slug: str
    folder: Path
    status: str
    spec: IssueSpec | None
    problem: str          # issue.toml cannot be read: what is wrong

    @property
    def locked(self) -> bool:
        return self.status in LOCKED


def issue_detail(settings: Settings, db: Database, slug: str) -> IssueDetail:
    """The issue *slug* with its status and what issue.toml says (or why it cannot be read)."""
    folder = issue_folder(settings, slug)
    status = issue_status(settings, db, slug)
    try:
        return IssueDetail(slug, folder, status, read_spec(folder), "")
    except MailerError as exc:
        return IssueDetail(slug, folder, status, None, str(exc).replace(str(folder) + "/", ""))
