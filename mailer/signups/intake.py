"""Sign-ups in two steps: the request writes one intake row; the runner applies it.

`record_signup` is all a sign-up request does: the rate limits (in memory, see
`mailer.signups.limits`) and one INSERT, committed by the app's writer thread
together with those of other requests (`mailer.signups.writer`). `process_intake`
(run by `mailer.signups.runner`) claims new rows (`mailer.claims`) and applies
each in its own transaction: `subscribe()` with the consent
record (timed when the person signed up), then at most one confirmation mail
queued, subject to the cool-down and daily cap (C1, C5). The answer to the
request is the same whatever the address's state, so deferring this work
changes nothing the person sees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import OperationalError

from mailer.claims import Claim
from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.models import (
    Consent,
    ConsentSource,
    IntakeStatus,
    MailingList,
    OptIn,
    SignupIntake,
    SubscriptionStatus,
    utcnow,
)
from mailer.people.lists import find_list
from mailer.people.subscriptions import Address, ConsentInfo, subscribe
from mailer.signups import limits
from mailer.signups.confirmations import enqueue_confirmation
from mailer.signups.writer import IntakeWriter

log = logging.getLogger(__name__)
KEEP = timedelta(days=1)          # the longest rate-limit window
_INTAKE = SignupIntake.__table__
_LISTS = MailingList.__table__
CLAIM = Claim(_INTAKE, free=_INTAKE.c.status == IntakeStatus.NEW, taken=_INTAKE.c.status == IntakeStatus.CLAIMED,
              taken_at=_INTAKE.c.claimed_at, stale=timedelta(minutes=10), mark={"status": IntakeStatus.CLAIMED})


@dataclass(frozen=True)
class Signup:
    """One validated sign-up, as the request saw it."""

    address: Address
    name: str
    source: ConsentSource
    form_id: str
    ip: str
    user_agent: str


@dataclass
class IntakeReport:
    applied: int = 0
    mails: int = 0
    failed: int = 0


_VALUES = ("at", "email", "name", "source", "form_id", "ip", "user_agent", "text_version", "text",
           "ip_bucket", "address_bucket", "status", "outcome")
# built once and compiled once by the writer: the list is looked up by the INSERT itself,
# so a sign-up is this one statement
_INSERT = insert(_INTAKE).from_select(
    ["list_id", *_VALUES],
    select(_LISTS.c.id, *(bindparam(name, type_=_INTAKE.c[name].type) for name in _VALUES))
    .where(_LISTS.c.slug == bindparam("slug")))
_INSERT_RETURNING = _INSERT.returning(_INTAKE.c.id)   # psycopg gives no rowcount for INSERT ... SELECT


def signup_list(db: Database, slug: str) -> MailingList | None:
    """The list a sign-up form is for, or None."""
    with db.session() as session:
        return find_list(session, slug)


def intake_writer(db: Database) -> IntakeWriter:
    """The app's writer of intake rows (one thread, group commit)."""
    return IntakeWriter(db.engine, _INSERT if db.dialect == "sqlite" else _INSERT_RETURNING)


def record_signup(settings: Settings, limiter: limits.SignupLimiter, writer: IntakeWriter, slug: str,
                  signup: Signup) -> None:
    """Check the rate limits and store the sign-up; raise RateLimited, or InputError for an unknown list."""
    now = utcnow()
    ip_hash = limits.ip_bucket(settings, signup.ip)
    address_hash = limits.address_bucket(settings, signup.address.key)
    stamp = now.timestamp()
    limiter.take(settings, ip_hash, address_hash, stamp)
    stored = False
    try:
        stored = writer.store({
            "slug": slug, "at": now, "email": signup.address.email, "name": signup.name,
            "source": signup.source, "form_id": signup.form_id[:100], "ip": signup.ip[:64],
            "user_agent": signup.user_agent[:500], "text_version": settings.consent_version,
            "text": settings.consent_text, "ip_bucket": ip_hash, "address_bucket": address_hash,
            "status": IntakeStatus.NEW, "outcome": ""})
    finally:
        if not stored:
            limiter.give_back(ip_hash, address_hash, stamp)
    if not stored:
        raise InputError(f"unknown list {slug!r}")


def _claim(db: Database, limit: int) -> list[int]:
    with db.engine.begin() as conn:
        return CLAIM.claim(conn, limit)


def _apply(session, settings: Settings, row: SignupIntake) -> tuple[str, bool]:  # type: ignore[no-untyped-def]
    """Subscribe and maybe queue the confirmation; returns (outcome, mail queued)."""
    mlist = session.get(MailingList, row.list_id)
    if mlist is None:
        return "list gone", False
    consent = ConsentInfo(source=row.source, form_id=row.form_id, ip=row.ip, user_agent=row.user_agent,
                          text_version=row.text_version, text=row.text)
    started = utcnow()
    sub, outcome = subscribe(session, settings, mlist, Address(row.email, row.email.casefold()),
                             name=row.name, confirmed=mlist.opt_in is OptIn.SINGLE, consent=consent,
                             actor=row.source.value, welcome=True)
    if sub is None:
        return outcome.value, False
    session.flush()
    # the consent record is dated when the person signed up, not when we got round to it
    session.execute(update(Consent).where(
        Consent.subscriber_id == sub.subscriber_id, Consent.list_id == mlist.id, Consent.at >= started
    ).values(at=row.at).execution_options(synchronize_session=False))
    if sub.status is SubscriptionStatus.PENDING:
        if limits.confirmation_allowed(session, settings, sub.subscriber_id, mlist.id):
            enqueue_confirmation(session, sub.subscriber, mlist)
            return outcome.value, True
        return outcome.value + ", no mail (cool-down or daily cap)", False
    return outcome.value, False


def _forget(row: SignupIntake, status: IntakeStatus, outcome: str) -> None:
    """Done with it: keep only the hashes and the time (for the rate limits)."""
    row.status, row.outcome = status, outcome[:200]
    row.email = row.name = row.ip = row.user_agent = row.text = ""


def process_intake(settings: Settings, db: Database, limit: int = 50) -> IntakeReport:
    """Apply up to *limit* received sign-ups, oldest first; returns counts."""
    report = IntakeReport()
    for row_id in _claim(db, limit):
        try:
            with db.session() as session:
                row = session.get(SignupIntake, row_id)
                if row is None:
                    continue
                outcome, mailed = _apply(session, settings, row)
                _forget(row, IntakeStatus.DONE, outcome)
            report.applied += 1
            report.mails += mailed
        except OperationalError as exc:  # database busy or gone: leave the row for the next pass
            log.warning("sign-up intake: database error, will retry: %s", exc)
            with db.engine.begin() as conn:
                conn.execute(update(_INTAKE).where(_INTAKE.c.id == row_id).values(status=IntakeStatus.NEW))
            break
        except Exception as exc:  # one bad row must not stop the others
            log.exception("sign-up intake: row %s failed", row_id)
            with db.session() as session:
                row = session.get(SignupIntake, row_id)
                if row is not None:
                    _forget(row, IntakeStatus.FAILED, f"{type(exc).__name__}: {exc}")
            report.failed += 1
    return report


def prune_intake(db: Database, now: datetime | None = None) -> int:
    """Delete applied sign-ups older than the longest rate-limit window; returns how many went."""
    cutoff = (now or utcnow()) - KEEP
    with db.engine.begin() as conn:
        result = conn.execute(delete(_INTAKE).where(
            _INTAKE.c.status.in_([IntakeStatus.DONE, IntakeStatus.FAILED]), _INTAKE.c.at < cutoff))
    return result.rowcount or 0


def newest_intake(db: Database) -> int:
    """The id of the newest sign-up received (0 for none): how another process sees arrivals."""
    with db.engine.connect() as conn:
        return conn.scalar(select(func.max(_INTAKE.c.id))) or 0
