"""What readers did after a send, per list: bounces, complaints, and unsubscribes through its links.

No tracking: bounces and complaints are the reports `mailer bounces` applied (and the
refusals the send loop got), tied to the send by their delivery (VERP key or Message-ID);
an unsubscribe counts for a send when its link carried the send's public uid (``?send=``,
mailer.mail.links), which `leave_by_link` notes on the audit event as ``send <uid>``.
Writes nothing. May import models and the floor.
"""

from __future__ import annotations

import re

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from mailer.models import AuditEvent, BounceEvent, BounceKind, Delivery, Send

_UID = re.compile(r"[0-9a-f]{32}")
DETAIL_PREFIX = "send "


def send_detail(session: Session, send_uid: str) -> str:
    """The audit detail naming the send *send_uid*, or "" when it is malformed or names no send."""
    if not send_uid or not _UID.fullmatch(send_uid):
        return ""
    found = session.scalar(select(Send.uid).where(Send.uid == send_uid))
    return f"{DETAIL_PREFIX}{found}" if found else ""


def bounces_per_list(session: Session, send_id: int) -> dict[int | None, dict[BounceKind, int]]:
    """Per list of the send's deliveries: how many subscribers got each kind of bounce event."""
    query = (select(Delivery.list_id, BounceEvent.kind, func.count(func.distinct(BounceEvent.subscriber_id)))
             .join(Delivery, and_(Delivery.send_id == BounceEvent.send_id,
                                  Delivery.subscriber_id == BounceEvent.subscriber_id))
             .where(BounceEvent.send_id == send_id)
             .group_by(Delivery.list_id, BounceEvent.kind))
    out: dict[int | None, dict[BounceKind, int]] = {}
    for list_id, kind, n in session.execute(query):
        out.setdefault(list_id, {k: 0 for k in BounceKind})[BounceKind(kind)] = n
    return out


def unsubscribes_per_list(session: Session, send_uid: str) -> dict[int | None, int]:
    """Per list: the subscriptions ended through an unsubscribe link mailed in the send *send_uid*."""
    query = (select(AuditEvent.list_id, func.count(AuditEvent.id))
             .where(AuditEvent.action == "unsubscribe", AuditEvent.detail == f"{DETAIL_PREFIX}{send_uid}")
             .group_by(AuditEvent.list_id))
    return {list_id: n for list_id, n in session.execute(query)}
