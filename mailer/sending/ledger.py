"""The delivery ledger: create a send, freeze its audience, claim rows, move them along.

One Delivery row per (send, subscriber), unique. Rows move
queued -> sending -> sent | deferred | failed | unknown | skipped. A worker
first *claims* a batch (claimed_by = host:pid, status unchanged), marks the
few rows it is about to hand to the backend ``sending`` (committed), and
records each outcome as soon as it is known (committed) before the next
message starts (STANDARDS E5). What happens to the rows of a dead claimant
is mailer.sending.recovery's business.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from sqlalchemy import Connection, and_, bindparam, exists, func, insert, literal, not_, or_, select, update
from sqlalchemy.orm import Session

from mailer.content.compose import ComposedIssue
from mailer.db import Database
from mailer.errors import InputError
from mailer.models import (
    Delivery,
    DeliveryStatus,
    MailingList,
    Send,
    SendStatus,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    utcnow,
)
from mailer.people.subscriptions import GLOBAL, get_list

D = Delivery.__table__


def worker_id() -> str:
    """``host:pid``: who claimed a row (Delivery.claimed_by)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def create_send(session: Session, composed: ComposedIssue, list_slugs: Sequence[str],
                status: SendStatus = SendStatus.DRAFT) -> Send:
    """Store the composed snapshot for *list_slugs* (each must exist) as a new Send."""
    slugs = list(dict.fromkeys(list_slugs))
    if not slugs:
        raise InputError(f"{composed.path}: no list to send to: pass --list or set `lists` in issue.toml")
    for slug in slugs:
        get_list(session, slug)
    send = Send(
        issue_slug=composed.slug, issue_path=str(composed.path), subject=composed.subject,
        preheader=composed.preheader, html=composed.html, text=composed.text,
        archive_html=composed.archive_html, content_hash=composed.content_hash,
        list_slugs=slugs, status=status, status_at=utcnow(),
    )
    session.add(send)
    session.flush()
    return send


def claim_send(db: Database, send_id: int, from_status: SendStatus) -> bool:
    """Compare-and-set *from_status* -> sending; True for the one caller that changed the row (G3)."""
    now = utcnow()
    with db.engine.begin() as conn:
        result = conn.execute(
            update(Send.__table__)
            .where(Send.__table__.c.id == send_id, Send.__table__.c.status == from_status.value)
            .values(status=SendStatus.SENDING.value, started_at=func.coalesce(Send.__table__.c.started_at, now),
                    status_at=now, status_reason="")
        )
        return result.rowcount == 1


def set_send_status(db: Database, send_id: int, status: SendStatus, reason: str = "",
                    only_from: SendStatus | None = None) -> bool:
    """Move a send to *status* (optionally only from *only_from*), with a reason and a timestamp."""
    now = utcnow()
    table = Send.__table__
    values: dict = {"status": status.value, "status_reason": reason, "status_at": now}
    if status is SendStatus.DONE:
        values["finished_at"] = now
    stmt = update(table).where(table.c.id == send_id).values(**values)
    if only_from is not None:
        stmt = stmt.where(table.c.status == only_from.value)
    with db.engine.begin() as conn:
        return conn.execute(stmt).rowcount == 1


def _audience_select(send_id: int | None, list_id: int, list_slug: str):  # type: ignore[no-untyped-def]
    """Confirmed subscribers of one list, not suppressed (by address in clear) for it."""
    suppressed = (
        select(func.lower(Suppression.email))
        .where(Suppression.email.is_not(None), Suppression.scope.in_([GLOBAL, list_slug]))
    )
    conditions = [
        Subscription.list_id == list_id,
        Subscription.status == SubscriptionStatus.CONFIRMED,
        not_(Subscriber.email_key.in_(suppressed)),
    ]
    if send_id is not None:
        conditions.append(~exists().where(D.c.send_id == send_id, D.c.subscriber_id == Subscription.subscriber_id))
    return select(Subscription.subscriber_id, Subscriber.email).join(
        Subscriber, Subscriber.id == Subscription.subscriber_id).where(*conditions)


def audience_count(session: Session, list_slugs: Sequence[str]) -> tuple[int, dict[str, int]]:
    """(distinct recipients, count per list) a send to *list_slugs* would freeze now."""
    per_list: dict[str, int] = {}
    union = None
    for slug in list_slugs:
        mlist = get_list(session, slug)
        q = _audience_select(None, mlist.id, slug)
        per_list[slug] = session.scalar(select(func.count()).select_from(q.subquery())) or 0
        union = q if union is None else union.union(q)
    total = session.scalar(select(func.count()).select_from(union.subquery())) if union is not None else 0
    return total or 0, per_list


def audience_sample(session: Session, list_slugs: Sequence[str], limit: int = 10) -> list[str]:
    """A few addresses a send would go to (for --dry-run)."""
    out: list[str] = []
    for slug in list_slugs:
        mlist = get_list(session, slug)
        q = _audience_select(None, mlist.id, slug).order_by(Subscription.subscriber_id).limit(limit)
        for _, email in session.execute(q):
            if email not in out:
                out.append(email)
    return out[:limit]


def freeze_audience(db: Database, send_id: int) -> int:
    """Insert one queued row per eligible subscriber, with INSERT ... SELECT; idempotent.

    The send row is written first, which locks it (PostgreSQL row lock, SQLite
    write lock), so two workers never freeze the same send twice.
    """
    table = Send.__table__
    with db.sessions() as session, session.begin():
        session.execute(update(table).where(table.c.id == send_id).values(audience_frozen=table.c.audience_frozen))
        send = session.get(Send, send_id, populate_existing=True)
        if send is None:
            raise InputError(f"no send #{send_id}")
        if send.audience_frozen:
            return session.scalar(select(func.count()).where(D.c.send_id == send_id)) or 0
        now = utcnow()
        for slug in send.list_slugs:
            mlist = get_list(session, slug)
            audience = _audience_select(send_id, mlist.id, slug).subquery()
            session.execute(insert(D).from_select(
                ["send_id", "subscriber_id", "list_id", "email", "status", "attempts", "last_code",
                 "last_reply", "message_id", "claimed_by", "updated_at"],
                select(literal(send_id), audience.c.subscriber_id, literal(mlist.id), audience.c.email,
                       literal(DeliveryStatus.QUEUED.value), literal(0), literal(""), literal(""),
                       literal(""), literal(""), literal(now, Delivery.updated_at.type))
                .order_by(audience.c.subscriber_id),
            ))
        session.execute(update(table).where(table.c.id == send_id).values(audience_frozen=True))
        return session.scalar(select(func.count()).where(D.c.send_id == send_id)) or 0


def _due(send_id: int, now: datetime):  # type: ignore[no-untyped-def]
    return and_(
        D.c.send_id == send_id,
        or_(D.c.status == DeliveryStatus.QUEUED.value,
            and_(D.c.status == DeliveryStatus.DEFERRED.value, D.c.next_attempt_at <= now)),
    )


def _claim_select(status_condition, postgresql: bool):  # type: ignore[no-untyped-def]
    ids = (select(D.c.id)
           .where(D.c.send_id == bindparam("send_id"), status_condition, D.c.claimed_by == "",
                  D.c.id > bindparam("after_id"))
           .order_by(D.c.id).limit(bindparam("limit")))
    return ids.with_for_update(skip_locked=True) if postgresql else ids


# built once (SQLAlchemy then reuses their compiled form): they run for every batch
_CLAIM_SELECTS = {pg: (_claim_select(D.c.status == DeliveryStatus.QUEUED.value, pg),
                       _claim_select(and_(D.c.status == DeliveryStatus.DEFERRED.value,
                                          D.c.next_attempt_at <= bindparam("now", type_=Delivery.updated_at.type)),
                                     pg))
                  for pg in (False, True)}
_CLAIM = (update(D).where(D.c.id.in_(bindparam("ids", expanding=True)), D.c.claimed_by == "")
          .values(claimed_by=bindparam("me"), updated_at=bindparam("now", type_=Delivery.updated_at.type)))


def claim_batch(conn: Connection, send_id: int, me: str, after_id: int, limit: int) -> int:
    """Claim up to *limit* due, unclaimed rows after *after_id* (SKIP LOCKED on PostgreSQL).

    Queued rows and due deferred rows are looked up apart, each an index range scan
    (send, status, id > after) that stops at *limit*: one query with their OR made
    SQLite read every queued row of the send for each batch.
    """
    now = utcnow()
    params = {"send_id": send_id, "after_id": after_id, "limit": limit, "now": now}
    found: list[int] = []
    for query in _CLAIM_SELECTS[conn.dialect.name == "postgresql"]:
        found += conn.execute(query, params).scalars()
    if not found:
        conn.commit()
        return 0
    result = conn.execute(_CLAIM, {"ids": sorted(found)[:limit], "me": me, "now": now})
    conn.commit()
    return result.rowcount


@dataclass(frozen=True)
class Row:
    """A claimed delivery with what rendering and the eligibility check need."""

    id: int
    email: str
    subscriber_id: int | None
    uid: str
    name: str
    email_key: str
    list_slug: str
    list_name: str
    subscribed: bool
    attempts: int
    first_attempt_at: datetime | None


def _claimed_rows_query():  # type: ignore[no-untyped-def]
    S, L, SUB = Subscriber.__table__, MailingList.__table__, Subscription.__table__
    return (
        select(D.c.id, D.c.email, D.c.subscriber_id, S.c.uid, S.c.name, S.c.email_key, L.c.slug, L.c.name,
               SUB.c.status, D.c.attempts, D.c.first_attempt_at)
        .select_from(D.outerjoin(S, S.c.id == D.c.subscriber_id).outerjoin(L, L.c.id == D.c.list_id)
                     .outerjoin(SUB, and_(SUB.c.subscriber_id == D.c.subscriber_id, SUB.c.list_id == D.c.list_id)))
        .where(D.c.send_id == bindparam("send_id"), D.c.claimed_by == bindparam("me"),
               D.c.id > bindparam("after_id"),
               D.c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.DEFERRED.value]))
        .order_by(D.c.id).limit(bindparam("limit"))
    )


_CLAIMED_ROWS = _claimed_rows_query()


def claimed_rows(conn: Connection, send_id: int, me: str, after_id: int, limit: int) -> list[Row]:
    """The batch claim_batch(after_id, limit) just gave this worker, in id order.

    Its rows are the first due ones after *after_id*, so the index scan stops after
    *limit* instead of running through every queued row of the send (quadratic over a
    large send)."""
    params = {"send_id": send_id, "me": me, "after_id": after_id, "limit": limit}
    rows = [Row(r[0], r[1] or "", r[2], r[3] or "", r[4] or "", r[5] or "", r[6] or "", r[7] or "",
                r[8] in (SubscriptionStatus.CONFIRMED, SubscriptionStatus.CONFIRMED.value), r[9] or 0, as_utc(r[10]))
            for r in conn.execute(_CLAIMED_ROWS, params)]
    conn.commit()
    return rows


def as_utc(value):  # type: ignore[no-untyped-def]
    """A datetime read by hand from a UTCDateTime column, made timezone-aware."""
    return Delivery.first_attempt_at.type.process_result_value(value, None) if value is not None else None


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


# the two statements run once per message: driver-level SQL, no statement building per call
_MARK_SENDING = ("UPDATE delivery SET status = 'sending', attempts = attempts + 1, "
                 "first_attempt_at = COALESCE(first_attempt_at, {p}), updated_at = {p} "
                 "WHERE id = {p} AND claimed_by = {p} AND status IN ('queued', 'deferred')")
_FINISH = ("UPDATE delivery SET status = {p}, claimed_by = '', updated_at = {p}, last_code = {p}, "
           "last_reply = {p}, next_attempt_at = {p}, sent_at = COALESCE({p}, sent_at), "
           "message_id = COALESCE({p}, message_id) WHERE id = {p}")


def _sql(conn: Connection, template: str) -> str:
    return template.format(p="?" if conn.dialect.paramstyle == "qmark" else "%s")


def _when(conn: Connection, value: datetime | None):  # type: ignore[no-untyped-def]
    """A UTC datetime as the driver wants it: SQLAlchemy's SQLite text format, or aware for PostgreSQL."""
    if value is None or conn.dialect.name != "sqlite":
        return value
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    return value.isoformat(" ", "microseconds")[:26]


class Writer:
    """The per-message ledger writes of one worker, on the DBAPI connection under *conn*.

    Marking a row ``sending`` commits, and with it every outcome recorded since
    (`finish` does not commit): the send loop marks a connection's next message
    only after recording its last one, so each 250 is on disk before the next
    message on that connection starts (STANDARDS E5). Plain DBAPI calls, no
    statement building per call: SQLAlchemy's execution layer cost more than
    SQLite here. Not thread-safe: the caller serialises the calls.
    """

    def __init__(self, conn: Connection, me: str) -> None:
        self.conn, self.me = conn, me
        self.dbapi = conn.connection.dbapi_connection
        self.cursor = self.dbapi.cursor()
        self.mark_sql, self.finish_sql = _sql(conn, _MARK_SENDING), _sql(conn, _FINISH)

    def mark_sending(self, delivery_id: int) -> bool:
        """Mark one row ``sending``, committed; False when it is no longer ours to send.

        A row is skipped when it is no longer claimed by this worker or no longer
        due (a claim taken over as stale by another worker): never two senders for one row.
        """
        now = _when(self.conn, utcnow())
        self.cursor.execute(self.mark_sql, (now, now, delivery_id, self.me))
        ours = self.cursor.rowcount == 1
        self.dbapi.commit()
        return ours

    def finish(self, delivery_id: int, status: DeliveryStatus, *, code: int | str = "", reply: str = "",
               message_id: str = "", next_attempt_at: datetime | None = None) -> None:
        """Record one outcome and release the row (committed by the next mark_sending or commit)."""
        now = _when(self.conn, utcnow())
        sent = status is DeliveryStatus.SENT
        self.cursor.execute(self.finish_sql, (
            status.value, now, str(code)[:20], reply[:2000], _when(self.conn, next_attempt_at),
            now if sent else None, message_id[:255] if sent else None, delivery_id))

    def commit(self) -> None:
        self.dbapi.commit()

    def close(self) -> None:
        self.cursor.close()


def requeue(conn: Connection, ids: Sequence[int]) -> None:
    """Rows marked sending that the backend never took (it could not work at all): queued again."""
    if ids:
        conn.execute(update(D).where(D.c.id.in_(list(ids)), D.c.status == DeliveryStatus.SENDING.value)
                     .values(status=DeliveryStatus.QUEUED.value, claimed_by="", attempts=D.c.attempts - 1,
                             updated_at=utcnow()))
        conn.commit()


def release(conn: Connection, send_id: int, me: str) -> None:
    """Give back the claimed rows this worker did not get to."""
    conn.execute(update(D).where(D.c.send_id == send_id, D.c.claimed_by == me,
                                 D.c.status.in_([DeliveryStatus.QUEUED.value, DeliveryStatus.DEFERRED.value]))
                 .values(claimed_by=""))
    conn.commit()


def counts(session: Session, send_id: int) -> dict[DeliveryStatus, int]:
    """How many rows of *send_id* are in each status (every status present, zeros included)."""
    out = {s: 0 for s in DeliveryStatus}
    for status, n in session.execute(select(D.c.status, func.count()).where(D.c.send_id == send_id)
                                     .group_by(D.c.status)):
        out[DeliveryStatus(status)] = n
    return out


def next_retry_at(session: Session, send_id: int) -> datetime | None:
    """When the earliest deferred row of *send_id* becomes due."""
    value = session.scalar(select(func.min(D.c.next_attempt_at))
                           .where(D.c.send_id == send_id, D.c.status == DeliveryStatus.DEFERRED.value))
    return as_utc(value)


def has_due(session: Session, send_id: int) -> bool:
    """True when some unclaimed row of *send_id* could be sent now (queued, or deferred and due)."""
    return session.scalar(select(exists().where(_due(send_id, utcnow()), D.c.claimed_by == ""))) or False
