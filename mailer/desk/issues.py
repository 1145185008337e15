"""What the desk shows of the issue folders: subject and status (draft, scheduled, sending, sent)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mailer.config import Settings
from mailer.content.folders import ISSUE_FILE, read_spec
from mailer.db import Database
from mailer.errors import MailerError
from mailer.models import ScheduleStatus, SendStatus
from mailer.scheduling.plans import list_schedules
from mailer.sending.ledger.reads import send_statuses_by_issue

ORDER = ("sending", "scheduled", "sent", "draft")


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
            spec = read_spec(folder)
        except MailerError as exc:
            rows.append(IssueRow(folder.name, "", "", status, problem=str(exc)))
            continue
        rows.append(IssueRow(folder.name, spec.subject, spec.date, status))
    rows.sort(key=lambda r: r.slug, reverse=True)
    rows.sort(key=lambda r: ORDER.index(r.status))
    return rows
