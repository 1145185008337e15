"""Recovery after a crash or a stop: which claims are dead, and what becomes of their rows (STANDARDS G7).

A claim (Delivery.claimed_by = holder id, host:pid) is dead when that pid no
longer lives on this host (gone or a zombie), or, for another host, when its
heartbeat is older than `mailer.liveness.DEAD_AFTER` (see mailer.liveness). A dead claimant's ``sending`` rows become ``unknown``: they
may or may not have reached the server, so they are never resent
automatically. Decides only; the ledger writes. May import the ledger and the floor.
"""

from __future__ import annotations

from datetime import datetime

from mailer import liveness
from mailer.db import Database
from mailer.locking import holder_id
from mailer.models import utcnow
from mailer.sending import ledger

def claim_is_live(claimed_by: str, updated_at: datetime | None, now: datetime | None = None,
                  heartbeats: dict[str, datetime] | None = None) -> bool:
    """True while the claimant may still be working (see mailer.liveness.claimant_alive)."""
    return liveness.claimant_alive(claimed_by, updated_at, heartbeats or {}, now)


def reap_stale(db: Database, send_id: int | None = None) -> tuple[int, int]:
    """Rows held by dead claimants: ``sending`` -> unknown (G7), claimed but untouched -> released.

    Returns (rows now unknown, rows released).
    """
    now = utcnow()
    unknown = released = 0
    heartbeats = liveness.beats(db)
    dead = [holder for holder, last in ledger.claim_holders(db, send_id)
            if not claim_is_live(holder, last, now, heartbeats)]
    if dead:
        with db.engine.connect() as conn:
            for holder in dead:
                unknown += ledger.mark_unknown(conn, holder, send_id, now)
                released += ledger.release_holder(conn, holder, send_id)
                conn.commit()
    return unknown, released


def live_claimants(db: Database, send_id: int) -> list[str]:
    """Other processes that hold rows of *send_id* and are still alive."""
    me = holder_id()
    heartbeats = liveness.beats(db)
    return [h for h, last in ledger.claim_holders(db, send_id) if h != me and claim_is_live(h, last, None, heartbeats)]


def due_sends(db: Database) -> list[int]:
    """Sends in status sending not yet frozen or with unclaimed rows due now, oldest first
    (after reaping dead claims)."""
    reap_stale(db)
    with db.session() as session:
        return [i for i, frozen in ledger.sending_sends(session) if not frozen or ledger.has_due(session, i)]


def resume_interrupted(db: Database) -> list[int]:
    """Sends left in ``sending`` by a crash: their in-flight rows become unknown (G7).

    Returns the ids of sending sends that nobody alive is working on and that
    have rows due, for the caller to run_send again.
    """
    return [i for i in due_sends(db) if not live_claimants(db, i)]
