"""Mailing lists: create them, and count their subscriptions per status."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from mailer.errors import InputError
from mailer.headers import clean_header, has_header_trick
from mailer.models import MailingList, OptIn, Subscription, SubscriptionStatus

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")
MAX_DESCRIPTION = 1000


class ListFieldError(InputError):
    """A list's slug, name or description is not acceptable; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ListExists(InputError):
    """A list with this slug exists already."""


@dataclass(frozen=True)
class ListSummary:
    slug: str
    name: str
    opt_in: OptIn
    counts: dict[SubscriptionStatus, int]
    description: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def find_list(session: Session | Connection, slug: str) -> MailingList | None:
    """The list with this slug, or None: the one lookup of a list by slug.

    On a Core connection (bulk paths) the row is returned as a detached
    MailingList holding its id, slug, name and opt-in.
    """
    if isinstance(session, Session):
        return session.scalar(select(MailingList).where(MailingList.slug == slug))
    row = session.execute(select(MailingList.id, MailingList.slug, MailingList.name, MailingList.opt_in)
                          .where(MailingList.slug == slug)).first()
    return None if row is None else MailingList(id=row.id, slug=row.slug, name=row.name, opt_in=row.opt_in)


def get_list(session: Session | Connection, slug: str) -> MailingList:
    """The list with this slug; InputError naming it when there is none."""
    mlist = find_list(session, slug)
    if mlist is None:
        raise InputError(f"unknown list {slug!r} (see `mailer lists`)")
    return mlist


def _checked(name: str, description: str) -> tuple[str, str]:
    """The name and description as stored; ListFieldError naming the field that is wrong."""
    if not name.strip() or has_header_trick(name):
        raise ListFieldError("name", "list name: must be one line of text (it is shown in the List-Id header)")
    if len(description.strip()) > MAX_DESCRIPTION:
        raise ListFieldError("description", f"list description: at most {MAX_DESCRIPTION} characters")
    return clean_header(name, 200), description.strip()


def add_list(session: Session, slug: str, name: str, opt_in: OptIn = OptIn.DOUBLE,
             description: str = "") -> MailingList:
    """Create a list; ListFieldError for a bad slug, name or description, ListExists for a taken slug."""
    if not SLUG.match(slug):
        raise ListFieldError("slug", f"list slug {slug!r}: use lower-case letters, digits and '-' (at most 64)")
    name, description = _checked(name, description)
    if find_list(session, slug) is not None:
        raise ListExists(f"list {slug!r} exists already")
    mlist = MailingList(slug=slug, name=name, opt_in=opt_in, description=description)
    session.add(mlist)
    session.flush()
    return mlist


def edit_list(session: Session, slug: str, *, name: str | None = None, description: str | None = None,
              opt_in: OptIn | None = None) -> MailingList:
    """Change a list's name, description or opt-in policy (None keeps it); the slug stays, since
    issue folders, schedules and links name the list by it."""
    mlist = get_list(session, slug)
    new_name, new_description = _checked(mlist.name if name is None else name,
                                         mlist.description if description is None else description)
    mlist.name, mlist.description = new_name, new_description
    if opt_in is not None:
        mlist.opt_in = opt_in
    return mlist


def list_summaries(session: Session) -> list[ListSummary]:
    """Every list, by slug, with its number of subscriptions per status."""
    counts: dict[int, dict[SubscriptionStatus, int]] = {}
    for list_id, status, n in session.execute(
            select(Subscription.list_id, Subscription.status, func.count())
            .group_by(Subscription.list_id, Subscription.status)):
        counts.setdefault(list_id, {})[status] = n
    return [
        ListSummary(m.slug, m.name, m.opt_in,
                    {s: counts.get(m.id, {}).get(s, 0) for s in SubscriptionStatus}, m.description or "")
        for m in session.scalars(select(MailingList).order_by(MailingList.slug))
    ]


def all_lists(session: Session) -> list[MailingList]:
    """Every list, by name then slug."""
    return list(session.scalars(select(MailingList).order_by(MailingList.name, MailingList.slug)))
