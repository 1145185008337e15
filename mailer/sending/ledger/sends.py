"""Send rows: create one, and every change of its status (compare-and-set where it matters).

The only module that writes Send.status. A send claims its lists when it is
made and holds the claim whenever it is scheduled or starts (ledger.once: an
issue goes to a list once unless `again`). Functions taking a session or a
connection run inside the caller's transaction (so a schedule row and its
send change together); those taking the Database commit on their own.
May import the floor, people.lists, ledger.once and, for type hints only, content.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

from sqlalchemy import Connection, func, update
from sqlalchemy.orm import Session

from mailer.content.images import publish
from mailer.db import Database
from mailer.errors import InputError
from mailer.models import Send, SendStatus, utcnow
from mailer.people.lists import get_list
from mailer.sending.ledger import once

if TYPE_CHECKING:
    from mailer.content.compose import ComposedIssue


def create_send(session: Session, composed: ComposedIssue, list_slugs: Sequence[str],
                status: SendStatus = SendStatus.DRAFT, *, again: bool = False, occurrence: str = "") -> Send:
    """Store the composed snapshot for *list_slugs* (each must exist) as a new Send claiming those lists.

    once.AlreadySent when the issue already went (or is going) to one of them,
    unless *again*; *occurrence* is a recurring schedule's run. The caller's
    transaction holds the send and its claim together: both or neither.
    """
    slugs = list(dict.fromkeys(list_slugs))
    if not slugs:
        raise InputError(f"{composed.path}: no list to send to: pass --list or set `lists` in issue.toml")
    for slug in slugs:
        get_list(session, slug)
    publish(composed.images)     # its images go public with the send, before any message names them
    send = Send(
        issue_slug=composed.slug, issue_path=str(composed.path), subject=composed.subject,
        preheader=composed.preheader, html=composed.html, text=composed.text,
        archive_html=composed.archive_html, content_hash=composed.content_hash,
        list_slugs=slugs, status=status, status_at=utcnow(),
        started_at=utcnow() if status is SendStatus.SENDING else None,
    )
    session.add(send)
    session.flush()
    once.claim(session, send.id, composed.slug, slugs, again=again, occurrence=occurrence,
               held=status not in once.RELEASED)
    return send


def claim_send(db: Database, send_id: int, from_status: SendStatus) -> bool:
    """Compare-and-set *from_status* -> sending; True for the one caller that changed the row (G3).

    The send must hold its claim on its lists (once.hold): once.AlreadySent,
    and nothing changed, when another send holds it now.
    """
    now = utcnow()
    table = Send.__table__
    with db.engine.begin() as conn:
        result = conn.execute(
            update(table)
            .where(table.c.id == send_id, table.c.status == from_status.value)
            .values(status=SendStatus.SENDING.value, started_at=func.coalesce(table.c.started_at, now),
                    status_at=now, status_reason="")
        )
        if result.rowcount != 1:
            return False
        once.hold(conn, send_id)
        return True


def transition_send(conn: Session | Connection, send_id: int, to_status: SendStatus, reason: str = "",
                    from_status: SendStatus | Iterable[SendStatus] | None = None) -> bool:
    """Move a send to *to_status* with a reason and a timestamp, in the caller's transaction.

    With *from_status* (one status or several) it is a compare-and-set: False
    when the send was in none of them, and nothing changed. Cancelled, failed
    or missed releases the send's claim; scheduled or sending holds it again
    (once.AlreadySent when another send took it meanwhile).
    """
    now = utcnow()
    table = Send.__table__
    values: dict = {"status": to_status.value, "status_reason": reason, "status_at": now}
    if to_status is SendStatus.DONE:
        values["finished_at"] = now
    stmt = update(table).where(table.c.id == send_id).values(**values)
    if from_status is not None:
        allowed = [from_status] if isinstance(from_status, SendStatus) else list(from_status)
        stmt = stmt.where(table.c.status.in_([s.value for s in allowed]))
    if conn.execute(stmt).rowcount != 1:
        return False
    if to_status in once.RELEASED:
        once.release(conn, send_id)
    elif to_status in (SendStatus.SCHEDULED, SendStatus.SENDING):
        once.hold(conn, send_id)
    return True


def set_send_status(db: Database, send_id: int, status: SendStatus, reason: str = "",
                    only_from: SendStatus | None = None) -> bool:
    """transition_send in a transaction of its own."""
    with db.engine.begin() as conn:
        return transition_send(conn, send_id, status, reason, only_from)
