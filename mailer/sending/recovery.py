"""Recovery after a crash or a stop: dead claims, `unknown` rows, retries on request (STANDARDS G7).

A claim (Delivery.claimed_by = host:pid) is dead when that pid no longer
lives on this host, or, for another host, when the rows have not moved for
`STALE_AFTER`. A dead claimant's ``sending`` rows become ``unknown``: they may
or may not have reached the server, so they are never resent automatically.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from mailer.db import Database
from mailer.sending.ledger import D, as_utc, has_due, worker_id
from mailer.models import DeliveryStatus, Send, SendStatus, utcnow

# a claim on another host counts as abandoned after this long without any update
STALE_AFTER = timedelta(minutes=15)


def claim_is_live(claimed_by: str, updated_at: datetime | None, now: datetime | None = None) -> bool:
    """True while the claimant may still be working: its pid lives (this host) or it updated recently."""
    if not claimed_by:
        return False
    host, _, pid = claimed_by.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    now = now or utcnow()
    return updated_at is not None and now - updated_at < STALE_AFTER


def reap_stale(db: Database, send_id: int | None = None) -> tuple[int, int]:
    """Rows held by dead claimants: ``sending`` -> unknown (G7), claimed but untouched -> released.

    Returns (rows now unknown, rows released).
    """
    now = utcnow()
    unknown = released = 0
    with db.engine.connect() as conn:
        where = [D.c.claimed_by != ""]
        if send_id is not None:
            where.append(D.c.send_id == send_id)
        holders = conn.execute(select(D.c.claimed_by, func.max(D.c.updated_at)).where(*where)
                               .group_by(D.c.claimed_by)).all()
        conn.commit()
        for holder, last in holders:
            if claim_is_live(holder, as_utc(last), now):
                continue
            base = [D.c.claimed_by == holder] + ([D.c.send_id == send_id] if send_id is not None else [])
            unknown += conn.execute(update(D).where(*base, D.c.status == DeliveryStatus.SENDING.value).values(
                status=DeliveryStatus.UNKNOWN.value, claimed_by="", updated_at=now,
                last_reply=f"in flight when {holder} stopped: may or may not have been delivered; "
                           "not resent automatically (--retry-unknown)")).rowcount
            released += conn.execute(update(D).where(*base).values(claimed_by="")).rowcount
            conn.commit()
    return unknown, released


def live_claimants(db: Database, send_id: int) -> list[str]:
    """Other processes that hold rows of *send_id* and are still alive."""
    me = worker_id()
    with db.engine.connect() as conn:
        holders = conn.execute(select(D.c.claimed_by, func.max(D.c.updated_at))
                               .where(D.c.send_id == send_id, D.c.claimed_by != "").group_by(D.c.claimed_by)).all()
    return [h for h, last in holders if h != me and claim_is_live(h, as_utc(last))]


def due_sends(db: Database) -> list[int]:
    """Sends in status sending not yet frozen or with unclaimed rows due now, oldest first
    (after reaping dead claims)."""
    reap_stale(db)
    with db.session() as session:
        sends = session.execute(select(Send.id, Send.audience_frozen)
                                .where(Send.status == SendStatus.SENDING).order_by(Send.id)).all()
        return [i for i, frozen in sends if not frozen or has_due(session, i)]


def retry_failed(db: Database, send_id: int) -> int:
    """Temporary failures due now: deferred rows, and rows failed after retrying 4xx until too old."""
    now = utcnow()
    with db.engine.begin() as conn:
        n = conn.execute(update(D).where(D.c.send_id == send_id, D.c.status == DeliveryStatus.DEFERRED.value)
                         .values(next_attempt_at=now, claimed_by="")).rowcount
        n += conn.execute(update(D).where(
            D.c.send_id == send_id, D.c.status == DeliveryStatus.FAILED.value,
            or_(D.c.last_code.like("4%"), D.c.last_code == "")).values(
                status=DeliveryStatus.QUEUED.value, first_attempt_at=None, next_attempt_at=None,
                claimed_by="", updated_at=now)).rowcount
    return n


def retry_unknown(db: Database, send_id: int) -> int:
    """Unknown rows queued again: the caller accepts that some may get a second copy."""
    with db.engine.begin() as conn:
        return conn.execute(update(D).where(D.c.send_id == send_id, D.c.status == DeliveryStatus.UNKNOWN.value)
                            .values(status=DeliveryStatus.QUEUED.value, claimed_by="", updated_at=utcnow())).rowcount
