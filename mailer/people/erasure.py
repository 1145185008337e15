"""The right to erasure: delete one person's data, keep only a keyed hash that refuses re-import."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.mail.preview import forget_previews
from mailer.models import (AuditEvent, Consent, Delivery, DeskAudit, ErasedLink, Subscriber, Suppression,
                           Submission, SuppressionReason, utcnow)
from mailer.people.subscriptions import GLOBAL, email_hash


def erase_person(session: Session, settings: Settings, subscriber: Subscriber) -> str:
    """Erase *subscriber*; return the hash kept in the suppression list.

    Deletes the subscriber (subscriptions and bounces cascade), their consent
    rows and the details of their audit events; takes their address out of the desk's audit log
    (the subscriber acted on, and any detail naming them) and out of the reports they mailed
    (the submission rows' sender and details); clears the address frozen in
    deliveries; removes the clear-text address from suppressions; and adds a
    global ERASED suppression holding only the hash, so that a later import
    or admin add of the address is refused (STANDARDS B8). Their link secret stays, under
    their random uid only, so that a link in a mail they kept answers as for anyone (B4).
    The caller commits.
    """
    sid = subscriber.id
    digest = email_hash(settings, subscriber.email_key)
    session.execute(delete(Consent).where(Consent.subscriber_id == sid))
    session.execute(update(AuditEvent).where(AuditEvent.subscriber_id == sid)
                    .values(detail="", actor="", subscriber_id=None))
    session.execute(update(Delivery).where(Delivery.subscriber_id == sid).values(email=None, last_reply=""))
    _scrub_desk_audit(session, subscriber)
    _scrub_submissions(session, subscriber)
    session.execute(update(Suppression).where(Suppression.email_hash == digest).values(email=None, detail=""))
    session.merge(ErasedLink(uid=subscriber.uid, link_secret=subscriber.link_secret))
    session.delete(subscriber)
    session.flush()
    kept = session.scalar(select(Suppression).where(Suppression.email_hash == digest, Suppression.scope == GLOBAL))
    if kept is None:
        session.add(Suppression(email_hash=digest, email=None, scope=GLOBAL, reason=SuppressionReason.ERASED,
                                detail="", created_at=utcnow()))
    else:
        kept.reason = SuppressionReason.ERASED
    session.add(AuditEvent(action="erase", actor="erasure", detail=""))
    session.flush()
    forget_previews(settings, subscriber.email)
    return digest


ERASED = "(erased)"


def _scrub_desk_audit(session: Session, subscriber: Subscriber) -> None:
    """Replace the person's address in the desk's audit log (target and detail) by ERASED."""
    for address in dict.fromkeys((subscriber.email, subscriber.email_key)):
        session.execute(update(DeskAudit).where(DeskAudit.target == address[:320]).values(target=ERASED)
                        .execution_options(synchronize_session=False))
        session.execute(update(DeskAudit).where(DeskAudit.detail.contains(address, autoescape=True))
                        .values(detail=func.replace(DeskAudit.detail, address, ERASED))
                        .execution_options(synchronize_session=False))


def _scrub_submissions(session: Session, subscriber: Subscriber) -> None:
    """Replace the person's address in the rows of reports by mail (sender and details) by ERASED."""
    for address in dict.fromkeys((subscriber.email, subscriber.email_key)):
        session.execute(update(Submission).where(func.lower(Submission.sender) == address.lower()[:320])
                        .values(sender=ERASED).execution_options(synchronize_session=False))
        session.execute(update(Submission).where(Submission.details.contains(address, autoescape=True))
                        .values(details=func.replace(Submission.details, address, ERASED))
                        .execution_options(synchronize_session=False))
