"""Running schedules: what is due, missed, run or resumed; the decisions behind the daemon's jobs.

Our `schedule` and `send` tables are the source of truth (STANDARDS G5). The
decision to send is a compare-and-set in the ledger (G3), so a duplicate
trigger is harmless, and a send is started late only within the grace time
(G2). Send status changes go through mailer.sending.ledger; schedule rows are
written here and in plans. May import sending, content and the floor; not
APScheduler (mailer.scheduling.daemon wires these functions to it).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from mailer.config import Settings
from mailer.db import Database
from mailer.models import Schedule, ScheduleKind, ScheduleStatus, Send, SendStatus, utcnow
from mailer.scheduling.times import next_fire
from mailer.sending import ledger

log = logging.getLogger("mailer.scheduler")

# a trigger firing this early is still on time (clock granularity)
EARLY = timedelta(seconds=1)

def due_time(row: Schedule) -> datetime | None:
    """When a schedule runs next: its one time, or its next cron run."""
    return row.run_at if row.kind is ScheduleKind.ONCE else row.next_run_at


def fmt_utc(value: datetime | None) -> str:
    """A UTC time for logs and reasons ("-" for none)."""
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _mark(db: Database, schedule_id: int, status: ScheduleStatus, reason: str,
          only_from: tuple[ScheduleStatus, ...] | None = None) -> bool:
    with db.session() as session:
        query = update(Schedule).where(Schedule.id == schedule_id)
        if only_from:
            query = query.where(Schedule.status.in_(only_from))
        return session.execute(query.values(status=status, status_reason=reason[:2000])).rowcount == 1


def mark_missed(db: Database, settings: Settings, now: datetime | None = None) -> list[int]:
    """Past the grace time: one-offs become `missed` (nothing sent); recurring ones skip to the next run."""
    now = now or utcnow()
    grace = timedelta(minutes=settings.schedule_grace_minutes)
    missed = []
    with db.session() as session:
        rows = list(session.scalars(select(Schedule).where(Schedule.status == ScheduleStatus.SCHEDULED)))
        for row in rows:
            when = due_time(row)
            if when is None or now - when <= grace:
                continue
            reason = f"missed: due {fmt_utc(when)}, daemon not running within the grace of {grace}"
            if row.kind is ScheduleKind.ONCE:
                row.status, row.status_reason = ScheduleStatus.MISSED, reason
                if row.send_id is not None:
                    ledger.transition_send(session, row.send_id, SendStatus.MISSED, reason,
                                           from_status=SendStatus.SCHEDULED)
                log.warning("schedule %s: %s; nothing sent", row.id, reason)
            else:
                # coalesce: skip what is past the grace; the latest run still within it goes once
                row.next_run_at = next_fire(row.cron, row.timezone, now - grace, previous=when)
                row.status_reason = reason
                log.warning("schedule %s: %s; runs skipped, next run %s", row.id, reason, fmt_utc(row.next_run_at))
            missed.append(row.id)
    return missed


def due_ids(db: Database, now: datetime | None = None) -> list[int]:
    """Scheduled schedules whose time has come."""
    now = (now or utcnow()) + EARLY
    with db.session() as session:
        rows = session.scalars(select(Schedule).where(Schedule.status == ScheduleStatus.SCHEDULED))
        return [row.id for row in rows if (due_time(row) or now + EARLY) <= now]


def execute(db: Database, settings: Settings, schedule_id: int, stop: threading.Event | None = None,
            now: datetime | None = None, busy: set[int] | None = None) -> str:
    """Run one due schedule, if it still is due; returns what was decided (also logged).

    *busy* collects the ids of sends this process is running, so that the
    daemon does not resume one of them at the same time.
    """
    from mailer.sending.loop import run_send

    now = now or utcnow()
    with db.session() as session:
        row = session.get(Schedule, schedule_id)
    if row is None or row.status is not ScheduleStatus.SCHEDULED:
        return _say(schedule_id, f"not run: {'gone' if row is None else row.status.value}")
    when = due_time(row)
    if when is None or when > now + EARLY:
        return _say(schedule_id, f"not run: not due until {fmt_utc(when)}")
    if now - when > timedelta(minutes=settings.schedule_grace_minutes):
        mark_missed(db, settings, now)
        with db.session() as session:
            row = session.get(Schedule, schedule_id)
        when = due_time(row) if row is not None else None
        if row is None or row.kind is ScheduleKind.ONCE or when is None or when > now + EARLY:
            return _say(schedule_id, "not run: missed")
    start = {ScheduleKind.ONCE: lambda: _start_once(db, row, when, now),
             ScheduleKind.CRON: lambda: _start_cron(db, settings, row, when, now),
             ScheduleKind.DIGEST: lambda: _start_digest(db, settings, row, when, now)}[row.kind]
    started = start()
    if isinstance(started, str):
        return _say(schedule_id, started)
    send_id = started
    busy = set() if busy is None else busy
    busy.add(send_id)
    try:
        summary = run_send(db, settings, send_id, stop=stop)
    finally:
        busy.discard(send_id)
    with db.session() as session:
        status = session.get(Send, send_id).status  # type: ignore[union-attr]
    if row.kind is not ScheduleKind.ONCE:
        _mark(db, schedule_id, ScheduleStatus.SCHEDULED, f"last run {fmt_utc(when)}: send {send_id} {status.value}")
    elif status is SendStatus.DONE:
        _mark(db, schedule_id, ScheduleStatus.DONE, f"sent as send {send_id}")
    elif status is SendStatus.SENDING:
        _mark(db, schedule_id, ScheduleStatus.RUNNING, f"send {send_id} interrupted; resumes at next start")
    else:
        _mark(db, schedule_id, ScheduleStatus.FAILED, f"send {send_id} ended {status.value}")
    return _say(schedule_id, f"send {send_id} {status.value}: {_counts(summary)}")


def _start_once(db: Database, row: Schedule, when: datetime, now: datetime) -> int | str:
    """Claim a one-off's snapshot send (G3): its id, or why it does not run.

    The snapshot must still hold its claim on the lists (never twice): a plan
    whose issue went to the list by another send is refused, recorded as the
    schedule's `failed` reason, and sends nothing.
    """
    assert row.send_id is not None
    try:
        if not ledger.claim_send(db, row.send_id, SendStatus.SCHEDULED):
            return f"not run: send {row.send_id} already claimed"
    except ledger.AlreadySent as exc:
        reason = f"refused: {exc}; nothing sent"
        ledger.set_send_status(db, row.send_id, SendStatus.CANCELLED, reason, only_from=SendStatus.SCHEDULED)
        _mark(db, row.id, ScheduleStatus.FAILED, reason, (ScheduleStatus.SCHEDULED,))
        log.warning("schedule %s: %s", row.id, reason)
        return f"not run: {reason}"
    _mark(db, row.id, ScheduleStatus.RUNNING, f"sending since {fmt_utc(now)}")
    log.info("schedule %s: sending send %s (due %s, %.1f s late)", row.id, row.send_id, fmt_utc(when),
             (now - when).total_seconds())
    return row.send_id


def _start_cron(db: Database, settings: Settings, row: Schedule, when: datetime, now: datetime) -> int | str:
    """Claim this run of a recurring schedule, compose the issue afresh and claim its send: its id,
    or why it does not run."""
    from mailer.content.compose import compose_issue
    from mailer.content.folders import read_spec

    following = _claim_run(db, row, when, now)
    if isinstance(following, str):
        return following
    folder = Path(row.issue_path)
    if not read_spec(folder).reports:
        _mark(db, row.id, ScheduleStatus.SCHEDULED, f"run of {fmt_utc(when)} skipped: no reports")
        return f"skipped run of {fmt_utc(when)}: {folder.name} has no reports; next run {fmt_utc(following)}"
    composed = compose_issue(settings, folder)
    try:
        with db.session() as session:
            # each run claims its own occurrence: the same run never goes out twice
            send = ledger.create_send(session, composed, list(row.list_slugs), status=SendStatus.SCHEDULED,
                                      occurrence=f"{when:%Y-%m-%dT%H:%M:%SZ}", audience=row.audience)
            send_id = send.id
            session.execute(update(Schedule).where(Schedule.id == row.id).values(send_id=send_id))
    except ledger.AlreadySent as exc:
        reason = f"run of {fmt_utc(when)} refused: {exc}; nothing sent"
        _mark(db, row.id, ScheduleStatus.SCHEDULED, reason)
        log.warning("schedule %s: %s", row.id, reason)
        return f"not run: {reason}"
    if not ledger.claim_send(db, send_id, SendStatus.SCHEDULED):
        return f"not run: send {send_id} already claimed"
    log.info("schedule %s: composed %s afresh (%s reports) as send %s; sending", row.id, folder.name,
             composed.report_count, send_id)
    return send_id


def _claim_run(db: Database, row: Schedule, when: datetime, now: datetime) -> datetime | None | str:
    """Claim this run of a recurring schedule (compare-and-set on its next time): the run after it,
    or why not."""
    following = next_fire(row.cron, row.timezone, max(now, when + timedelta(microseconds=1)), previous=when)
    with db.session() as session:
        won = session.execute(update(Schedule).where(
            Schedule.id == row.id, Schedule.next_run_at == when,
            Schedule.status == ScheduleStatus.SCHEDULED).values(
            next_run_at=following, last_run_at=now)).rowcount == 1
    return following if won else f"not run: run of {fmt_utc(when)} already claimed"


def _start_digest(db: Database, settings: Settings, row: Schedule, when: datetime, now: datetime) -> int | str:
    """Claim this run of a digest, stage its inbox into a new dated issue and make its send: its id,
    or why nothing is sent (a skip is recorded as the schedule's reason)."""
    from mailer.scheduling.digest import run_digest

    following = _claim_run(db, row, when, now)
    if isinstance(following, str):
        return following
    run = run_digest(db, settings, Path(row.issue_path), list(row.list_slugs), when, row.timezone,
                     row.min_reports or 1, audience=row.audience)
    if run.status != "sent" or run.send_id is None:
        _mark(db, row.id, ScheduleStatus.SCHEDULED, run.message)
        return f"{run.message}; next run {fmt_utc(following)}"
    return run.send_id


def _counts(summary: Any) -> str:
    return (f"sent {summary.sent}, deferred {summary.deferred}, failed {summary.failed}, "
            f"skipped {summary.skipped}")


def continue_send(db: Database, settings: Settings, send_id: int, stop: threading.Event | None = None,
                  busy: set[int] | None = None) -> str:
    """Run an interrupted send (or one with retries due) again from its ledger (G7)."""
    from mailer.sending.loop import run_send

    busy = set() if busy is None else busy
    if send_id in busy:
        return "busy"
    busy.add(send_id)
    try:
        summary = run_send(db, settings, send_id, stop=stop)
    except Exception as exc:  # noqa: BLE001 - reported, never silent
        log.error("send %s: resume crashed: %s: %s", send_id, type(exc).__name__, exc)
        return "crashed"
    finally:
        busy.discard(send_id)
    settle_running(db)
    log.info("send %s: resumed; now %s: %s", send_id, summary.status.value, _counts(summary))
    return summary.status.value


def _say(schedule_id: int, decision: str) -> str:
    log.info("schedule %s: %s", schedule_id, decision)
    return decision


def settle_running(db: Database) -> None:
    """One-offs left `running` whose send has ended since (resumed or finished): record the end."""
    with db.session() as session:
        rows = session.execute(select(Schedule.id, Send.id, Send.status).join(Send, Schedule.send_id == Send.id)
                               .where(Schedule.status == ScheduleStatus.RUNNING)).all()
    for schedule_id, send_id, status in rows:
        if status is SendStatus.DONE:
            _mark(db, schedule_id, ScheduleStatus.DONE, f"sent as send {send_id}", (ScheduleStatus.RUNNING,))
        elif status in (SendStatus.FAILED, SendStatus.CANCELLED, SendStatus.PAUSED):
            _mark(db, schedule_id, ScheduleStatus.FAILED, f"send {send_id} ended {status.value}",
                  (ScheduleStatus.RUNNING,))


def guarded_execute(db: Database, settings: Settings, schedule_id: int,
                    stop: threading.Event | None = None, busy: set[int] | None = None) -> str:
    """`execute`, with a crash reported: logged and the schedule marked failed with the reason."""
    try:
        return execute(db, settings, schedule_id, stop, busy=busy)
    except Exception as exc:  # noqa: BLE001 - a job must never fail silently
        reason = f"crashed: {type(exc).__name__}: {' '.join(str(exc).split())}"
        log.error("schedule %s: %s", schedule_id, reason)
        _mark(db, schedule_id, ScheduleStatus.FAILED, reason)
        return reason


def interrupted(db: Database, settings: Settings) -> list[int]:
    """Sends left `sending` with rows due and nobody alive working on them."""
    from mailer.sending.recovery import resume_interrupted

    return resume_interrupted(db)
