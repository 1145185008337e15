"""Finding subscribers: a prefix of the address or of the name, by list and status, a page at a time.

Both prefixes are read from an index (models.people: `ix_subscriber_name_prefix`, and on
PostgreSQL `ix_subscriber_email_key_prefix`), so a search costs the rows it finds, not the
table: on SQLite as a range of the binary-ordered key (`key >= 'ana' AND key < 'anb'`), on
PostgreSQL as `LIKE 'ana%'` on an index in the "C" collation (code point order, as SQLite's and
Python's), which is right whatever the database's own collation.
A name matches from its start ("Ana L" finds "Ana Lopez", not "Lopez"). Pages follow the
address key (keyset: `after` is the last key shown), so page 2,000 costs what page 1 does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, collate, exists, func, or_, select
from sqlalchemy.orm import Session

from mailer.errors import InputError
from mailer.models import MailingList, Subscriber, SubscriberTag, Subscription, SubscriptionStatus
from mailer.people.lists import get_list

PAGE = 50
MAX_QUERY = 200
NAME_CAP = 500    # names read for one search: a broader one asks for more of the name


@dataclass(frozen=True)
class Found:
    """One subscriber of a search's page, with their subscriptions (list slug, status)."""

    id: int
    uid: str
    email: str
    name: str
    created_at: datetime
    subscriptions: tuple[tuple[str, SubscriptionStatus], ...]


@dataclass(frozen=True)
class Results:
    rows: list[Found]
    next_after: str | None      # the key to pass as `after` for the next page, None on the last
    names_capped: bool = False  # more than NAME_CAP names start with the query: not all are here


def _bump(prefix: str) -> str:
    """The smallest string greater than every string that starts with *prefix* (code point order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1) if ord(prefix[-1]) < 0x10FFFF else prefix + "\U0010ffff"


def _like(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _ordered(column: ColumnElement[str], dialect: str) -> ColumnElement[str]:
    """*column* compared in code point order, as its index is (see the module docstring)."""
    return collate(column, "C") if dialect == "postgresql" else column


def _prefix(column: ColumnElement[str], prefix: str, dialect: str) -> ColumnElement[bool]:
    """*column* starts with *prefix*, in the form the dialect's index serves."""
    if dialect == "postgresql":
        return _ordered(column, dialect).like(_like(prefix), escape="\\")
    return and_(column >= prefix, column < _bump(prefix))


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


def _columns():  # type: ignore[no-untyped-def]
    return select(Subscriber.id, Subscriber.uid, Subscriber.email, Subscriber.name, Subscriber.created_at,
                  Subscriber.email_key)


def _names(q: str, dialect: str):  # type: ignore[no-untyped-def]
    """The first NAME_CAP + 1 subscribers, in name order, whose lower-cased name starts with *q*."""
    name = _ordered(func.lower(Subscriber.name), dialect)
    # SQLite's lower() changes ASCII letters only; PostgreSQL's every letter: try both spellings
    spellings = [_prefix(func.lower(Subscriber.name), s, dialect) for s in dict.fromkeys((q.lower(), _ascii_lower(q)))]
    # read from the index in name order, which stops early: the same names on every page
    return _columns().where(or_(*spellings)).order_by(name, Subscriber.id).limit(NAME_CAP + 1)


def search(session: Session, q: str = "", list_slug: str = "", status: SubscriptionStatus | None = None,
           after: str = "", limit: int = PAGE, tag: str = "") -> Results:
    """One page of subscribers in address order: those whose address or name starts with *q* ('' for
    everyone), with a subscription on *list_slug* and/or in *status*, with *tag* (a tag as stored,
    '' for any), after the address key *after*.

    The addresses are read in order from their index and stop at the page's end; the names from
    theirs, at most NAME_CAP of them (`Results.names_capped` says when more names match).
    InputError for an unknown list or a query over MAX_QUERY characters.
    """
    q = " ".join(q.split())
    if len(q) > MAX_QUERY:
        raise InputError(f"search: at most {MAX_QUERY} characters")
    dialect = session.get_bind().dialect.name
    conditions = []
    if list_slug or status is not None:
        wanted = [Subscription.subscriber_id == Subscriber.id]
        if list_slug:
            wanted.append(Subscription.list_id == get_list(session, list_slug).id)
        if status is not None:
            wanted.append(Subscription.status == status)
        conditions.append(exists().where(*wanted))
    if tag:
        conditions.append(exists().where(SubscriberTag.subscriber_id == Subscriber.id, SubscriberTag.tag == tag))
    filters = list(conditions)    # without the page's start: the names' page is cut in Python
    # the key is case-folded already: PostgreSQL's index is on lower(key) (models.people)
    key = _ordered(func.lower(Subscriber.email_key) if dialect == "postgresql" else Subscriber.email_key, dialect)
    if after:
        conditions.append(key > after)
    addresses = _columns().where(*conditions)
    if q:
        addresses = addresses.where(_prefix(func.lower(Subscriber.email_key) if dialect == "postgresql"
                                            else Subscriber.email_key, q.casefold(), dialect))
    found = {r.email_key: r for r in session.execute(addresses.order_by(key).limit(limit + 1))}
    capped = False
    if q and "@" not in q:   # an address is not a name
        names = session.execute(_names(q, dialect).where(*filters)).all()
        capped = len(names) > NAME_CAP
        found.update((r.email_key, r) for r in names[:NAME_CAP] if r.email_key > after)
    rows = [found[k] for k in sorted(found)]
    more = len(rows) > limit
    rows = rows[:limit]
    subs: dict[int, list[tuple[str, SubscriptionStatus]]] = {row.id: [] for row in rows}
    if subs:
        for sid, slug, st in session.execute(
                select(Subscription.subscriber_id, MailingList.slug, Subscription.status)
                .join(MailingList, MailingList.id == Subscription.list_id)
                .where(Subscription.subscriber_id.in_(list(subs))).order_by(MailingList.slug)):
            subs[sid].append((slug, st))
    page = [Found(r.id, r.uid, r.email, r.name, r.created_at, tuple(subs[r.id])) for r in rows]
    return Results(page, rows[-1].email_key if more else None, capped)
