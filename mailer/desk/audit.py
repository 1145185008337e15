"""The desk's audit log: one row per login, logout, failed login and account change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mailer.db import Database
from mailer.models import DeskAudit, utcnow

CLI_ACTOR = "cli"
LOGIN_FAILED = "login_failed"


def record(session: Session, action: str, *, actor: str = CLI_ACTOR, target: str = "", ip: str = "",
           detail: str = "") -> None:
    """Add one audit row to *session* (committed with the change it records)."""
    session.add(DeskAudit(actor=actor[:320], action=action, target=target[:320], ip=ip[:64], detail=detail,
                          at=utcnow()))


def log(db: Database, action: str, *, actor: str, target: str = "", ip: str = "", detail: str = "") -> None:
    """Record one desk action in its own transaction (after the change it records has committed)."""
    with db.session() as session:
        record(session, action, actor=actor, target=target, ip=ip, detail=detail)


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

