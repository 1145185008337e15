"""What `mailer send` decides before the loop runs: start, resume or retry a send of an issue.

One issue goes to one list once. A second send of the same issue to a list
it already went to is refused while the first is unfinished (resume it) and,
once the first is done or scheduled, unless the caller passes ``again`` (no
accidental double campaign). The database enforces it (ledger.once); status
changes go through the ledger. May import the rest
of sending, people, mail, backends, content and the floor; the message
machinery (dkim, premailer) only inside send_test_message, so that
`mailer status` does not load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.models import Send, SendStatus
from mailer.people.lists import get_list
from mailer.sending import ledger, recovery

if TYPE_CHECKING:
    from mailer.backends.base import Backend, Result
    from mailer.content.compose import ComposedIssue

def sends_of(db: Database, issue_slug: str) -> list[Send]:
    """Every send of the issue, oldest first."""
    with db.session() as session:
        return list(session.scalars(select(Send).where(Send.issue_slug == issue_slug).order_by(Send.id)))


def check_not_sent(db: Database, issue_slug: str, list_slugs: Sequence[str], again: bool) -> None:
    """Refuse early (before the question) what `start` would refuse: the rule lives in ledger.once."""
    with db.session() as session:
        ledger.once.check(session, issue_slug, list_slugs, again=again)


class AudienceChanged(InputError):
    """The audience is no longer the count the sender confirmed (sign-ups, unsubscribes or a segment
    edited meanwhile): ask again."""

    def __init__(self, total: int, expected: int) -> None:
        super().__init__(f"the audience changed since it was counted: {total:,} now, {expected:,} then; "
                         "count it again before sending")
        self.total = total


def start_confirmed(db: Database, composed: ComposedIssue, list_slugs: Sequence[str], *, again: bool = False,
                    audience: dict | None = None, expected: int | None = None) -> int:
    """Start a send once its question was answered: the path of `mailer send` and of the desk.
    InputError (nothing written) when nobody would get it, AudienceChanged when *expected* (the
    count shown) is no longer the count, AlreadySent as `start`; else `start`'s id."""
    from mailer.people.tagging import Audience

    who = Audience.of(audience) if audience else None
    with db.session() as session:
        total, _ = ledger.audience_count(session, list_slugs, who)
    if total == 0:
        which = f" ({who.describe()})" if who else ""
        raise InputError(f"no confirmed subscribers in {', '.join(list_slugs)}{which}: nothing to send")
    if expected is not None and total != expected:
        raise AudienceChanged(total, expected)
    check_not_sent(db, composed.slug, list_slugs, again)
    return start(db, composed, list_slugs, again=again, audience=audience)


def start(db: Database, composed: ComposedIssue, list_slugs: Sequence[str], *, again: bool = False,
          audience: dict | None = None) -> int:
    """Create the send, claiming its lists, and start it (status sending) in one transaction; its id.

    ledger.AlreadySent, and nothing written, when the issue already went (or
    is going) to one of the lists, also when another command won that claim
    a moment ago.
    """
    with db.session() as session:
        return ledger.create_send(session, composed, list_slugs, SendStatus.SENDING, again=again,
                                  audience=audience).id


@dataclass(frozen=True)
class Resumed:
    send_id: int
    unknown: int      # rows found in flight from a dead process (not resent)
    retried: int      # rows queued again by --retry-failed / --retry-unknown


def take_over(db: Database, issue_slug: str, *, retry_failed: bool = False,
              retry_unknown: bool = False) -> Resumed:
    """Take over the newest send of the issue: reap dead claims, queue retries, claim it (G7)."""
    sends = [s for s in sends_of(db, issue_slug) if s.status not in (SendStatus.CANCELLED,)]
    if not sends:
        raise InputError(f"issue {issue_slug!r} has no send to resume; start one with --list")
    send = sends[-1]
    if send.status not in (SendStatus.SENDING, SendStatus.PAUSED, SendStatus.DONE):
        raise InputError(f"send #{send.id} of {issue_slug!r} is {send.status.value}: nothing to resume")
    if send.status is SendStatus.DONE and not (retry_failed or retry_unknown):
        raise InputError(f"send #{send.id} of {issue_slug!r} is done; use --retry-failed or --retry-unknown")
    others = recovery.live_claimants(db, send.id)
    if others:
        raise InputError(f"send #{send.id} is being sent right now by {', '.join(others)}")
    unknown, _ = recovery.reap_stale(db, send.id)
    retried = 0
    if retry_failed:
        retried += ledger.requeue_failed(db, send.id)
    if retry_unknown:
        retried += ledger.requeue_unknown(db, send.id)
    if send.status is not SendStatus.SENDING and not ledger.claim_send(db, send.id, send.status):
        raise InputError(f"send #{send.id} changed status meanwhile; try again")
    return Resumed(send.id, unknown, retried)


def send_test_message(settings: Settings, db: Database, composed: ComposedIssue, to: str, backend: Backend,
                      list_slug: str = "") -> Result:
    """One message of the issue to *to*: links are not bound to a subscriber; nothing is recorded."""
    from mailer.mail.message import MessageFactory, Recipient
    from mailer.people.subscriptions import normalize_email

    address = normalize_email(to)
    list_name = ""
    if list_slug:
        with db.session() as session:
            list_name = get_list(session, list_slug).name
    factory = MessageFactory(settings, subject=composed.subject, html=composed.html, text=composed.text,
                             issue_slug=composed.slug, preheader=composed.preheader)
    message = factory.render(Recipient("test", address.email, "", "test-send", list_slug, list_name))
    with backend:
        return backend.send([message]).results[0]
