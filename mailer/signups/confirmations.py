"""Confirmation and welcome mails: queued as rows when a sign-up is applied, sent outside the request.

Applying a sign-up (`mailer.signups.intake`) queues a `QueuedMail` row in the
same transaction as the pending subscription; `process_queue` claims due rows
(`mailer.claims`), builds each message at send time from the group's
``web/confirm_mail*.txt`` templates (sandboxed, `content.templating`) and hands
it to the configured backend, retrying temporary failures with backoff. The
link's other end, confirming, is `confirm_signup`. Run by
`mailer.signups.runner`.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailer import retry
from mailer.backends import load_backend
from mailer.backends.base import Backend, DeliveryOutcome
from mailer.claims import Claim
from mailer.config import Settings
from mailer.content.templating import mail_environment, render
from mailer.db import Database
from mailer.errors import DeliveryError, MailerError
from mailer.mail.links import confirm_url
from mailer.mail.message import transactional_message
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
from mailer.people.subscriptions import confirm
from mailer.signups.welcome import welcome_message

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
RETRY_BASE = timedelta(seconds=60)
_MAIL = QueuedMail.__table__
# next_attempt_at dates the claim: a row left `sending` for ten minutes is taken back
CLAIM = Claim(_MAIL, free=_MAIL.c.status == QueueStatus.QUEUED, taken=_MAIL.c.status == QueueStatus.SENDING,
              taken_at=_MAIL.c.next_attempt_at, stale=timedelta(minutes=10), mark={"status": QueueStatus.SENDING})


@dataclass
class QueueReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def add(self, other: QueueReport) -> None:
        self.sent, self.retried, self.failed = (self.sent + other.sent, self.retried + other.retried,
                                                self.failed + other.failed)

    @property
    def total(self) -> int:
        return self.sent + self.retried + self.failed


def enqueue_confirmation(session: Session, subscriber: Subscriber, mlist: MailingList) -> QueuedMail:
    """Ask for one confirmation mail (in the caller's transaction)."""
    row = QueuedMail(kind=MailKind.CONFIRM, subscriber_id=subscriber.id, list_id=mlist.id)
    session.add(row)
    return row


def confirmation_message(settings: Settings, row: QueuedMail, subscriber: Subscriber,
                         mlist: MailingList) -> EmailMessage:
    """The opt-in mail for *row*; ComposeError naming the template when one is wrong."""
    env = mail_environment(settings)
    context = {
        "group_name": settings.group_name, "group_address": settings.group_address,
        "list_name": mlist.name, "name": subscriber.name,
        "confirm_url": confirm_url(settings, subscriber.uid, mlist.slug),
        "hours": int(settings.confirm_max_age_hours),
    }
    subject = render(env, "web/confirm_mail_subject.txt", context).strip()
    text = render(env, "web/confirm_mail.txt", context)
    return transactional_message(settings, to=subscriber.email, to_name=subscriber.name,
                                 subject=subject, text=text, key=row.id)


def _retry_or_fail(row: QueuedMail, reason: str, report: QueueReport) -> None:
    row.last_error = reason[:1000]
    if row.attempts >= MAX_ATTEMPTS:
        row.status = QueueStatus.FAILED
        report.failed += 1
    else:
        row.status = QueueStatus.QUEUED
        row.next_attempt_at = utcnow() + retry.backoff(RETRY_BASE.total_seconds(), row.attempts)
        report.retried += 1


def _claim_due(db: Database, limit: int) -> list[int]:
    now = utcnow()
    with db.engine.begin() as conn:
        return CLAIM.claim(conn, limit, _MAIL.c.next_attempt_at <= now, now=now, attempts=_MAIL.c.attempts + 1)


def _send_one(session: Session, settings: Settings, backend: Backend, row: QueuedMail,
              report: QueueReport) -> None:
    """Build and send *row*'s mail; record the outcome on the row."""
    subscriber = session.get(Subscriber, row.subscriber_id)
    mlist = session.get(MailingList, row.list_id) if row.list_id else None
    sub = session.scalar(select(Subscription).where(
        Subscription.subscriber_id == row.subscriber_id, Subscription.list_id == row.list_id))
    wanted = SubscriptionStatus.CONFIRMED if row.kind is MailKind.WELCOME else SubscriptionStatus.PENDING
    if subscriber is None or mlist is None or sub is None or sub.status is not wanted:
        row.status, row.last_error = QueueStatus.FAILED, f"subscription is no longer {wanted.value}"
        report.failed += 1
        return
    try:
        if row.kind is MailKind.WELCOME:
            message = welcome_message(settings, row, subscriber, mlist)
        else:
            message = confirmation_message(settings, row, subscriber, mlist)
    except MailerError as exc:   # a broken template: kept for a retry once it is fixed
        log.warning("mail queue: %s", exc)
        _retry_or_fail(row, str(exc), report)
        return
    result = backend.send([message]).results[0]
    if result.outcome is DeliveryOutcome.SENT:
        row.status, row.sent_at, row.last_error = QueueStatus.SENT, utcnow(), ""
        report.sent += 1
    elif result.outcome is DeliveryOutcome.TEMPORARY:
        _retry_or_fail(row, f"{result.code} {result.reply}", report)
    else:
        row.status, row.last_error = QueueStatus.FAILED, f"{result.code} {result.reply}"[:1000]
        report.failed += 1


def process_queue(settings: Settings, db: Database, backend: Backend | None = None, limit: int = 50,
                  backend_name: str | None = None) -> QueueReport:
    """Send what is due; returns counts. *backend* defaults to the configured one (or *backend_name*)."""
    report = QueueReport()
    claimed = _claim_due(db, limit)
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
                if row is not None:
                    _send_one(session, settings, backend, row, report)
    except DeliveryError as exc:
        log.warning("mail queue: backend unavailable: %s", exc)
        with db.engine.begin() as conn:
            conn.execute(update(_MAIL).where(_MAIL.c.id.in_(claimed), _MAIL.c.status == QueueStatus.SENDING)
                         .values(status=QueueStatus.QUEUED, next_attempt_at=utcnow() + RETRY_BASE))
    finally:
        if own_backend:
            backend.close()
    return report


class Confirmed(enum.Enum):
    """What following a confirmation link did."""

    CONFIRMED = "confirmed"
    ALREADY = "already confirmed"
    LEFT = "left since"          # unsubscribed after signing up: the link no longer works
    UNKNOWN = "unknown"          # nobody, or no such subscription (erased, or a foreign token)


def signup_state(db: Database, subscriber_uid: str, slug: str) -> tuple[SubscriptionStatus | None, str]:
    """The status of the subscription a confirmation link names, and its list's name."""
    with db.session() as session:
        sub = _find_subscription(session, subscriber_uid, slug)
        return (None, "") if sub is None else (sub.status, sub.mailing_list.name)


def confirm_signup(db: Database, settings: Settings, subscriber_uid: str, slug: str,
                   ip: str) -> tuple[Confirmed, str]:
    """Confirm the pending subscription a link names; returns what happened and the list's name."""
    with db.session() as session:
        sub = _find_subscription(session, subscriber_uid, slug)
        if sub is None:
            return Confirmed.UNKNOWN, ""
        name = sub.mailing_list.name
        if sub.status is SubscriptionStatus.UNSUBSCRIBED:
            return Confirmed.LEFT, name
        changed = confirm(session, settings, sub, ip=ip, actor="web")
        return (Confirmed.CONFIRMED if changed else Confirmed.ALREADY), name


def _find_subscription(session: Session, subscriber_uid: str, slug: str) -> Subscription | None:
    return session.scalar(select(Subscription).join(Subscriber).join(MailingList).where(
        Subscriber.uid == subscriber_uid, MailingList.slug == slug))
