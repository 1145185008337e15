"""Never twice (STANDARDS E9): an issue goes to a list once per generation, enforced by the database.

Each send holds one `send_list` row per list; the unique key (issue, list,
occurrence, generation, held) makes a second claim fail in the database
itself, so two commands racing for the same issue cannot both win, whatever
they read first. Every path that makes a send claims here (create_send); every
path that starts, schedules or revives one holds its claim here (claim_send,
transition_send); a cancelled, failed or missed send releases it. `again`
takes the next generation; a recurring schedule's runs claim their own
occurrence (the run's UTC time). All functions run in the caller's
transaction. May import the floor and people.lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath
from typing import Sequence

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailer.errors import InputError
from mailer.models import (MailingList, Schedule, ScheduleKind, ScheduleStatus, Send, SendList, SendStatus,
                           utcnow)
from mailer.people.lists import get_list

RELEASED = (SendStatus.CANCELLED, SendStatus.FAILED, SendStatus.MISSED)
IN_PROGRESS = (SendStatus.DRAFT, SendStatus.SENDING, SendStatus.PAUSED)
T = SendList.__table__


class AlreadySent(InputError):
    """A second claim of an issue for a list, refused (one line naming the send that holds it)."""


@dataclass(frozen=True)
class Holder:
    """A held claim: which send holds the issue for which list."""

    send_id: int
    status: SendStatus
    list_slug: str
    generation: int
    list_id: int


def holders(conn: Session | Connection, issue_slug: str, list_ids: Sequence[int],
            occurrence: str = "") -> list[Holder]:
    """The held claims of *issue_slug* on these lists (and occurrence), oldest send first."""
    rows = conn.execute(
        select(T.c.send_id, Send.status, MailingList.slug, T.c.generation, T.c.list_id)
        .join(Send, Send.id == T.c.send_id).join(MailingList, MailingList.id == T.c.list_id)
        .where(T.c.issue_slug == issue_slug, T.c.list_id.in_(list(list_ids)), T.c.occurrence == occurrence,
               T.c.held.is_(True))
        .order_by(T.c.send_id, MailingList.slug))
    return [Holder(*row) for row in rows]


def refusal(issue_slug: str, held: Sequence[Holder], again: bool) -> AlreadySent | None:
    """The one line refusing a new claim beside the *held* ones, or None when it may go ahead.

    A send in progress is refused even with *again* (continue it instead); a
    scheduled or finished one unless *again*.
    """
    for holder in held:
        lists = ", ".join(h.list_slug for h in held if h.send_id == holder.send_id)
        sid, status = holder.send_id, holder.status
        if status in IN_PROGRESS:
            return AlreadySent(f"issue {issue_slug!r} already has send #{sid} to {lists} ({status.value}): "
                               "continue it with --resume")
        if again:
            continue
        if status is SendStatus.SCHEDULED:
            return AlreadySent(f"issue {issue_slug!r} is already scheduled to {lists} (send #{sid}, see "
                               "`mailer schedule list`): pass --again to send it a second time")
        return AlreadySent(f"issue {issue_slug!r} was already sent to {lists} (send #{sid}): "
                           "pass --again to send it a second time")
    return None


def list_ids(conn: Session | Connection, list_slugs: Sequence[str]) -> list[int]:
    """The ids of the lists named (InputError naming an unknown one)."""
    return [get_list(conn, slug).id for slug in dict.fromkeys(list_slugs)]


def check(conn: Session | Connection, issue_slug: str, list_slugs: Sequence[str], *, again: bool = False) -> None:
    """Raise AlreadySent when a new campaign of *issue_slug* for these lists would be refused: a claim
    held, or a recurring schedule of the issue to one of them (that one checked here only)."""
    problem = refusal(issue_slug, holders(conn, issue_slug, list_ids(conn, list_slugs)), again)
    if problem is not None:
        raise problem
    check_recurring(conn, issue_slug, list_slugs, again=again)


def check_recurring(conn: Session | Connection, issue_slug: str, list_slugs: Sequence[str], *,
                    again: bool = False) -> None:
    """Raise AlreadySent when a recurring schedule sends *issue_slug* to one of these lists, unless *again*.

    A recurring schedule holds no claim between runs (each run claims its own
    occurrence), so this is checked when a campaign is asked for, not by the key.
    """
    if again:
        return
    rows = conn.execute(select(Schedule.id, Schedule.issue_path, Schedule.list_slugs).where(
        Schedule.kind == ScheduleKind.CRON, Schedule.status == ScheduleStatus.SCHEDULED).order_by(Schedule.id))
    for schedule_id, issue_path, slugs in rows:
        overlap = [slug for slug in dict.fromkeys(list_slugs) if slug in (slugs or [])]
        if PurePath(issue_path).name == issue_slug and overlap:
            raise AlreadySent(f"issue {issue_slug!r} is already on recurring schedule {schedule_id} to "
                              f"{', '.join(overlap)}: pass --again to send it a second time")


def claim(conn: Session | Connection, send_id: int, issue_slug: str, list_slugs: Sequence[str], *,
          again: bool = False, occurrence: str = "", held: bool = True) -> None:
    """Record send *send_id*'s claim on its lists: refused (AlreadySent) when another send holds it.

    The check reads what is committed; the unique key settles a race the check
    could not see (a writer that committed meanwhile): the insert then fails in
    a savepoint and the refusal names the winner. With *held* False the rows
    are recorded released (a missed snapshot that `schedule move` may revive).
    """
    ids = list_ids(conn, list_slugs)
    current = holders(conn, issue_slug, ids, occurrence)
    problem = refusal(issue_slug, current, again) if held else None
    if problem is not None:
        raise problem
    top: dict[int, int] = {}
    for h in current:
        top[h.list_id] = max(top.get(h.list_id, -1), h.generation)
    rows = [dict(send_id=send_id, issue_slug=issue_slug, list_id=i, occurrence=occurrence,
                 generation=top.get(i, -1) + 1 if again else 0, held=True if held else None, claimed_at=utcnow())
            for i in ids]
    if not held:
        conn.execute(insert(T), rows)
        return
    _write(conn, insert(T), rows, issue_slug, ids, occurrence, again)


def hold(conn: Session | Connection, send_id: int) -> None:
    """Make sure send *send_id* holds its claims, taking back released ones (AlreadySent when another
    send holds them now); a send with no claim at all cannot start."""
    rows = conn.execute(select(T.c.issue_slug, T.c.list_id, T.c.occurrence, T.c.generation, T.c.held)
                        .where(T.c.send_id == send_id)).all()
    if not rows:
        raise InputError(f"send #{send_id} holds no claim on its lists (made outside the ledger): not sent")
    released = [r for r in rows if r.held is None]
    if not released:
        return
    issue_slug, occurrence = released[0].issue_slug, released[0].occurrence
    ids = [r.list_id for r in released]
    wanted = {(r.list_id, r.generation) for r in released}
    taken = [h for h in holders(conn, issue_slug, ids, occurrence) if (h.list_id, h.generation) in wanted]
    if taken:
        raise _blocked(issue_slug, taken)
    _write(conn, update(T).where(T.c.send_id == send_id, T.c.held.is_(None)).values(held=True), None,
           issue_slug, ids, occurrence, False)


def generation_of(conn: Session | Connection, send_id: int) -> int:
    """The generation of send *send_id*'s claim (0: the first campaign; more: an `again`)."""
    return conn.scalar(select(func.max(T.c.generation)).where(T.c.send_id == send_id)) or 0


def release(conn: Session | Connection, send_id: int) -> None:
    """A cancelled, failed or missed send no longer counts: its claims become history."""
    conn.execute(update(T).where(T.c.send_id == send_id).values(held=None))


def _blocked(issue_slug: str, held: Sequence[Holder]) -> AlreadySent:
    return refusal(issue_slug, held, False) or AlreadySent(
        f"issue {issue_slug!r} is claimed for {', '.join(h.list_slug for h in held)} by send #{held[0].send_id}")


def _write(conn: Session | Connection, stmt, rows: list[dict] | None,  # type: ignore[no-untyped-def]
           issue_slug: str, ids: Sequence[int], occurrence: str, again: bool) -> None:
    """Run the claim's write in a savepoint; a unique-key refusal becomes the one line naming the winner."""
    try:
        with conn.begin_nested():
            if rows is None:
                conn.execute(stmt)
            else:
                conn.execute(stmt, rows)
    except IntegrityError as exc:
        if "send_list" not in str(exc.orig) and "uq_send_list_claim" not in str(exc.orig):
            raise
        current = holders(conn, issue_slug, ids, occurrence)
        if not current:
            raise AlreadySent(f"issue {issue_slug!r}: another send claimed it at the same moment; "
                              "try again") from None
        if again and refusal(issue_slug, current, again) is None:
            newest = max(h.send_id for h in current)
            lists = ", ".join(h.list_slug for h in current if h.send_id == newest)
            raise AlreadySent(f"issue {issue_slug!r} was claimed again for {lists} by send #{newest} at the "
                              "same moment: not sent a third time") from None
        raise (refusal(issue_slug, current, again) or _blocked(issue_slug, current)) from None

