"""The desk's audit log: one row per login, logout, failed login and account change; the admin's view of it."""

from __future__ import annotations

from dataclasses import dataclass
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



@dataclass(frozen=True)
class Entry:
    """One row of the audit log, as the admin's audit page shows it."""

    at: datetime
    actor: str
    action: str
    target: str
    ip: str
    detail: str


def entries(db: Database, *, actor: str = "", action: str = "", page: int = 1,
            per_page: int = 50) -> tuple[list[Entry], int]:
    """One page of the log, newest first, filtered by actor (exact, casefolded) and action; and the
    number of rows the filter matches."""
    query = select(DeskAudit)
    if actor:
        query = query.where(DeskAudit.actor == actor.strip().casefold()[:320])
    if action:
        query = query.where(DeskAudit.action == action[:40])
    with db.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(query.order_by(DeskAudit.at.desc(), DeskAudit.id.desc())
                               .offset((max(page, 1) - 1) * per_page).limit(per_page))
        return [Entry(r.at, r.actor, r.action, r.target, r.ip, r.detail) for r in rows], total


def actions(db: Database) -> list[str]:
    """Every action the log holds (for the audit page's filter)."""
    with db.session() as session:
        return list(session.scalars(select(DeskAudit.action).distinct().order_by(DeskAudit.action)))
