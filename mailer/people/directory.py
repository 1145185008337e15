"""The subscriber directory as the commands use it: each function opens its own session.

The CLI parses, calls one of these and prints; the queries and the rules stay in
people.subscriptions, people.lists, people.exporting, people.dataexport and people.erasure,
imported by the functions that use them: `mailer lists` need not load the address validator
(email_validator) that people.subscriptions brings.
"""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any, Callable

from mailer.errors import InputError
from mailer.models import ConsentSource, OptIn, Reason, Subscriber, SubscriptionStatus
from mailer.people import lists

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mailer.config import Settings
    from mailer.db import Database
    from mailer.mail.message import Recipient
    from mailer.people.search import Results as SearchResults
    from mailer.people.subscriptions import Outcome


def _subscriber(session: Session, email: str) -> Subscriber:
    from mailer.people.subscriptions import find_subscriber

    found = find_subscriber(session, email)
    if found is None:
        raise InputError(f"no subscriber with address {email.strip()[:80]!r}")
    return found


def list_summaries(db: Database) -> list[lists.ListSummary]:
    """Every list with its subscriptions counted per status."""
    with db.session() as session:
        return lists.list_summaries(session)


def public_lists(db: Database) -> list[tuple[str, str, str]]:
    """(slug, name, description) of every list a visitor may sign up to (each has a form), by name."""
    with db.session() as session:
        return [(m.slug, m.name, m.description or "") for m in lists.all_lists(session)]


def add_list(db: Database, slug: str, name: str, opt_in: OptIn, description: str) -> None:
    with db.session() as session:
        lists.add_list(session, slug, name, opt_in, description)


def edit_list(db: Database, slug: str, *, name: str | None = None, description: str | None = None,
              opt_in: OptIn | None = None) -> None:
    """Change list *slug*'s name, description or opt-in policy (None keeps it)."""
    with db.session() as session:
        lists.edit_list(session, slug, name=name, description=description, opt_in=opt_in)


def set_welcome(db: Database, settings: Settings, slug: str, issue_dir: str | None) -> str | None:
    """Set (or, with None, clear) list *slug*'s welcome issue, composed first to check it;
    returns its subject. The folder is kept relative to the project root when inside it."""
    from mailer.content.compose import compose_issue
    from mailer.people.lists import get_list

    stored, subject = "", None
    if issue_dir is not None:
        composed = compose_issue(settings, issue_dir)
        root = settings.root.resolve() if settings.root else None
        stored = str(composed.path.relative_to(root)) if root and composed.path.is_relative_to(root) \
            else str(composed.path)
        subject = composed.subject
    with db.session() as session:
        get_list(session, slug).welcome_issue = stored
    return subject


def add_subscriber(db: Database, settings: Settings, email: str, name: str, list_slug: str,
                   confirmed: bool, welcome: bool = False, *, actor: str = "cli",
                   send_opt_in: bool = False) -> tuple[str, Outcome]:
    """Subscribe *email* to *list_slug* on the admin's word; the normalised address and the outcome.
    With *welcome*, a confirmed subscription gets the list's welcome mail; with *send_opt_in*, a
    pending one the confirmation mail (the sign-up form's), queued in the same transaction."""
    from mailer.people.lists import get_list
    from mailer.people.subscriptions import ConsentInfo, Outcome, clean_name, normalize_email, subscribe

    address = normalize_email(email)
    with db.session() as session:
        mlist = get_list(session, list_slug)
        sub, outcome = subscribe(session, settings, mlist, address, name=clean_name(name), confirmed=confirmed,
                                 consent=ConsentInfo(ConsentSource.ADMIN, form_id=actor[:100]), actor=actor[:50],
                                 welcome=welcome)
        if send_opt_in and sub is not None and outcome in (Outcome.CREATED_PENDING, Outcome.NOW_PENDING,
                                                           Outcome.ALREADY_PENDING):
            from mailer.signups.confirmations import enqueue_confirmation

            enqueue_confirmation(session, sub.subscriber, mlist)
    return address.email, outcome


def export_subscribers(db: Database, out: IO[str], list_slug: str | None,
                       status: SubscriptionStatus | None) -> int:
    """Write the CSV export to *out*; the number of rows."""
    from mailer.people.exporting import export_csv

    with db.session() as session:
        return export_csv(session, out, list_slug, status)


def subscription_rows(db: Database, list_slug: str | None, status: SubscriptionStatus | None,
                      limit: int) -> list[list[str]]:
    """At most *limit* export rows (no header): email, name, list, status, since, ..."""
    from mailer.people.exporting import export_rows

    found: list[list[str]] = []
    with db.session() as session:
        rows = export_rows(session, list_slug, status)
        next(rows)
        for row in rows:
            if len(found) == limit:
                break
            found.append(list(row))
    return found


def find_subscribers(db: Database, q: str, list_slug: str | None, status: SubscriptionStatus | None,
                     limit: int, after: str = "") -> SearchResults:
    """Subscribers whose address or name begins with *q*, in address order (mailer.people.search)."""
    from mailer.people.search import search

    with db.session() as session:
        return search(session, q, list_slug or "", status, after, limit)


def person(db: Database, settings: Settings, email: str) -> dict[str, Any]:
    """Everything held about the subscriber with address *email*."""
    from mailer.people.dataexport import person_data

    with db.session() as session:
        return person_data(session, settings, _subscriber(session, email))


def unsubscribe_person(db: Database, settings: Settings, email: str, list_slug: str | None, *,
                       actor: str = "cli") -> int:
    """Unsubscribe on their behalf (from one list or all) and suppress; the subscriptions changed."""
    from mailer.people.lists import get_list
    from mailer.people.subscriptions import unsubscribe

    with db.session() as session:
        mlist = get_list(session, list_slug) if list_slug else None
        return unsubscribe(session, settings, _subscriber(session, email), mlist, Reason.ADMIN, actor=actor[:50])


def erase(db: Database, settings: Settings, email: str, confirm: Callable[[str], None]) -> None:
    """Erase the person after *confirm* (called with their stored address) returns."""
    from mailer.people.erasure import erase_person

    with db.session() as session:
        subscriber = _subscriber(session, email)
        confirm(subscriber.email)
        erase_person(session, settings, subscriber)


def preview_recipient(db: Database, email: str, issue_lists: list[str] | tuple[str, ...]) -> Recipient:
    """A preview's recipient: the subscriber, on a confirmed subscription to one of the issue's lists
    if there is one (else any of their subscriptions)."""
    from mailer.mail.message import Recipient
    from mailer.people.subscriptions import find_subscriber

    with db.session() as session:
        sub = find_subscriber(session, email)
        if sub is None:
            raise InputError(f"--as {email}: no such subscriber")
        chosen = [s for s in sub.subscriptions if s.status is SubscriptionStatus.CONFIRMED] or sub.subscriptions
        wanted = [s for s in chosen if s.mailing_list.slug in issue_lists] or chosen
        if not wanted:
            raise InputError(f"--as {email}: subscribed to no list")
        mlist = wanted[0].mailing_list
        return Recipient(key="preview", email=sub.email, name=sub.name, subscriber_uid=sub.uid,
                         list_slug=mlist.slug, list_name=mlist.name, link_secret=sub.link_secret,
                         attributes=sub.attributes or {})
