"""The web app's mail queue: confirmation mails are rows, sent outside the request.

Applying a sign-up (`mailer.signups.intake.process_intake`) inserts a `QueuedMail`
row in the same transaction as the pending subscription; `process_queue` claims
rows with a compare-and-set, builds each message at send time and hands it to
the configured backend. Both run in a `QueueThread`: the web app's own (setting
``web.background_thread``) or `mailer worker`'s.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailer import retry
from mailer.config import Settings
from mailer.db import Database
from mailer.errors import DeliveryError
from mailer.mail.links import confirm_url
from mailer.models import (
    MailingList,
    MailKind,
    QueuedMail,
    QueueStatus,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from mailer.web.pages import text_environment

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
RETRY_BASE = timedelta(seconds=60)
STALE_CLAIM = timedelta(minutes=10)
INTAKE_BATCH = 5     # short bursts: requests share the interpreter (and the SQLite write gate) with it
PRUNE_EVERY_S = 600.0


@dataclass
class QueueReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def enqueue_confirmation(session: Session, subscriber: Subscriber, mlist: MailingList) -> QueuedMail:
    """Ask for one confirmation mail (in the caller's transaction)."""
    row = QueuedMail(kind=MailKind.CONFIRM, subscriber_id=subscriber.id, list_id=mlist.id)
    session.add(row)
    return row


def confirmation_message(settings: Settings, row: QueuedMail, subscriber: Subscriber, mlist: MailingList):  # type: ignore[no-untyped-def]
    """The opt-in mail for *row*, rendered from templates/web/confirm_mail.txt."""
    from mailer.mail.message import transactional_message

    env = text_environment(settings)
    context = {
        "group_name": settings.group_name, "group_address": settings.group_address,
        "list_name": mlist.name, "name": subscriber.name,
        "confirm_url": confirm_url(settings, subscriber.uid, mlist.slug),
        "hours": int(settings.confirm_max_age_hours),
    }
    subject = env.get_template("web/confirm_mail_subject.txt").render(context).strip()
    text = env.get_template("web/confirm_mail.txt").render(context)
    return transactional_message(settings, to=subscriber.email, to_name=subscriber.name,
                                 subject=subject, text=text, key=row.id)


def _claim(session: Session, row_id: int) -> bool:
    # next_attempt_at is the claim's time: a row left `sending` for STALE_CLAIM is taken back
    result = session.execute(update(QueuedMail).where(
        QueuedMail.id == row_id, QueuedMail.status == QueueStatus.QUEUED
    ).values(status=QueueStatus.SENDING, attempts=QueuedMail.attempts + 1, next_attempt_at=utcnow()))
    return result.rowcount == 1


def _retry_or_fail(row: QueuedMail, reason: str, report: QueueReport) -> None:
    row.last_error = reason[:1000]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = QueueStatus.FAILED
        report.failed += 1
    else:
        row.status = QueueStatus.QUEUED
        row.next_attempt_at = utcnow() + retry.backoff(RETRY_BASE.total_seconds(), row.attempts)
        report.retried += 1


def process_queue(settings: Settings, db: Database, backend=None, limit: int = 50,  # type: ignore[no-untyped-def]
                  backend_name: str | None = None) -> QueueReport:
    """Send what is due; returns counts. *backend* defaults to the configured one (or *backend_name*)."""
    from mailer.backends import load_backend
    from mailer.backends.base import DeliveryOutcome

    report = QueueReport()
    now = utcnow()
    with db.session() as session:
        session.execute(update(QueuedMail).where(
            QueuedMail.status == QueueStatus.SENDING, QueuedMail.next_attempt_at < now - STALE_CLAIM
        ).values(status=QueueStatus.QUEUED))
        due = list(session.scalars(select(QueuedMail.id).where(
            QueuedMail.status == QueueStatus.QUEUED, QueuedMail.next_attempt_at <= now
        ).order_by(QueuedMail.id).limit(limit)))
        claimed = [row_id for row_id in due if _claim(session, row_id)]
    if not claimed:
        return report
    own_backend = backend is None
    backend = backend or load_backend(settings, backend_name)
    try:
        if own_backend:
            backend.open()
        for row_id in claimed:
            # nothing is written before the mail has gone: on SQLite the write lock is taken
            # only for the outcome, not held across the backend's round trip
            with db.session() as session:
                row = session.get(QueuedMail, row_id)
                if row is None:
                    continue
                subscriber = session.get(Subscriber, row.subscriber_id)
                mlist = session.get(MailingList, row.list_id) if row.list_id else None
                sub = session.scalar(select(Subscription).where(
                    Subscription.subscriber_id == row.subscriber_id, Subscription.list_id == row.list_id))
                if subscriber is None or mlist is None or sub is None or sub.status is not SubscriptionStatus.PENDING:
                    row.status, row.last_error = QueueStatus.FAILED, "subscription is no longer pending"
                    report.failed += 1
                    continue
                message = confirmation_message(settings, row, subscriber, mlist)
                result = backend.send([message]).results[0]
                if result.outcome is DeliveryOutcome.SENT:
                    row.status, row.sent_at, row.last_error = QueueStatus.SENT, utcnow(), ""
                    report.sent += 1
                elif result.outcome is DeliveryOutcome.TEMPORARY:
                    _retry_or_fail(row, f"{result.code} {result.reply}", report)
                else:
                    row.status, row.last_error = QueueStatus.FAILED, f"{result.code} {result.reply}"[:1000]
                    report.failed += 1
    except DeliveryError as exc:
        log.warning("mail queue: backend unavailable: %s", exc)
        with db.session() as session:
            session.execute(update(QueuedMail).where(
                QueuedMail.id.in_(claimed), QueuedMail.status == QueueStatus.SENDING
            ).values(status=QueueStatus.QUEUED, next_attempt_at=utcnow() + RETRY_BASE))
    finally:
        if own_backend:
            backend.close()
    return report


def _newest_intake(db: Database) -> int:
    from sqlalchemy import func

    from mailer.models import SignupIntake

    with db.engine.connect() as conn:
        return conn.scalar(select(func.max(SignupIntake.id))) or 0


def drain(settings: Settings, db: Database, backend_name: str | None = None) -> tuple[int, QueueReport]:
    """Apply every sign-up waiting and send every mail due; returns (sign-ups applied, mail counts)."""
    from mailer.signups.intake import process_intake

    applied, total = 0, QueueReport()
    while True:
        intake = process_intake(settings, db, limit=INTAKE_BATCH)
        sent = process_queue(settings, db, backend_name=backend_name)
        applied += intake.applied + intake.failed
        total.sent, total.retried, total.failed = (total.sent + sent.sent, total.retried + sent.retried,
                                                   total.failed + sent.failed)
        if intake.applied + intake.failed + sent.sent + sent.retried + sent.failed == 0:
            return applied, total


class QueueThread(threading.Thread):
    """Applies received sign-ups, then sends due mail: every *interval* seconds, or at once when woken.

    It works in batches. While sign-ups keep arriving it pauses between
    batches (*duty* is the share of time it may then work), so the requests,
    which share the interpreter with it, keep short answer times; once the
    burst is over it drains the backlog at full speed.
    """

    def __init__(self, settings: Settings, db: Database, interval: float = 5.0, duty: float = 0.2,
                 backend_name: str | None = None, watch_intake: bool = False) -> None:
        super().__init__(name="mailer-mail-queue", daemon=True)
        self.settings, self.db, self.interval, self.duty = settings, db, interval, duty
        self.backend_name = backend_name
        # in another process than the web app (`mailer worker`): nobody calls wake(), so
        # sign-ups arriving are seen as new rows in signup_intake
        self.watch_intake, self._newest = watch_intake, 0
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._pruned = 0.0
        self._arrivals = 0          # sign-ups since the thread last looked (a racy count is fine)

    def wake(self) -> None:
        self._arrivals += 1
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._halt.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        from mailer.signups.intake import process_intake, prune_intake

        while not self._halt.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                started, self._arrivals = time.monotonic(), 0
                intake = process_intake(self.settings, self.db, limit=INTAKE_BATCH)
                more = intake.applied + intake.failed >= INTAKE_BATCH
                process_queue(self.settings, self.db, backend_name=self.backend_name)
                if started - self._pruned > PRUNE_EVERY_S:
                    prune_intake(self.db)
                    self._pruned = started
                if more:  # a backlog: go on without waiting to be woken; pause while requests come in
                    if self.watch_intake:
                        newest = _newest_intake(self.db)
                        self._arrivals, self._newest = int(newest > self._newest), newest
                    if self._arrivals:
                        busy = time.monotonic() - started
                        self._halt.wait(busy * (1 - self.duty) / self.duty)
                    self._wake.set()
            except Exception:  # keep the thread alive; the rows stay queued
                log.exception("mail queue: run failed")
