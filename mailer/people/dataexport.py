"""Everything held about one person, as JSON-serialisable data (`show --json`, "download my data")."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.models import (AuditEvent, BounceEvent, Consent, Delivery, MailingList, Subscriber, Subscription,
                           Suppression)
from mailer.people.subscriptions import email_hash

# columns that are ours, not the person's: left out of what is shown
_INTERNAL = {"subscriber_id", "email_key", "claimed_by"}


def _value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _row(obj: Any, drop: set[str] = _INTERNAL) -> dict[str, Any]:
    return {c.key: _value(getattr(obj, c.key)) for c in inspect(obj).mapper.column_attrs if c.key not in drop}


def person_data(session: Session, settings: Settings, subscriber: Subscriber) -> dict[str, Any]:
    """The subscriber, their subscriptions, consents, audit events, deliveries, bounces and suppressions."""
    slugs = dict(session.execute(select(MailingList.id, MailingList.slug)).all())

    def with_list(obj: Any) -> dict[str, Any]:
        data = _row(obj)
        list_id = data.pop("list_id", None)
        data["list"] = slugs.get(list_id) if list_id is not None else None
        return data

    sid = subscriber.id
    subscriptions = session.scalars(select(Subscription).where(Subscription.subscriber_id == sid)
                                    .order_by(Subscription.id))
    digest = email_hash(settings, subscriber.email_key)
    return {
        "subscriber": _row(subscriber, {"email_key", "link_secret"}),
        "subscriptions": [with_list(s) for s in subscriptions],
        "consents": [with_list(c) for c in session.scalars(
            select(Consent).where(Consent.subscriber_id == sid).order_by(Consent.id))],
        "audit_events": [with_list(e) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.subscriber_id == sid).order_by(AuditEvent.id))],
        "deliveries": [with_list(d) for d in session.scalars(
            select(Delivery).where(Delivery.subscriber_id == sid).order_by(Delivery.id))],
        "bounces": [_row(b) for b in session.scalars(
            select(BounceEvent).where(BounceEvent.subscriber_id == sid).order_by(BounceEvent.id))],
        "suppressions": [_row(s, {"email_hash"}) for s in session.scalars(
            select(Suppression).where(Suppression.email_hash == digest).order_by(Suppression.id))],
    }
