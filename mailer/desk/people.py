"""What the desk shows and changes of the subscribers: search, one person, add, unsubscribe, erase,
export, and a CSV import in two steps (mailer.desk.imports).

Everything goes through the functions `mailer subscribers` calls (mailer.people.directory, search,
exporting); this module adds what a form needs on top: each field checked and named before
anything is written, and the desk account as the actor.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterator

from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.models import Subscriber, SubscriptionStatus
from mailer.people import directory, search
from mailer.people.lists import find_list
from mailer.people.rules import Outcome

STATUSES = (SubscriptionStatus.CONFIRMED, SubscriptionStatus.PENDING, SubscriptionStatus.UNSUBSCRIBED)
MODES = {"confirmed": "consent is on record: confirmed now", "opt_in": "send the confirmation mail (pending)"}


class FieldError(InputError):
    """A form field is wrong; `field` names it (422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NoSuchSubscriber(InputError):
    """No subscriber has this id (404)."""


class Suppressed(InputError):
    """The address may not be subscribed to a list it asked to leave, bounced from or was erased from (409)."""


@dataclass(frozen=True)
class Person:
    """Everything held about one subscriber, as `mailer subscribers show --json` gives it, and their tags."""

    id: int
    email: str
    name: str
    created_at: datetime
    data: dict[str, Any]
    tags: list[str]

    @property
    def active_lists(self) -> list[str]:
        """The lists they can still be unsubscribed from."""
        return [s["list"] for s in self.data["subscriptions"] if s["status"] != "unsubscribed"]


def actor_of(email: str) -> str:
    """How the subscription history names a desk account (audit_event.actor holds 50 characters)."""
    return f"desk:{email}"[:50]


def list_names(db: Database) -> dict[str, str]:
    """slug -> name of every list, by name (without the counts, which read every subscription)."""
    return {slug: name for slug, name, _ in directory.public_lists(db)}


def status_of(value: str) -> SubscriptionStatus | None:
    """The status a filter names ('' for any); FieldError for anything else."""
    if not value:
        return None
    try:
        return SubscriptionStatus(value)
    except ValueError:
        raise FieldError("status", "status: choose confirmed, pending or unsubscribed") from None


def find(db: Database, q: str, list_slug: str, status: str, after: str, tag: str = "") -> search.Results:
    """One page of the search (mailer.people.search); FieldError naming `list`, `status`, `tag` or `q`."""
    from mailer.people.segments import check_tag

    wanted = status_of(status)
    try:
        tag = check_tag(tag) if tag.strip() else ""
    except InputError as exc:
        raise FieldError("tag", str(exc)) from None
    with db.session() as session:
        if list_slug and find_list(session, list_slug) is None:
            raise FieldError("list", f"list: there is no list {list_slug[:64]!r}")
        try:
            return search.search(session, q, list_slug, wanted, after[:320], tag=tag)
        except InputError as exc:
            raise FieldError("q", str(exc)) from None


def email_of(db: Database, sid: int) -> str:
    """The address of subscriber *sid*; NoSuchSubscriber when there is none."""
    with db.session() as session:
        email = session.scalar(select(Subscriber.email).where(Subscriber.id == sid))
    if email is None:
        raise NoSuchSubscriber(f"there is no subscriber #{sid}")
    return email


def person(db: Database, settings: Settings, sid: int) -> Person:
    """Subscriber *sid*: what `mailer subscribers show` prints, and their tags."""
    from mailer.people.tagging import tags_of

    email = email_of(db, sid)
    data = directory.person(db, settings, email)
    sub = data["subscriber"]
    return Person(sid, sub["email"], sub["name"] or "", datetime.fromisoformat(sub["created_at"]), data,
                  tags_of(db, email))


def id_of(db: Database, email: str) -> int | None:
    """The id of the subscriber with address *email* (any case), or None."""
    with db.session() as session:
        return session.scalar(select(Subscriber.id).where(Subscriber.email_key == email.casefold()))


def add(db: Database, settings: Settings, email: str, name: str, lists: list[str], mode: str,
        actor: str, welcome: bool = False) -> tuple[str, list[tuple[str, Outcome]]]:
    """`mailer subscribers add` for each of *lists*: confirmed, or pending with the confirmation mail;
    *welcome* (`--welcome`, only with consent on record) also queues each list's welcome mail.

    Every field is checked, and the address's suppressions, before anything is written: FieldError
    naming the field, or Suppressed naming the lists it may not join.
    """
    from mailer.people.subscriptions import clean_name, normalize_email, suppression_for

    try:
        address = normalize_email(email)
    except InputError as exc:
        raise FieldError("email", f"email: {exc}") from None
    try:
        clean_name(name)
    except InputError as exc:
        raise FieldError("name", str(exc)) from None
    if mode not in MODES:
        raise FieldError("mode", "choose whether consent is on record or a confirmation mail is sent")
    if welcome and mode != "confirmed":
        raise FieldError("welcome", "welcome mail: only with consent on record (someone who gets the "
                                    "confirmation mail is welcomed when they confirm)")
    slugs = list(dict.fromkeys(s for s in lists if s))
    if not slugs:
        raise FieldError("lists", "lists: choose at least one list")
    with db.session() as session:
        unknown = [s for s in slugs if find_list(session, s) is None]
        if unknown:
            raise FieldError("lists", f"lists: there is no list {unknown[0][:64]!r}")
        barred = [s for s in slugs if suppression_for(session, settings, address.key, s) is not None]
    if barred:
        raise Suppressed(f"{address.email} is suppressed for {', '.join(barred)} (unsubscribed, bounced or "
                         "erased): only their own new confirmed opt-in can lift that; nothing was changed")
    done = []
    for slug in slugs:
        _, outcome = directory.add_subscriber(db, settings, address.email, name, slug, mode == "confirmed",
                                              welcome=welcome, actor=actor_of(actor), send_opt_in=mode == "opt_in")
        done.append((slug, outcome))
    return address.email, done


def unsubscribe(db: Database, settings: Settings, sid: int, list_slug: str, actor: str) -> tuple[str, int]:
    """`mailer subscribers unsubscribe` (one list, or every list for ''): the address and how many
    subscriptions ended. FieldError for a list they are not subscribed to."""
    email = email_of(db, sid)
    if list_slug and list_slug not in person(db, settings, sid).active_lists:
        raise FieldError("list", f"list: {email} has no subscription to end on {list_slug[:64]!r}")
    return email, directory.unsubscribe_person(db, settings, email, list_slug or None, actor=actor_of(actor))


def erase(db: Database, settings: Settings, sid: int) -> None:
    """`mailer subscribers erase`: everything held about them goes, their address from the desk's
    audit log too (mailer.people.erasure)."""
    directory.erase(db, settings, email_of(db, sid), lambda _address: None)


def export_lines(db: Database, list_slug: str, status: str) -> Iterator[list[str]]:
    """The rows `mailer subscribers export` writes (header first), read from the database as they
    are sent. The header is read before this returns, so an unknown list or status is a FieldError
    here and not in the middle of a download."""
    from mailer.people.exporting import export_rows

    wanted = status_of(status)
    with db.session() as session:
        if list_slug and find_list(session, list_slug) is None:
            raise FieldError("list", f"list: there is no list {list_slug[:64]!r}")

    def stream() -> Iterator[list[str]]:
        with db.session() as session:
            yield from export_rows(session, list_slug or None, wanted)

    rows = stream()
    header = next(rows)
    return itertools.chain([header], rows)
