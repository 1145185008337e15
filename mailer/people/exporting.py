"""CSV export of a list's subscriptions, or of every subscriber, streamed in id order."""

from __future__ import annotations

import csv
from typing import IO, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.models import MailingList, Subscriber, Subscription, SubscriptionStatus
from mailer.people.lists import get_list

FIXED = ["email", "name", "list", "status", "reason", "subscribed_at", "confirmed_at", "unsubscribed_at"]
CHUNK = 2000


def _iso(value) -> str:  # type: ignore[no-untyped-def]
    return value.isoformat() if value is not None else ""


def _attribute_names(session: Session, list_id: int | None) -> list[str]:
    """Every attribute key in use (one pass over the JSON column), sorted."""
    query = select(Subscriber.attributes)
    if list_id is not None:
        query = query.join(Subscription).where(Subscription.list_id == list_id)
    names: set[str] = set()
    for attributes in session.scalars(query.execution_options(yield_per=CHUNK)):
        names.update(attributes or {})
    return sorted(names - set(FIXED))


def _safe(value: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection): a leading = + - @ gets a quote."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


safe_cell = _safe   # for the other CSV files people download (the desk's rejected rows)


def export_rows(session: Session, list_slug: str | None = None,
                status: SubscriptionStatus | None = None) -> Iterator[list[str]]:
    """The header, then one row per subscription (of *list_slug*), or per subscriber without one."""
    mlist = get_list(session, list_slug) if list_slug else None
    names = _attribute_names(session, mlist.id if mlist else None)
    yield FIXED + names
    query = (select(Subscriber, Subscription, MailingList.slug)
             .outerjoin(Subscription, Subscription.subscriber_id == Subscriber.id)
             .outerjoin(MailingList, MailingList.id == Subscription.list_id)
             .order_by(Subscriber.id, Subscription.id))
    if mlist is not None:
        query = query.where(Subscription.list_id == mlist.id)
    if status is not None:
        query = query.where(Subscription.status == status)
    for sub, subscription, slug in session.execute(query.execution_options(yield_per=CHUNK)):
        fixed = [sub.email, _safe(sub.name), slug or ""]
        if subscription is None:
            fixed += ["", "", "", "", ""]
        else:
            fixed += [subscription.status.value, subscription.reason.value, _iso(subscription.created_at),
                      _iso(subscription.confirmed_at), _iso(subscription.unsubscribed_at)]
        attributes = sub.attributes or {}
        yield fixed + [_safe(str(attributes.get(n, ""))) for n in names]


def export_csv(session: Session, out: IO[str], list_slug: str | None = None,
               status: SubscriptionStatus | None = None) -> int:
    """Write the export to *out*; return the number of data rows."""
    writer = csv.writer(out)
    count = -1
    for count, row in enumerate(export_rows(session, list_slug, status)):
        writer.writerow(row)
    return max(count, 0)
