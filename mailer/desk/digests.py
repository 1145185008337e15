"""What the desk shows and does of digests (mailer.scheduling.digest): the digest folders under
issues_dir, each one's inbox, the reports set aside, reports by mail held for it, its schedules and
the issues its runs made; the next digest's preview (`mailer digest --preview`, nothing moved);
adding a report to the inbox or taking one out; planning a digest (`mailer digest --cron`).

A report added here is written beside the inbox and renamed into it whole, as report writers must
(a run never takes half a file), once the composer's reader accepts it. May import scheduling,
submissions, content, people and the floor; no Flask.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from mailer.config import Settings
from mailer.content.folders import ISSUE_FILE
from mailer.content.reports import read_report
from mailer.db import Database
from mailer.desk import schedules as desk_schedules
from mailer.desk.issuefiles import NewReport, NoSuchFile, new_name
from mailer.desk.issues import IssueFieldError, issue_folders
from mailer.errors import ComposeError, InputError, MailerError
from mailer.models import ScheduleKind
from mailer.scheduling.digest import INBOX, MARKER, REJECTED, inbox_files
from mailer.scheduling.digest_preview import Preview, digest_min_reports, preview

# the form fields, as the desk's messages name them
FIELDS = {"cron": "when", "tz": "time zone", "min_reports": "at least", "lists": "lists"}
PRESETS = (("0 9 * * FRI", "Every Friday at 09:00"), ("0 8 * * MON", "Every Monday at 08:00"),
           ("0 18 * * *", "Every day at 18:00"), ("0 9 1 * *", "On the 1st of each month at 09:00"))
KEEP = 8


class NoSuchDigest(InputError):
    """No digest folder of this name under issues_dir (404)."""


@dataclass(frozen=True)
class Digest:
    name: str
    folder: Path
    waiting: int                                    # reports in the inbox now
    held: int                                       # reports by mail waiting for approval
    schedules: tuple[desk_schedules.ScheduleRow, ...]
    made: tuple[str, ...]                           # issue folders its runs made, newest first
    intake: bool                                    # the folder `submissions.digest` names


@dataclass(frozen=True)
class InboxFile:
    name: str
    title: str
    words: int
    size: int
    arrived: datetime                               # the file's time, UTC
    problem: str = ""


@dataclass(frozen=True)
class NextDigest:
    preview: Preview
    reader: str
    parts: dict[str, str]                           # issuepreview.VARIANTS -> HTML or text ({} when empty)


def _is_digest(folder: Path, scheduled: set[str], intake: Path | None) -> bool:
    return (folder / INBOX).is_dir() or str(folder.resolve()) in scheduled or folder.resolve() == intake


def _intake_folder(settings: Settings) -> Path | None:
    if not settings.submissions_digest:
        return None
    from mailer.submissions.poll import digest_folder

    try:
        return digest_folder(settings)
    except MailerError:
        return None


def digests(settings: Settings, db: Database) -> list[Digest]:
    """Every digest folder under issues_dir: one with an inbox/, one a digest schedule names, or the
    folder reports by mail are filed for."""
    from mailer.scheduling.plans import list_schedules
    from mailer.submissions.held import held_reports

    every = [v for v in list_schedules(db, settings) if v.kind is ScheduleKind.DIGEST]
    views = [v for v in every if v.status in desk_schedules.ACTIVE]
    scheduled = {v.issue_path for v in every}
    intake = _intake_folder(settings)
    held = [h.digest for h in held_reports(db)]
    zone = desk_schedules.group_zone(settings)
    out = []
    folders = issue_folders(settings)
    for folder in folders:
        if not _is_digest(folder, scheduled, intake):
            continue
        made = sorted((f.name for f in folders if f.name.startswith(folder.name + "-") and (f / MARKER).is_file()),
                      reverse=True)
        rows = tuple(desk_schedules.schedule_row(v, zone) for v in views if v.issue_path == str(folder.resolve()))
        out.append(Digest(folder.name, folder, len(inbox_files(folder)), held.count(str(folder.resolve())),
                          rows, tuple(made), folder.resolve() == intake))
    return out


def find(settings: Settings, db: Database, name: str) -> Digest:
    """The digest folder *name* (only those listed: no path from a URL reaches further)."""
    for digest in digests(settings, db):
        if digest.name == name:
            return digest
    raise NoSuchDigest(f"no digest folder {name[:80]!r} under {settings.issues_dir}")


def inbox(folder: Path, language: str) -> list[InboxFile]:
    """The reports waiting in the inbox, each read as a run will read it."""
    out = []
    for path in inbox_files(folder):
        stat = path.stat()
        arrived = datetime.fromtimestamp(stat.st_mtime, timezone.utc)
        try:
            report = read_report(path, folder, language)
            out.append(InboxFile(path.name, report.title, report.words, stat.st_size, arrived))
        except ComposeError as exc:
            out.append(InboxFile(path.name, "", 0, stat.st_size, arrived, str(exc).replace(str(path.parent) + "/", "")))
    return out


def set_aside(folder: Path) -> list[tuple[str, str]]:
    """The reports a run set aside in inbox/rejected/, each with its error."""
    rejected = folder / INBOX / REJECTED
    if not rejected.is_dir():
        return []
    out = []
    for path in sorted(rejected.iterdir()):
        if path.is_file() and not path.name.endswith(".error") and not path.name.startswith("."):
            error = path.with_name(path.name + ".error")
            out.append((path.name, error.read_text(encoding="utf-8", errors="replace").strip() if error.is_file() else ""))
    return out


_cache: OrderedDict[tuple, NextDigest] = OrderedDict()
_lock = threading.Lock()


def next_digest(settings: Settings, db: Database, digest: Digest) -> NextDigest:
    """What the next run would hold now (ComposeError when the folder's issue.toml is broken)."""
    from mailer.desk.issuepreview import sample_parts

    needed = digest_min_reports(db, digest.folder) or 1
    zone = digest.schedules[0].own_zone if digest.schedules and digest.schedules[0].own_zone \
        else settings.schedule_timezone
    files = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in inbox_files(digest.folder))
    toml = (digest.folder / ISSUE_FILE).stat().st_mtime_ns
    key = (str(digest.folder), settings.base_url, files, toml, needed, zone, datetime.now(timezone.utc).date())
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    shown = preview(settings, digest.folder, needed, zone)
    reader, parts = sample_parts(settings, shown.composed) if shown.composed is not None else ("", {})
    found = NextDigest(shown, reader, parts)
    with _lock:
        _cache[key] = found
        while len(_cache) > KEEP:
            _cache.popitem(last=False)
    return found


def add_report(folder: Path, new: NewReport, language: str, field: str) -> str:
    """Put a report into the inbox whole (written beside it, read back, renamed in); its file name."""
    box = folder / INBOX
    box.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".desk-", suffix=new.suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(new.text)
        report = read_report(Path(tmp), folder, language)
        if report.words == 0:
            raise ComposeError("the report is empty")
        name = new_name(box, new.hint, new.suffix)
        os.chmod(tmp, 0o644)
        os.replace(tmp, box / name)
    except (MailerError, OSError) as exc:
        raise IssueFieldError(field, f"{field}: {str(exc).replace(tmp, 'the report')}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return name


def remove_report(folder: Path, name: str) -> None:
    """Delete inbox/<name> (a report waiting for the next run)."""
    path = next((p for p in inbox_files(folder) if p.name == name), None)
    if path is None:
        raise NoSuchFile(f"no report {name[:80]!r} in the inbox (the last run may have taken it)")
    path.unlink()


def schedule(db: Database, settings: Settings, digest: Digest, lists: Sequence[str], cron: str, zone: str,
             min_reports: str, audience: dict | None) -> int:
    """`mailer digest FOLDER --cron`: plan the digest; its schedule's id. InputError naming the field."""
    from mailer.backends import load_backend
    from mailer.scheduling.plans import schedule_digest
    from mailer.settingrules import require_public_links

    if not cron.strip():
        raise InputError(f"{FIELDS['cron']}: choose when the digest goes out")
    try:
        needed = int(min_reports.strip() or "1")
    except ValueError:
        raise InputError(f"{FIELDS['min_reports']}: a whole number of reports, 1 or more") from None
    from mailer.desk.sending import check_lists

    check_lists(db, lists, FIELDS["lists"])
    require_public_links(settings.base_url, load_backend(settings).name)
    row = schedule_digest(db, settings, digest.folder, tuple(dict.fromkeys(lists)), cron.strip(),
                          zone.strip() or None, needed, audience=audience, fields=FIELDS)
    return row.id
