"""What a person does through the signed links in their mail: see their lists, leave, download, erase.

Each function is one unit of work on the database, named by the subscriber's
public uid (from a verified token); None means nobody has that uid (erased,
say). Objects returned are loaded for rendering and detached. Used by the web
pages; may import people, models and the floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.db import Database
from mailer.models import MailingList, Reason, Subscriber, Subscription, SubscriptionStatus
from mailer.people.dataexport import person_data
from mailer.people.erasure import erase_person
from mailer.people.feedback import send_detail
from mailer.people.lists import find_list, get_list
from mailer.people.subscriptions import unsubscribe

ALL_LISTS = "all our lists"


@dataclass(frozen=True)
class Overview:
    """One person's subscriptions (by list name) and the lists they are not on."""

    subscriber: Subscriber
    subscriptions: list[Subscription]
    others: list[MailingList]

    @property
    def any_active(self) -> bool:
        return any(s.status is not SubscriptionStatus.UNSUBSCRIBED for s in self.subscriptions)


def _subscriber(session: Session, uid: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.uid == uid))


def _overview(session: Session, subscriber: Subscriber) -> Overview:
    subs = sorted(subscriber.subscriptions, key=lambda s: s.mailing_list.name)
    mine = {s.list_id for s in subs}
    others = list(session.scalars(select(MailingList).where(MailingList.id.not_in(mine) if mine else True)
                                  .order_by(MailingList.name)))
    return Overview(subscriber, subs, others)


def overview(db: Database, uid: str) -> Overview | None:
    """What the preferences page shows."""
    with db.session() as session:
        subscriber = _subscriber(session, uid)
        return None if subscriber is None else _overview(session, subscriber)


def leave(db: Database, settings: Settings, uid: str, slug: str | None, actor: str) -> tuple[Overview, str] | None:
    """Leave the list *slug*, or every list when None; returns the new overview and the list's name.

    InputError for an unknown list.
    """
    with db.session() as session:
        subscriber = _subscriber(session, uid)
        if subscriber is None:
            return None
        mlist = get_list(session, slug) if slug is not None else None
        unsubscribe(session, settings, subscriber, mlist, Reason.USER, actor=actor)
        return _overview(session, subscriber), mlist.name if mlist else ALL_LISTS


def export(db: Database, settings: Settings, uid: str) -> dict[str, Any] | None:
    """Everything held about the person ("download my data")."""
    with db.session() as session:
        subscriber = _subscriber(session, uid)
        return None if subscriber is None else person_data(session, settings, subscriber)


def erase(db: Database, settings: Settings, uid: str) -> bool:
    """Erase the person (see `mailer.people.erasure`); False when there was nobody."""
    with db.session() as session:
        subscriber = _subscriber(session, uid)
        if subscriber is None:
            return False
        erase_person(session, settings, subscriber)
        return True


def list_name(db: Database, slug: str) -> str:
    """The name of the list an unsubscribe link names; "all our lists" for none (or one gone)."""
    if not slug:
        return ALL_LISTS
    with db.session() as session:
        mlist = find_list(session, slug)
        return mlist.name if mlist else ALL_LISTS


def leave_by_link(db: Database, settings: Settings, uid: str, slug: str, actor: str, send_uid: str = "") -> str:
    """The unsubscribe link: leave the list it names (every list for none, or one gone); returns its name.

    A uid that names nobody changes nothing and gets the same answer. *send_uid*, the send the
    link was mailed in (not part of its proof), is noted on the audit event when it names a
    send (people.feedback); anything else is ignored.
    """
    with db.session() as session:
        mlist = find_list(session, slug) if slug else None
        subscriber = _subscriber(session, uid)
        if subscriber is not None:
            unsubscribe(session, settings, subscriber, mlist, Reason.USER, actor=actor,
                        detail=send_detail(session, send_uid))
        return mlist.name if mlist else ALL_LISTS
