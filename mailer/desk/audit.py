"""The desk's audit log: one row per login, logout, failed login and account change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mailer.models import DeskAudit, utcnow

CLI_ACTOR = "cli"
LOGIN_FAILED = "login_failed"


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    ip: str
    detail: str


def record(session: Session, action: str, *, actor: str = CLI_ACTOR, target: str = "", ip: str = "",
           detail: str = "") -> None:
    """Add one audit row to *session* (committed with the change it records)."""
    session.add(DeskAudit(actor=actor[:320], action=action, target=target[:320], ip=ip[:64], detail=detail,
                          at=utcnow()))


def failed_logins(session: Session, since: datetime, *, target: str | None = None, ip: str | None = None) -> int:
    """Failed logins since *since* for the account key *target* or from *ip*."""
    query = select(func.count()).select_from(DeskAudit).where(DeskAudit.action == LOGIN_FAILED,
                                                               DeskAudit.at >= since)
    conditions = []
    if target is not None:
        conditions.append(DeskAudit.target == target[:320])
    if ip is not None:
        conditions.append(DeskAudit.ip == ip[:64])
    if conditions:
        query = query.where(or_(*conditions))
    return session.scalar(query) or 0


def recent(session: Session, limit: int = 100, within: timedelta | None = None) -> list[AuditEntry]:
    """The newest audit rows first."""
    query = select(DeskAudit).order_by(DeskAudit.id.desc()).limit(limit)
    if within is not None:
        query = query.where(DeskAudit.at >= utcnow() - within)
    return [AuditEntry(r.at, r.actor, r.action, r.target, r.ip, r.detail) for r in session.scalars(query)]
