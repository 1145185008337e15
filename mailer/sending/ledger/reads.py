"""Reading the ledger: counts per status, the next retry, what is due, who holds claims.

Writes nothing. May import the floor only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import Connection, and_, bindparam, exists, func, or_, select
from sqlalchemy.orm import Session

from mailer.db import Database
from mailer.models import Delivery, DeliveryStatus, Send, SendStatus, Suppression, utcnow

D = Delivery.__table__


def as_utc(value):  # type: ignore[no-untyped-def]
    """A datetime read by hand from a UTCDateTime column, made timezone-aware."""
    return Delivery.first_attempt_at.type.process_result_value(value, None) if value is not None else None


def counts(session: Session, send_id: int) -> dict[DeliveryStatus, int]:
    """How many rows of *send_id* are in each status (every status present, zeros included)."""
    out = {s: 0 for s in DeliveryStatus}
    for status, n in session.execute(select(D.c.status, func.count()).where(D.c.send_id == send_id)
                                     .group_by(D.c.status)):
        out[DeliveryStatus(status)] = n
    return out


def counts_per_list(session: Session, send_id: int) -> dict[int | None, dict[DeliveryStatus, int]]:
    """`counts` per list of the send's rows (list id, None for a deleted list)."""
    out: dict[int | None, dict[DeliveryStatus, int]] = {}
    for list_id, status, n in session.execute(select(D.c.list_id, D.c.status, func.count())
                                              .where(D.c.send_id == send_id).group_by(D.c.list_id, D.c.status)):
        out.setdefault(list_id, {s: 0 for s in DeliveryStatus})[DeliveryStatus(status)] = n
    return out


def problem_rows(session: Session, send_id: int, limit: int, *, deferred: bool = False) -> list[Any]:
    """The first *limit* failed or unknown (and, with *deferred*, deferred) rows of *send_id*:
    (email, status, last_code, last_reply)."""
    statuses = [DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN] + ([DeliveryStatus.DEFERRED] if deferred else [])
    return list(session.execute(
        select(Delivery.email, Delivery.status, Delivery.last_code, Delivery.last_reply)
        .where(Delivery.send_id == send_id, Delivery.status.in_(statuses))
        .order_by(Delivery.id).limit(limit)))


def next_retry_at(session: Session, send_id: int) -> datetime | None:
    """When the earliest deferred row of *send_id* becomes due."""
    value = session.scalar(select(func.min(D.c.next_attempt_at))
                           .where(D.c.send_id == send_id, D.c.status == DeliveryStatus.DEFERRED.value))
    return as_utc(value)


def _due(send_id: int, now: datetime):  # type: ignore[no-untyped-def]
    return and_(
        D.c.send_id == send_id,
        or_(D.c.status == DeliveryStatus.QUEUED.value,
            and_(D.c.status == DeliveryStatus.DEFERRED.value, D.c.next_attempt_at <= now)),
    )


def has_due(session: Session, send_id: int) -> bool:
    """True when some unclaimed row of *send_id* could be sent now (queued, or deferred and due)."""
    return session.scalar(select(exists().where(_due(send_id, utcnow()), D.c.claimed_by == ""))) or False


def sending_sends(session: Session) -> list[tuple[int, bool]]:
    """(id, audience frozen) of every send in status sending, oldest first."""
    rows = session.execute(select(Send.id, Send.audience_frozen)
                           .where(Send.status == SendStatus.SENDING).order_by(Send.id)).all()
    return [(i, bool(frozen)) for i, frozen in rows]


def claim_holders(db: Database, send_id: int | None = None) -> list[tuple[str, datetime | None]]:
    """Every claimant of rows (of *send_id*, or of any send) with the last time one of its rows moved."""
    where = [D.c.claimed_by != ""] + ([D.c.send_id == send_id] if send_id is not None else [])
    with db.engine.connect() as conn:
        rows = conn.execute(select(D.c.claimed_by, func.max(D.c.updated_at)).where(*where)
                            .group_by(D.c.claimed_by)).all()
    return [(holder, as_utc(last)) for holder, last in rows]


_SUPPRESSED = select(Suppression.email_hash, Suppression.scope).where(
    Suppression.email_hash.in_(bindparam("hashes", expanding=True)))


def suppressed_hashes(conn: Connection, hashes: Sequence[str]) -> dict[str, set[str]]:
    """email_hash -> the scopes it is suppressed in, for the given hashes."""
    out: dict[str, set[str]] = {}
    if hashes:
        for h, scope in conn.execute(_SUPPRESSED, {"hashes": list(hashes)}):
            out.setdefault(h, set()).add(scope)
        conn.commit()
    return out


def send_statuses_by_issue(session: Session) -> dict[str, set[SendStatus]]:
    """Each issue slug with the statuses of its sends (the desk's issue list)."""
    found: dict[str, set[SendStatus]] = {}
    for slug, status in session.execute(select(Send.issue_slug, Send.status).distinct()):
        found.setdefault(slug, set()).add(status)
    return found
