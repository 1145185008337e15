"""The subscription state machine: subscribe, confirm, unsubscribe, suppress.

Every change of status goes through here, so that suppression stays sticky
(STANDARDS B8) and every change leaves an audit event. Functions take an open
session and never commit: the caller owns the unit of work.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Callable

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.errors import ConfigError, InputError
from mailer.headers import has_header_trick
from mailer.people.rules import Outcome, decide
from mailer.models import (
    AuditEvent,
    Consent,
    ConsentSource,
    MailingList,
    MailKind,
    QueuedMail,
    Reason,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
    utcnow,
)

GLOBAL = "*"


@dataclass(frozen=True)
class Address:
    """A validated address: as it will be written, and the key it is unique by."""

    email: str
    key: str


def normalize_email(raw: str) -> Address:
    """Validate syntax (no DNS) and normalise; raise InputError saying what is wrong."""
    if not isinstance(raw, str) or not raw.strip():
        raise InputError("empty email address")
    if has_header_trick(raw):
        raise InputError("email address contains a line break or control character")
    if len(raw) > 320:
        raise InputError("email address is longer than 320 characters")
    try:
        info = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InputError(f"invalid email address {raw.strip()[:80]!r}: {exc}") from None
    return Address(info.normalized, info.normalized.casefold())


def clean_name(raw: str | None) -> str:
    """A display name fit for a header: one line, bounded; None becomes ''."""
    if not raw:
        return ""
    if has_header_trick(raw):
        raise InputError("name contains a line break, control character or encoded word")
    return " ".join(raw.split())[:200]


_NO_HASH_KEY = "no hash key: run `mailer init` (it writes a fresh one to secrets.toml) or set MAILER_HASH_KEY"


def email_hash(settings: Settings, key: str) -> str:
    """Keyed hash of a normalised address: what suppression keeps after erasure."""
    if not settings.hash_key:
        raise ConfigError(_NO_HASH_KEY)
    return hmac.digest(settings.hash_key.encode(), key.encode(), hashlib.sha256).hex()  # one-shot: 5x faster


def email_hasher(hash_key: str) -> Callable[[str], str]:
    """email_hash for many addresses under one key (the import): the HMAC key schedule done once."""
    if not hash_key:
        raise ConfigError(_NO_HASH_KEY)
    base = hmac.new(hash_key.encode(), digestmod=hashlib.sha256)

    def digest(key: str) -> str:
        h = base.copy()
        h.update(key.encode())
        return h.hexdigest()
    return digest


def find_subscriber(session: Session, email: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email_key == normalize_email(email).key))


def suppression_for(session: Session, settings: Settings, key: str, list_slug: str) -> Suppression | None:
    """The suppression that forbids mailing *key* on *list_slug*, if any."""
    return session.scalar(
        select(Suppression)
        .where(Suppression.email_hash == email_hash(settings, key), Suppression.scope.in_([GLOBAL, list_slug]))
        .order_by(Suppression.id)
        .limit(1)
    )


def suppress(session: Session, settings: Settings, address: Address, reason: SuppressionReason,
             scope: str = GLOBAL, detail: str = "") -> Suppression:
    """Add (or keep) a suppression for *address* in *scope*."""
    digest = email_hash(settings, address.key)
    row = session.scalar(select(Suppression).where(Suppression.email_hash == digest, Suppression.scope == scope))
    if row is None:
        row = Suppression(email_hash=digest, email=address.email, scope=scope, reason=reason, detail=detail)
        session.add(row)
    return row


def audit(session: Session, action: str, subscriber: Subscriber | None, mlist: MailingList | None = None,
          old: SubscriptionStatus | None = None, new: SubscriptionStatus | None = None,
          reason: Reason | None = None, actor: str = "", detail: str = "") -> None:
    session.add(AuditEvent(
        subscriber_id=subscriber.id if subscriber else None,
        list_id=mlist.id if mlist else None,
        action=action,
        old_status=old.value if old else "",
        new_status=new.value if new else "",
        reason=reason.value if reason else "",
        actor=actor,
        detail=detail,
    ))


@dataclass
class ConsentInfo:
    source: ConsentSource
    form_id: str = ""
    ip: str = ""
    user_agent: str = ""
    text_version: str = ""
    text: str = ""


def get_or_create_subscriber(session: Session, address: Address, name: str = "",
                             attributes: dict | None = None) -> tuple[Subscriber, bool]:
    sub = session.scalar(select(Subscriber).where(Subscriber.email_key == address.key))
    if sub is not None:
        if name and not sub.name:
            sub.name = name
        if attributes:
            sub.attributes = {**(sub.attributes or {}), **attributes}
        return sub, False
    sub = Subscriber(email=address.email, email_key=address.key, name=name, attributes=attributes or {})
    session.add(sub)
    session.flush()
    return sub, True


def subscribe(session: Session, settings: Settings, mlist: MailingList, address: Address, *,
              name: str = "", attributes: dict | None = None, confirmed: bool = False,
              consent: ConsentInfo, actor: str = "", welcome: bool = False) -> tuple[Subscription | None, Outcome]:
    """Add *address* to *mlist* as `rules.decide` says: pending, or confirmed when *confirmed*
    and not suppressed (STANDARDS B8); a suppressed import or admin add changes nothing.
    With *welcome*, a subscription confirmed here gets the list's welcome mail."""
    suppressed = suppression_for(session, settings, address.key, mlist.slug) is not None
    existing = session.scalar(select(Subscriber).where(Subscriber.email_key == address.key))
    sub = None if existing is None else session.scalar(select(Subscription).where(
        Subscription.subscriber_id == existing.id, Subscription.list_id == mlist.id))
    decision = decide(sub.status if sub else None, confirmed=confirmed, suppressed=suppressed,
                      source=consent.source)
    if decision.outcome is Outcome.SUPPRESSED:
        return None, decision.outcome
    subscriber, _ = get_or_create_subscriber(session, address, name, attributes)
    now = utcnow()
    confirmed_at = now if decision.confirmed else None
    if decision.record_consent:
        _record_consent(session, subscriber, mlist, address, consent, confirmed_at=confirmed_at)
    if not decision.changes:
        return sub, decision.outcome
    old = sub.status if sub else None
    if sub is None:
        sub = Subscription(subscriber_id=subscriber.id, list_id=mlist.id, created_at=now)
        session.add(sub)
    sub.status, sub.reason, sub.status_at = decision.status, decision.reason, now
    if decision.confirmed:
        sub.confirmed_at = now
    session.flush()
    if welcome and decision.confirmed:
        queue_welcome(session, sub, mlist)
    audit(session, "subscribe", subscriber, mlist, old, decision.status, decision.reason,
          actor or consent.source.value)
    return sub, decision.outcome


def _record_consent(session: Session, subscriber: Subscriber, mlist: MailingList, address: Address,
                    consent: ConsentInfo, confirmed_at=None) -> None:  # type: ignore[no-untyped-def]
    session.add(Consent(
        subscriber_id=subscriber.id, list_id=mlist.id, email=address.email, source=consent.source,
        form_id=consent.form_id, ip=consent.ip, user_agent=consent.user_agent[:500],
        text_version=consent.text_version, text=consent.text, confirmed_at=confirmed_at,
    ))


def confirm(session: Session, settings: Settings, sub: Subscription, ip: str = "", actor: str = "web") -> bool:
    """Confirm a pending subscription: a new confirmed opt-in, which lifts suppression.

    Returns False when there was nothing to confirm (already confirmed).
    """
    if sub.status is SubscriptionStatus.CONFIRMED:
        return False
    subscriber, mlist = sub.subscriber, sub.mailing_list
    now = utcnow()
    old = sub.status
    sub.status, sub.reason, sub.status_at, sub.confirmed_at = SubscriptionStatus.CONFIRMED, Reason.USER, now, now
    digest = email_hash(settings, subscriber.email_key)
    for row in session.scalars(select(Suppression).where(
            Suppression.email_hash == digest, Suppression.scope.in_([GLOBAL, mlist.slug]))):
        session.delete(row)
    consent = session.scalar(select(Consent).where(
        Consent.subscriber_id == subscriber.id, Consent.list_id == mlist.id, Consent.confirmed_at.is_(None)
    ).order_by(Consent.id.desc()).limit(1))
    if consent is not None:
        consent.confirmed_at, consent.confirmed_ip = now, ip
    queue_welcome(session, sub, mlist)
    audit(session, "confirm", subscriber, mlist, old, SubscriptionStatus.CONFIRMED, Reason.USER, actor)
    return True


def queue_welcome(session: Session, sub: Subscription, mlist: MailingList) -> bool:
    """Queue *mlist*'s welcome mail for *sub*, once in the subscription's life (not again when
    someone leaves and confirms anew); False when the list has none or it was queued before."""
    if not mlist.welcome_issue or sub.welcomed_at is not None:
        return False
    sub.welcomed_at = utcnow()
    session.add(QueuedMail(kind=MailKind.WELCOME, subscriber_id=sub.subscriber_id, list_id=mlist.id))
    return True


_SUPPRESSION_FOR = {
    Reason.USER: SuppressionReason.UNSUBSCRIBED,
    Reason.ADMIN: SuppressionReason.ADMIN,
    Reason.BOUNCE: SuppressionReason.BOUNCED,
    Reason.COMPLAINT: SuppressionReason.COMPLAINED,
    Reason.IMPORT: SuppressionReason.UNSUBSCRIBED,
    Reason.SIGNUP: SuppressionReason.UNSUBSCRIBED,
}


def unsubscribe(session: Session, settings: Settings, subscriber: Subscriber, mlist: MailingList | None,
                reason: Reason = Reason.USER, actor: str = "", detail: str = "") -> int:
    """Unsubscribe from *mlist*, or from every list when None; suppress accordingly.

    Bounces and complaints suppress globally; a user's or admin's unsubscribe
    suppresses the list(s) it names. Idempotent; returns how many
    subscriptions changed.
    """
    now = utcnow()
    changed = 0
    address = Address(subscriber.email, subscriber.email_key)
    for sub in list(subscriber.subscriptions):
        if mlist is not None and sub.list_id != mlist.id:
            continue
        if reason in (Reason.USER, Reason.ADMIN):
            suppress(session, settings, address, _SUPPRESSION_FOR[reason], sub.mailing_list.slug, detail)
        if sub.status is SubscriptionStatus.UNSUBSCRIBED:
            continue
        old = sub.status
        sub.status, sub.reason, sub.status_at, sub.unsubscribed_at = (
            SubscriptionStatus.UNSUBSCRIBED, reason, now, now)
        audit(session, "unsubscribe", subscriber, sub.mailing_list, old, SubscriptionStatus.UNSUBSCRIBED,
              reason, actor, detail)
        changed += 1
    if reason in (Reason.BOUNCE, Reason.COMPLAINT) or (mlist is None and reason is Reason.USER):
        suppress(session, settings, address, _SUPPRESSION_FOR[reason], GLOBAL, detail)
    session.flush()
    return changed
