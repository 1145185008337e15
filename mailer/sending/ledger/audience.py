"""A send's audience: who it would go to now, and freezing that into queued delivery rows.

May import the floor and people (lists, subscriptions).
"""

from __future__ import annotations

from typing import Sequence

from sqlalchemy import exists, func, insert, literal, not_, select, union_all, update
from sqlalchemy.orm import Session

from mailer.db import Database
from mailer.errors import InputError
from mailer.models import (
    Delivery,
    DeliveryStatus,
    Send,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    utcnow,
)
from mailer.people.lists import get_list
from mailer.people.tagging import Audience

D = Delivery.__table__


def _audience_select(send_id: int | None, list_id: int, list_slug: str,  # type: ignore[no-untyped-def]
                     audience: Audience | None = None):
    """Confirmed subscribers of one list, not suppressed (by address in clear) for it, and in
    *audience* (tags, segment, exclusions) when given."""
    from mailer.people.subscriptions import GLOBAL   # here: that module loads email_validator

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
    if audience is not None:
        conditions.append(audience.condition())
    return select(Subscription.subscriber_id, Subscriber.email).join(
        Subscriber, Subscriber.id == Subscription.subscriber_id).where(*conditions)


def audience_count(session: Session, list_slugs: Sequence[str],
                   audience: Audience | None = None) -> tuple[int, dict[str, int]]:
    """(distinct recipients, count per list) a send to *list_slugs* would freeze now."""
    per_list: dict[str, int] = {}
    union = None
    for slug in list_slugs:
        mlist = get_list(session, slug)
        q = _audience_select(None, mlist.id, slug, audience)
        per_list[slug] = session.scalar(select(func.count()).select_from(q.subquery())) or 0
        union = q if union is None else union.union(q)
    total = session.scalar(select(func.count()).select_from(union.subquery())) if union is not None else 0
    return total or 0, per_list


def audience_sample(session: Session, list_slugs: Sequence[str], limit: int = 10,
                    audience: Audience | None = None) -> list[str]:
    """A few addresses a send would go to (for --dry-run)."""
    out: list[str] = []
    for slug in list_slugs:
        mlist = get_list(session, slug)
        q = _audience_select(None, mlist.id, slug, audience).order_by(Subscription.subscriber_id).limit(limit)
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
        chosen = Audience.of(send.audience) if send.audience else None
        # one statement over every list: a subscriber on several lists is queued once, for the first
        # list that has them (row_number over the list order). No anti-join against delivery: a
        # statement probing the table it fills made PostgreSQL's first freeze after a bulk import
        # quadratic (16 s for 20,000 rows, bench/segment_bench.py); the audience_frozen flag under
        # the row lock is what keeps a freeze from running twice.
        per_list = []
        for position, slug in enumerate(send.list_slugs):
            mlist = get_list(session, slug)
            q = _audience_select(None, mlist.id, slug, chosen)
            per_list.append(q.add_columns(literal(mlist.id).label("list_id"), literal(position).label("position")))
        every = union_all(*per_list).subquery() if len(per_list) > 1 else per_list[0].subquery()
        ranked = select(every, func.row_number().over(partition_by=every.c.subscriber_id,
                                                      order_by=every.c.position).label("rank")).subquery()
        session.execute(insert(D).from_select(
            ["send_id", "subscriber_id", "list_id", "email", "status", "attempts", "last_code",
             "last_reply", "message_id", "claimed_by", "updated_at"],
            select(literal(send_id), ranked.c.subscriber_id, ranked.c.list_id, ranked.c.email,
                   literal(DeliveryStatus.QUEUED.value), literal(0), literal(""), literal(""),
                   literal(""), literal(""), literal(now, Delivery.updated_at.type))
            .where(ranked.c.rank == 1).order_by(ranked.c.subscriber_id),
        ))
        session.execute(update(table).where(table.c.id == send_id).values(audience_frozen=True))
        return session.scalar(select(func.count()).where(D.c.send_id == send_id)) or 0
