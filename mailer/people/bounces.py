"""Bounce (RFC 3464 DSN) and complaint (RFC 5965 ARF) reports: read them, apply them.

A report is tied to its delivery by the VERP envelope address it was sent
to (``bounces+<delivery id>@...``), else by the Message-ID of the returned
headers, else by the reported address. Hard bounces and complaints suppress
at once; soft bounces only past a threshold (STANDARDS F1-F3).

`record_bounce` is the one recorder of bounces and complaints: reports go
through it, and so do the refusals the send loop gets from the SMTP server.
What a status code means is mailer.backends.replies'.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, message_from_string, policy
from email.message import Message

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailer.backends.replies import Reply, classify_status, enhanced_status
from mailer.config import Settings
from mailer.models import BounceEvent, BounceKind, Delivery, DeliveryStatus, Reason, Subscriber, utcnow
from mailer.people.subscriptions import unsubscribe

class Verdict(enum.Enum):
    HARD = "hard bounce"
    SOFT = "soft bounce"
    COMPLAINT = "complaint"
    IGNORED = "ignored"   # delivered, relayed, expanded


@dataclass(frozen=True)
class Feedback:
    """One recipient's outcome as a report states it."""

    verdict: Verdict
    recipient: str
    status: str = ""
    diagnostic: str = ""
    delivery_id: int | None = None
    message_id: str = ""


def _address(field: str | None) -> str:
    """``rfc822; someone@example.org`` -> ``someone@example.org``."""
    if not field:
        return ""
    value = str(field).split(";", 1)[-1].strip().strip("<>")
    return value


def _verp_id(settings: Settings, message: Message) -> int | None:
    local, _, domain = settings.bounce_address.rpartition("@")
    pattern = re.compile(rf"{re.escape(local)}\+(\d+)@{re.escape(domain)}", re.IGNORECASE)
    for header in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
        for value in message.get_all(header, []):
            match = pattern.search(str(value))
            if match:
                return int(match.group(1))
    return None


def _returned_message_id(report: Message) -> str:
    for part in report.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) else inner
            return str(inner.get("Message-ID", "")).strip() if isinstance(inner, Message) else ""
        if ctype == "text/rfc822-headers":
            headers = message_from_string(part.get_payload(decode=True).decode("utf-8", "replace"))
            return str(headers.get("Message-ID", "")).strip()
    return ""


def _fields(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    text = part.get_payload(decode=True) or str(payload).encode()
    blocks = re.split(r"\r?\n\r?\n", text.decode("utf-8", "replace").strip())
    return [message_from_string(b) for b in blocks if b.strip()]


def _dsn_verdict(action: str, status: str) -> Verdict:
    """F1: failed + 5.x.x is hard, except the 5.2.x that replies calls soft; delayed or 4.x.x is soft."""
    if action in ("delivered", "relayed", "expanded"):
        return Verdict.IGNORED
    if action == "failed" and status.startswith("5."):
        return Verdict.SOFT if classify_status(status) is Reply.SOFT_BOUNCE else Verdict.HARD
    if action in ("delayed", "failed") or status.startswith("4."):
        return Verdict.SOFT
    return Verdict.IGNORED


def parse_report(settings: Settings, data: bytes) -> list[Feedback]:
    """Every recipient outcome in a DSN or ARF report; [] when *data* is neither."""
    report = message_from_bytes(data, policy=policy.compat32)
    if report.get_content_type() != "multipart/report":
        return []
    report_type = (report.get_param("report-type") or "").lower()
    delivery_id = _verp_id(settings, report)
    message_id = _returned_message_id(report)
    found: list[Feedback] = []
    for part in report.walk():
        ctype = part.get_content_type()
        if report_type == "delivery-status" and ctype in ("message/delivery-status", "message/global-delivery-status"):
            for block in _fields(part)[1:] or _fields(part):
                recipient = _address(block.get("Final-Recipient") or block.get("Original-Recipient"))
                if not recipient:
                    continue
                action = str(block.get("Action", "")).strip().lower()
                status = str(block.get("Status", "")).strip()
                code = enhanced_status(status, anywhere=True)
                found.append(Feedback(_dsn_verdict(action, code), recipient, code or status[:20],
                                      " ".join(str(block.get("Diagnostic-Code", "")).split())[:500],
                                      delivery_id, message_id))
        elif report_type == "feedback-report" and ctype == "message/feedback-report":
            for block in _fields(part):
                kind = str(block.get("Feedback-Type", "")).strip().lower()
                recipient = _address(block.get("Original-Rcpt-To"))
                if kind:
                    verdict = Verdict.IGNORED if kind == "not-spam" else Verdict.COMPLAINT
                    found.append(Feedback(verdict, recipient, "", f"feedback-type: {kind}", delivery_id,
                                          message_id))
                break
    return found


@dataclass(frozen=True)
class Applied:
    feedback: Feedback
    subscriber_found: bool
    suppressed: bool


def _subscriber_for(session: Session, feedback: Feedback) -> tuple[Subscriber | None, Delivery | None]:
    delivery = None
    if feedback.delivery_id is not None:
        delivery = session.get(Delivery, feedback.delivery_id)
    if delivery is None and feedback.message_id:
        delivery = session.scalar(select(Delivery).where(Delivery.message_id == feedback.message_id).limit(1))
    if delivery is not None and delivery.subscriber_id is not None:
        return session.get(Subscriber, delivery.subscriber_id), delivery
    if feedback.recipient:
        sub = session.scalar(select(Subscriber).where(Subscriber.email_key == feedback.recipient.casefold()))
        return sub, delivery
    return None, delivery


def apply_feedback(session: Session, settings: Settings, feedback: Feedback) -> Applied:
    """Record one outcome; suppress on a hard bounce, a complaint, or too many soft bounces."""
    if feedback.verdict is Verdict.IGNORED:
        return Applied(feedback, False, False)
    subscriber, delivery = _subscriber_for(session, feedback)
    if subscriber is None:
        return Applied(feedback, False, False)
    kind = {Verdict.HARD: BounceKind.HARD, Verdict.SOFT: BounceKind.SOFT,
            Verdict.COMPLAINT: BounceKind.COMPLAINT}[feedback.verdict]
    if delivery is not None and feedback.verdict is Verdict.HARD:
        delivery.status, delivery.last_code, delivery.last_reply = (
            DeliveryStatus.FAILED, feedback.status, feedback.diagnostic)
    suppressed = record_bounce(session, settings, subscriber.id, kind, feedback.status, feedback.diagnostic,
                               send_id=delivery.send_id if delivery else None, actor="bounces",
                               detail=f"{feedback.verdict.value} {feedback.status}".strip())
    return Applied(feedback, True, suppressed)


def record_bounce(session: Session, settings: Settings, subscriber_id: int | None, kind: BounceKind,
                  status: str, diagnostic: str, *, send_id: int | None, actor: str, detail: str) -> bool:
    """Record one bounce or complaint of a subscriber and suppress when it calls for it (F2, F3).

    True when the address got suppressed; False too when the subscriber is gone (erased).
    A hard bounce or a complaint suppresses at once; a soft one past the soft limit
    (`_soft_limit_reached`).
    """
    subscriber = session.get(Subscriber, subscriber_id) if subscriber_id is not None else None
    if subscriber is None:
        return False
    session.add(BounceEvent(subscriber_id=subscriber.id, send_id=send_id, kind=kind,
                            status_code=status, diagnostic=diagnostic))
    session.flush()
    suppress = kind in (BounceKind.HARD, BounceKind.COMPLAINT)
    if kind is BounceKind.SOFT:
        suppress = _soft_limit_reached(session, settings, subscriber.id)
    if suppress:
        reason = Reason.COMPLAINT if kind is BounceKind.COMPLAINT else Reason.BOUNCE
        unsubscribe(session, settings, subscriber, None, reason, actor=actor, detail=detail)
    return suppress


def _soft_limit_reached(session: Session, settings: Settings, subscriber_id: int) -> bool:
    """Soft bounces fall on `bounce_soft_limit` distinct days, either within `bounce_soft_window_days`
    or on the subscriber's last `bounce_soft_limit` issues in a row (each of them bounced).

    The window catches a mailbox that keeps refusing; the issues in a row catch it too when the
    newsletter comes out less often than the window is long (a monthly one, say).
    """
    limit = settings.bounce_soft_limit
    soft = (BounceEvent.subscriber_id == subscriber_id, BounceEvent.kind == BounceKind.SOFT)
    since = utcnow() - timedelta(days=settings.bounce_soft_window_days)
    days = session.scalars(select(BounceEvent.at).where(*soft, BounceEvent.at >= since)).all()
    if len({at.date() for at in days}) >= limit:
        return True
    last_issues = session.scalars(
        select(Delivery.send_id).where(Delivery.subscriber_id == subscriber_id,
                                       Delivery.status != DeliveryStatus.SKIPPED)
        .order_by(Delivery.send_id.desc()).limit(limit)).all()
    if len(last_issues) < limit:
        return False
    bounced = session.execute(select(BounceEvent.send_id, BounceEvent.at).where(
        *soft, BounceEvent.send_id.in_(last_issues))).all()
    return ({send_id for send_id, _ in bounced} == set(last_issues)
            and len({at.date() for _, at in bounced}) >= limit)
