"""Who may submit a report: one From address, matched by the envelope sender, allowed by the
settings (`submissions.senders`, or a confirmed member of a `submissions.members_of` list).

From alone is forged in a line of text, so the Return-Path (the envelope sender, written by the
delivering server) must name the same address; and when `submissions.authserv_id` names your own
mail server, its Authentication-Results header must show DMARC, or DKIM for the From domain,
passing. Without that setting, a sender who forges both From and the envelope gets a report held
for an editor (never sent on their own): the README says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses

from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.models import MailingList, Subscriber, Subscription, SubscriptionStatus

_DAEMONS = ("mailer-daemon", "postmaster")


@dataclass(frozen=True)
class Verdict:
    """Whether a mail may be filed; `sender` is its From address, `reason` why not."""

    allowed: bool
    sender: str
    reason: str = ""


def addresses(msg: EmailMessage, name: str) -> list[str]:
    """The addresses of every *name* header of *msg* (lower-cased); unreadable ones are skipped."""
    values = [str(v) for v in msg.get_all(name, [])]
    return [addr.strip().lower() for _, addr in getaddresses(values) if addr.strip()]


def return_path(msg: EmailMessage) -> str | None:
    """The envelope sender the delivering server recorded ("" for the null sender <>), None if absent."""
    values = msg.get_all("Return-Path", [])
    if not values:
        return None
    value = str(values[0]).strip()      # the topmost: written at the final delivery
    match = re.fullmatch(r"<\s*([^<>\s]*)\s*>", value)
    return (match.group(1) if match else value).lower()


def is_daemon(address: str) -> bool:
    """MAILER-DAEMON, postmaster, owner-* and *-request (RFC 3834 2): machines, not people."""
    local = address.partition("@")[0].lower()
    return local in _DAEMONS or local.startswith("owner-") or local.endswith("-request")


def authenticated(msg: EmailMessage, authserv_id: str, sender: str) -> bool:
    """Your server's Authentication-Results shows dmarc=pass, or dkim=pass for the sender's domain."""
    domain = sender.rpartition("@")[2].lower()
    for value in msg.get_all("Authentication-Results", []):
        text = " ".join(str(value).split())
        serv, _, results = text.partition(";")
        if serv.split()[0:1] != [authserv_id]:
            continue
        if re.search(r"\bdmarc\s*=\s*pass\b", results, re.IGNORECASE):
            return True
        for method in results.split(";"):
            match = re.search(r"\bdkim\s*=\s*pass\b.*?\bheader\.(?:d|i)\s*=\s*@?([A-Za-z0-9.-]+)", method,
                              re.IGNORECASE)
            if match and (domain == match.group(1).lower() or domain.endswith("." + match.group(1).lower())):
                return True
        return False        # the topmost result of our server decides
    return False


def check_sender(db: Database, settings: Settings, msg: EmailMessage) -> Verdict:
    """May *msg* be filed? One From, the envelope sender the same, allowed by the settings."""
    found = addresses(msg, "From")
    if len(found) != 1:
        return Verdict(False, ",".join(found)[:320], f"{len(found)} From addresses (one is needed)")
    sender = found[0]
    envelope = return_path(msg)
    if envelope is None:
        return Verdict(False, sender, "no Return-Path: the envelope sender is unknown")
    if envelope != sender:
        return Verdict(False, sender, f"From {sender} does not match the envelope sender {envelope or '<>'}")
    if is_daemon(sender):
        return Verdict(False, sender, "from a mail system, not a person")
    if settings.submissions_authserv_id and not authenticated(msg, settings.submissions_authserv_id, sender):
        return Verdict(False, sender, f"not authenticated by {settings.submissions_authserv_id} "
                                      "(no dmarc=pass or dkim=pass for the From domain)")
    if sender in {a.lower() for a in settings.submissions_senders} or is_member(db, settings, sender):
        return Verdict(True, sender)
    return Verdict(False, sender, "not an allowed sender")


def is_member(db: Database, settings: Settings, sender: str) -> bool:
    """A confirmed subscriber of one of the `submissions.members_of` lists."""
    if not settings.submissions_members_of:
        return False
    with db.session() as session:
        return session.scalar(
            select(Subscription.id).join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscriber.email_key == sender.casefold(),
                   MailingList.slug.in_(settings.submissions_members_of),
                   Subscription.status == SubscriptionStatus.CONFIRMED).limit(1)) is not None
