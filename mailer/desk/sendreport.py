"""What the desk shows of one send: its progress (the counts `mailer status` prints), its delivery
report (the figures of `mailer report`, and the failures with their SMTP replies), and the
retries of `mailer send --retry-failed` / `--retry-unknown` (campaign.take_over).

Reads through mailer.sending (ledger, figures, campaign); writes only through take_over.
May import sending, the desk's schedules (for the zone and the liveness) and the floor; no Flask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.models import DeliveryStatus, Send, SendStatus
from mailer.sending import campaign, figures, ledger

# the delivery statuses in the order the desk shows them
ORDER = (DeliveryStatus.SENT, DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED,
         DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN, DeliveryStatus.SKIPPED)
PROBLEMS_SHOWN = 200
RUNNING = (SendStatus.SENDING, SendStatus.PAUSED)


class NoSuchSend(InputError):
    """No send has this id."""


class NothingToRetry(InputError):
    """A retry that cannot be done now: nothing of that kind, not the newest send, or being sent."""


@dataclass(frozen=True)
class Progress:
    """A send's standing: its status and how many rows are in each delivery status."""

    id: int
    issue: str
    subject: str
    lists: tuple[str, ...]
    status: str
    reason: str
    counts: dict[str, int]        # delivery status -> rows, in ORDER
    total: int
    handled: int                  # rows no longer waiting (sent, failed, unknown, skipped)
    next_retry_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def running(self) -> bool:
        return self.status in (s.value for s in RUNNING)

    def as_json(self) -> dict[str, Any]:
        """What progress.js reads."""
        return {"id": self.id, "status": self.status, "reason": self.reason, "counts": self.counts,
                "total": self.total, "handled": self.handled, "running": self.running}


@dataclass(frozen=True)
class Problem:
    email: str
    status: str
    code: str
    reply: str


@dataclass(frozen=True)
class Report:
    progress: Progress
    figures: figures.SendFigures
    problems: list[Problem]       # the first PROBLEMS_SHOWN failed or unknown rows
    retryable_failed: int         # deferred, and failed with a 4xx (what --retry-failed queues)
    unknown: int
    newest: bool                  # only the newest send of an issue is retried (take_over)


def _send(db: Database, send_id: int) -> Send:
    with db.session() as session:
        send = session.get(Send, send_id)
    if send is None:
        raise NoSuchSend(f"no send with id {send_id}")
    return send


def progress(db: Database, send_id: int) -> Progress:
    """The send's status and its rows per delivery status (ledger.counts, as `mailer status`)."""
    send = _send(db, send_id)
    with db.session() as session:
        counts = ledger.counts(session, send_id)
        next_retry = ledger.next_retry_at(session, send_id)
    waiting = counts[DeliveryStatus.QUEUED] + counts[DeliveryStatus.SENDING] + counts[DeliveryStatus.DEFERRED]
    total = sum(counts.values())
    return Progress(send.id, send.issue_slug, send.subject, tuple(send.list_slugs or ()), send.status.value,
                    send.status_reason, {s.value: counts[s] for s in ORDER}, total, total - waiting,
                    next_retry, send.started_at, send.finished_at)


def _newest(db: Database, send: Send) -> bool:
    sends = [s for s in campaign.sends_of(db, send.issue_slug) if s.status is not SendStatus.CANCELLED]
    return bool(sends) and sends[-1].id == send.id


def report(db: Database, send_id: int) -> Report:
    """The send's figures (figures.send_figures, as `mailer report`) and its failures with their replies."""
    send = _send(db, send_id)
    now = progress(db, send_id)
    with db.session() as session:
        rows = ledger.problem_rows(session, send_id, PROBLEMS_SHOWN, deferred=True)
        retryable = ledger.retryable_failed(session.connection(), send_id)
    problems = [Problem(email or "(erased)", status.value, str(code or ""), reply or "")
                for email, status, code, reply in rows]
    return Report(now, figures.send_figures(db, send), problems, retryable,
                  now.counts[DeliveryStatus.UNKNOWN.value], _newest(db, send))


def retry(db: Database, send_id: int, unknown: bool) -> int:
    """`mailer send ISSUE --retry-failed` (or `--retry-unknown`): queue those rows of the newest send
    again and hand it to the worker; how many rows were queued. NothingToRetry when there is none."""
    send = _send(db, send_id)
    found = report(db, send_id)
    if not found.newest:
        raise NothingToRetry(f"send #{send_id} is not the newest send of {send.issue_slug}: retry that one")
    if (found.unknown if unknown else found.retryable_failed) == 0:
        raise NothingToRetry(f"send #{send_id} has no {'unknown' if unknown else 'temporary failed or deferred'} "
                             "rows to retry")
    try:
        resumed = campaign.take_over(db, send.issue_slug, retry_failed=not unknown, retry_unknown=unknown)
    except InputError as exc:        # being sent right now by another process, or changed meanwhile
        raise NothingToRetry(str(exc)) from None
    return resumed.retried


def resume(db: Database, send_id: int) -> int:
    """`mailer send ISSUE --resume` for a paused send: hand it back to the worker; the rows found in
    flight from a dead process (marked unknown, not resent). NothingToRetry unless it is the newest
    send of its issue and paused."""
    send = _send(db, send_id)
    if send.status is not SendStatus.PAUSED:
        raise NothingToRetry(f"send #{send_id} is {send.status.value}: only a paused send is continued")
    if not _newest(db, send):
        raise NothingToRetry(f"send #{send_id} is not the newest send of {send.issue_slug}")
    try:
        return campaign.take_over(db, send.issue_slug).unknown
    except InputError as exc:
        raise NothingToRetry(str(exc)) from None


def local(when: datetime | None, settings: Settings) -> str:
    """*when* in the group's zone, as the schedules page shows times."""
    from mailer.desk.schedules import group_zone, local as shown

    return shown(when, group_zone(settings))
