"""Delivery rows: claim a batch, mark each row sending, record its outcome, give rows back.

One Delivery row per (send, subscriber), unique. Rows move
queued -> sending -> sent | deferred | failed | unknown | skipped. A worker
first *claims* a batch (claimed_by = its holder id, status unchanged), marks the
few rows it is about to hand to the backend ``sending`` (committed), and
records each outcome as soon as it is known (committed) before the next
message starts (STANDARDS E5). The rows of a dead claimant are turned
``unknown`` or released here, on mailer.sending.recovery's decision.
The only module that writes Delivery.status. May import the floor only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Sequence

from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from mailer.db import Database
from mailer.models import Delivery, DeliveryStatus, MailingList, Subscriber, Subscription, SubscriptionStatus, utcnow
from mailer.sending.ledger.reads import as_utc

D = Delivery.__table__


def _claim_select(status_condition, postgresql: bool):  # type: ignore[no-untyped-def]
    ids = (select(D.c.id)
           .where(D.c.send_id == bindparam("send_id"), status_condition, D.c.claimed_by == "",
                  D.c.id > bindparam("after_id"))
           .order_by(D.c.id).limit(bindparam("limit")))
    return ids.with_for_update(skip_locked=True) if postgresql else ids


# built once so SQLAlchemy reuses their compiled form: they run for every batch
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
    link_secret: str
    list_slug: str
    list_name: str
    subscribed: bool
    attempts: int
    first_attempt_at: datetime | None
    attributes: dict  # the subscriber's attributes, for personal('attr.NAME')


def _claimed_rows_query():  # type: ignore[no-untyped-def]
    S, L, SUB = Subscriber.__table__, MailingList.__table__, Subscription.__table__
    return (
        select(D.c.id, D.c.email, D.c.subscriber_id, S.c.uid, S.c.name, S.c.email_key, S.c.link_secret,
               L.c.slug, L.c.name, SUB.c.status, D.c.attempts, D.c.first_attempt_at, S.c.attributes)
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
    rows = [Row(r[0], r[1] or "", r[2], r[3] or "", r[4] or "", r[5] or "", r[6] or "", r[7] or "", r[8] or "",
                r[9] in (SubscriptionStatus.CONFIRMED, SubscriptionStatus.CONFIRMED.value), r[10] or 0, as_utc(r[11]),
                r[12] or {})
            for r in conn.execute(_CLAIMED_ROWS, params)]
    conn.commit()
    return rows


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


def mark_unknown(conn: Connection, holder: str, send_id: int | None, now: datetime) -> int:
    """The ``sending`` rows of dead claimant *holder* become unknown (G7); returns how many."""
    where = [D.c.claimed_by == holder, D.c.status == DeliveryStatus.SENDING.value]
    if send_id is not None:
        where.append(D.c.send_id == send_id)
    return conn.execute(update(D).where(*where).values(
        status=DeliveryStatus.UNKNOWN.value, claimed_by="", updated_at=now,
        last_reply=f"in flight when {holder} stopped: may or may not have been delivered; "
                   "not resent automatically (--retry-unknown)")).rowcount


def release_holder(conn: Connection, holder: str, send_id: int | None) -> int:
    """Every row (of *send_id*, or of any send) claimed by dead claimant *holder*, unclaimed."""
    where = [D.c.claimed_by == holder] + ([D.c.send_id == send_id] if send_id is not None else [])
    return conn.execute(update(D).where(*where).values(claimed_by="")).rowcount


def _temporary_failed(send_id: int):  # type: ignore[no-untyped-def]
    """Rows failed after retrying a 4xx (or with no reply) until too old: what --retry-failed queues."""
    return and_(D.c.send_id == send_id, D.c.status == DeliveryStatus.FAILED.value,
                or_(D.c.last_code.like("4%"), D.c.last_code == ""))


def retryable_failed(conn: Connection, send_id: int) -> int:
    """How many rows requeue_failed would queue now (deferred ones and temporary failures); writes nothing."""
    deferred = conn.execute(select(func.count()).select_from(D).where(
        D.c.send_id == send_id, D.c.status == DeliveryStatus.DEFERRED.value)).scalar() or 0
    return deferred + (conn.execute(select(func.count()).select_from(D).where(_temporary_failed(send_id)))
                       .scalar() or 0)


def requeue_failed(db: Database, send_id: int) -> int:
    """Temporary failures due now: deferred rows, and rows failed after retrying 4xx until too old."""
    now = utcnow()
    with db.engine.begin() as conn:
        n = conn.execute(update(D).where(D.c.send_id == send_id, D.c.status == DeliveryStatus.DEFERRED.value)
                         .values(next_attempt_at=now, claimed_by="")).rowcount
        n += conn.execute(update(D).where(_temporary_failed(send_id)).values(
                status=DeliveryStatus.QUEUED.value, first_attempt_at=None, next_attempt_at=None,
                claimed_by="", updated_at=now)).rowcount
    return n


def requeue_unknown(db: Database, send_id: int) -> int:
    """Unknown rows queued again: the caller accepts that some may get a second copy."""
    with db.engine.begin() as conn:
        return conn.execute(update(D).where(D.c.send_id == send_id, D.c.status == DeliveryStatus.UNKNOWN.value)
                            .values(status=DeliveryStatus.QUEUED.value, claimed_by="", updated_at=utcnow())).rowcount
