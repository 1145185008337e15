"""APScheduler 3.x wiring: wake the sender when a schedule in our tables is due.

Our `schedule` and `send` tables are the source of truth (STANDARDS G5); the
in-memory job store is rebuilt from them at start and re-synced every few
seconds by the `sync` job, so schedules made while the daemon runs are picked
up. Each schedule has one job, ``schedule-<id>``, added with an explicit id
and ``replace_existing=True`` (G4), whose callable is the module-level
``mailer.scheduling.daemon:run_schedule`` with primitive arguments (G5). The decision
to send is a compare-and-set in the database (G3), so a duplicate trigger is
harmless, and a send is started late only within the grace time (G2).
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import ref_to_obj
from sqlalchemy import select, update

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import ConfigError
from mailer.locking import SingletonLock
from mailer.models import Schedule, ScheduleKind, ScheduleStatus, Send, SendStatus, utcnow

log = logging.getLogger("mailer.scheduler")

RUN_JOB = "mailer.scheduling.daemon:run_schedule"
RESUME_JOB = "mailer.scheduling.daemon:resume_send"
SYNC_JOB = "mailer.scheduling.daemon:sync"
# a trigger firing this early is still on time (clock granularity)
EARLY = timedelta(seconds=1)

# the running daemons of this process by id: jobs get the id, a primitive, not the object (G5)
_DAEMONS: dict[str, "Daemon"] = {}


def job_id(schedule_id: int) -> str:
    return f"schedule-{schedule_id}"


def check_job_callables() -> None:
    """Fail at start when a job callable no longer imports: APScheduler would drop its jobs silently (G5)."""
    for ref in (RUN_JOB, RESUME_JOB, SYNC_JOB):
        try:
            ref_to_obj(ref)
        except (LookupError, ValueError, TypeError) as exc:
            raise ConfigError(f"scheduler job callable {ref!r} does not import: {exc}") from None


def _when(row: Schedule) -> datetime | None:
    return row.run_at if row.kind is ScheduleKind.ONCE else row.next_run_at


def _fmt(value: datetime | None) -> str:
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
            when = _when(row)
            if when is None or now - when <= grace:
                continue
            reason = f"missed: due {_fmt(when)}, daemon not running within the grace of {grace}"
            if row.kind is ScheduleKind.ONCE:
                row.status, row.status_reason = ScheduleStatus.MISSED, reason
                if row.send_id is not None:
                    session.execute(update(Send).where(Send.id == row.send_id, Send.status == SendStatus.SCHEDULED)
                                    .values(status=SendStatus.MISSED, status_reason=reason, status_at=now))
                log.warning("schedule %s: %s; nothing sent", row.id, reason)
            else:
                from mailer.scheduling.plans import next_fire

                # coalesce: skip what is past the grace; the latest run still within it goes once
                row.next_run_at = next_fire(row.cron, row.timezone, now - grace, previous=when)
                row.status_reason = reason
                log.warning("schedule %s: %s; runs skipped, next run %s", row.id, reason, _fmt(row.next_run_at))
            missed.append(row.id)
    return missed


def due_ids(db: Database, now: datetime | None = None) -> list[int]:
    """Scheduled schedules whose time has come."""
    now = (now or utcnow()) + EARLY
    with db.session() as session:
        rows = session.scalars(select(Schedule).where(Schedule.status == ScheduleStatus.SCHEDULED))
        return [row.id for row in rows if (_when(row) or now + EARLY) <= now]


def execute(db: Database, settings: Settings, schedule_id: int, stop: threading.Event | None = None,
            now: datetime | None = None, busy: set[int] | None = None) -> str:
    """Run one due schedule, if it still is due; returns what was decided (also logged).

    *busy* collects the ids of sends this process is running, so that the
    daemon does not resume one of them at the same time.
    """
    from mailer.content.compose import compose_issue, read_spec
    from mailer.sending.ledger import claim_send, create_send
    from mailer.scheduling.plans import next_fire
    from mailer.sending.loop import run_send

    now = now or utcnow()
    with db.session() as session:
        row = session.get(Schedule, schedule_id)
    if row is None or row.status is not ScheduleStatus.SCHEDULED:
        return _say(schedule_id, f"not run: {'gone' if row is None else row.status.value}")
    when = _when(row)
    if when is None or when > now + EARLY:
        return _say(schedule_id, f"not run: not due until {_fmt(when)}")
    if now - when > timedelta(minutes=settings.schedule_grace_minutes):
        mark_missed(db, settings, now)
        with db.session() as session:
            row = session.get(Schedule, schedule_id)
        when = _when(row) if row is not None else None
        if row is None or row.kind is ScheduleKind.ONCE or when is None or when > now + EARLY:
            return _say(schedule_id, "not run: missed")
    if row.kind is ScheduleKind.ONCE:
        assert row.send_id is not None
        if not claim_send(db, row.send_id, SendStatus.SCHEDULED):
            return _say(schedule_id, f"not run: send {row.send_id} already claimed")
        _mark(db, schedule_id, ScheduleStatus.RUNNING, f"sending since {_fmt(now)}")
        send_id = row.send_id
        log.info("schedule %s: sending send %s (due %s, %.1f s late)", schedule_id, send_id, _fmt(when),
                 (now - when).total_seconds())
    else:
        following = next_fire(row.cron, row.timezone, max(now, when + timedelta(microseconds=1)), previous=when)
        with db.session() as session:
            won = session.execute(update(Schedule).where(
                Schedule.id == schedule_id, Schedule.next_run_at == when,
                Schedule.status == ScheduleStatus.SCHEDULED).values(
                next_run_at=following, last_run_at=now)).rowcount == 1
        if not won:
            return _say(schedule_id, f"not run: run of {_fmt(when)} already claimed")
        folder = Path(row.issue_path)
        if not read_spec(folder).reports:
            _mark(db, schedule_id, ScheduleStatus.SCHEDULED, f"run of {_fmt(when)} skipped: no reports")
            return _say(schedule_id, f"skipped run of {_fmt(when)}: {folder.name} has no reports; "
                                     f"next run {_fmt(following)}")
        composed = compose_issue(settings, folder)
        with db.session() as session:
            send = create_send(session, composed, list(row.list_slugs), status=SendStatus.SCHEDULED)
            session.flush()
            send_id = send.id
            session.execute(update(Schedule).where(Schedule.id == schedule_id).values(send_id=send_id))
        if not claim_send(db, send_id, SendStatus.SCHEDULED):
            return _say(schedule_id, f"not run: send {send_id} already claimed")
        log.info("schedule %s: composed %s afresh (%s reports) as send %s; sending", schedule_id, folder.name,
                 composed.report_count, send_id)
    busy = set() if busy is None else busy
    busy.add(send_id)
    try:
        summary = run_send(db, settings, send_id, stop=stop)
    finally:
        busy.discard(send_id)
    with db.session() as session:
        status = session.get(Send, send_id).status  # type: ignore[union-attr]
    if row.kind is ScheduleKind.CRON:
        _mark(db, schedule_id, ScheduleStatus.SCHEDULED, f"last run {_fmt(when)}: send {send_id} {status.value}")
    elif status is SendStatus.DONE:
        _mark(db, schedule_id, ScheduleStatus.DONE, f"sent as send {send_id}")
    elif status is SendStatus.SENDING:
        _mark(db, schedule_id, ScheduleStatus.RUNNING, f"send {send_id} interrupted; resumes at next start")
    else:
        _mark(db, schedule_id, ScheduleStatus.FAILED, f"send {send_id} ended {status.value}")
    return _say(schedule_id, f"send {send_id} {status.value}: {_counts(summary)}")


def _counts(summary: Any) -> str:
    return (f"sent {summary.sent}, deferred {summary.deferred}, failed {summary.failed}, "
            f"skipped {summary.skipped}")


def resume(db: Database, settings: Settings, send_id: int, stop: threading.Event | None = None,
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


def run_schedule(daemon_id: str, schedule_id: int) -> None:
    """Job callable (primitive args): run one schedule in the daemon *daemon_id* of this process."""
    daemon = _DAEMONS[daemon_id]
    guarded_execute(daemon.db, daemon.settings, schedule_id, daemon.stop, daemon.busy)


def resume_send(daemon_id: str, send_id: int) -> None:
    """Job callable (primitive args): resume one interrupted send."""
    daemon = _DAEMONS[daemon_id]
    resume(daemon.db, daemon.settings, send_id, daemon.stop, daemon.busy)


def sync(daemon_id: str) -> None:
    """Job callable: bring the jobs in line with the schedule table."""
    _DAEMONS[daemon_id].sync()


def interrupted(db: Database, settings: Settings) -> list[int]:
    """Sends left `sending` with rows due and nobody alive working on them."""
    from mailer.sending.loop import resume_interrupted

    return resume_interrupted(db, settings)


def run_once(db: Database, settings: Settings, stop: threading.Event | None = None) -> list[str]:
    """`mailer scheduler --once`: resume interrupted sends, run what is due now, then return."""
    check_job_callables()
    decisions = [resume(db, settings, send_id, stop) for send_id in interrupted(db, settings)]
    settle_running(db)
    mark_missed(db, settings)
    return decisions + [guarded_execute(db, settings, schedule_id, stop) for schedule_id in due_ids(db)]


class Daemon:
    """A BlockingScheduler fed from our tables, holding the one-scheduler lock (G1)."""

    def __init__(self, db: Database, settings: Settings, sync_seconds: float = 5.0, workers: int = 3) -> None:
        self.db, self.settings = db, settings
        self.id = uuid.uuid4().hex
        self.stop = threading.Event()
        self.sync_seconds = sync_seconds
        self.executor = ThreadPoolExecutor(max_workers=workers)
        grace = max(1, int(settings.schedule_grace_minutes * 60))
        self.scheduler = BlockingScheduler(
            timezone=timezone.utc,  # G6: explicit
            executors={"default": self.executor},
            job_defaults={"coalesce": True, "misfire_grace_time": grace, "max_instances": 1},  # G2
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        self._planned: dict[str, datetime] = {}
        self._lock = threading.Lock()
        self.lock = SingletonLock(db)
        self.busy: set[int] = set()

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("job %s: missed its time %s (the schedule table decides at the next sync)",
                        event.job_id, _fmt(event.scheduled_run_time))
        else:
            log.error("job %s: crashed: %s: %s", event.job_id, type(event.exception).__name__, event.exception)

    def sync(self) -> None:
        """Mark missed schedules, then add, move or remove jobs to match the table (G4: explicit ids)."""
        with self._lock:
            if self.stop.is_set():
                self.request_stop()
                return
            if self.lock.acquired_at is not None:
                self.lock.heartbeat()
            for send_id in interrupted(self.db, self.settings):
                jid = f"resume-{send_id}"
                if send_id not in self.busy and self.scheduler.get_job(jid) is None:
                    log.info("send %s: interrupted or retries due; resuming", send_id)
                    self.scheduler.add_job(RESUME_JOB, DateTrigger(utcnow()), args=[self.id, send_id], id=jid,
                                           name=jid, replace_existing=True)
            settle_running(self.db)
            mark_missed(self.db, self.settings)
            with self.db.session() as session:
                rows = list(session.scalars(select(Schedule).where(Schedule.status == ScheduleStatus.SCHEDULED)))
            wanted = {job_id(r.id): (r.id, _when(r)) for r in rows if _when(r) is not None}
            for job in self.scheduler.get_jobs():
                if job.id.startswith("schedule-") and job.id not in wanted:
                    self._remove(job.id)
            for jid, (schedule_id, when) in wanted.items():
                if self._planned.get(jid) == when and self.scheduler.get_job(jid) is not None:
                    continue
                self.scheduler.add_job(RUN_JOB, DateTrigger(when), args=[self.id, schedule_id], id=jid,
                                       name=jid, replace_existing=True)
                self._planned[jid] = when  # type: ignore[assignment]
                log.info("schedule %s: planned for %s", schedule_id, _fmt(when))

    def _remove(self, jid: str) -> None:
        self._planned.pop(jid, None)
        try:
            self.scheduler.remove_job(jid)
            log.info("%s: removed (no longer scheduled)", jid)
        except JobLookupError:
            pass

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self.scheduler.get_jobs())

    def request_stop(self, *_: Any) -> None:
        """SIGTERM/SIGINT: the send in flight parks at its next batch; no new job starts."""
        if not self.stop.is_set():
            log.info("stop requested; finishing the batch in flight")
        self.stop.set()
        try:
            self.scheduler.shutdown(wait=False)
        except Exception:  # noqa: BLE001 - not started yet: run() sees the flag
            pass

    def run(self) -> None:
        """Hold the lock, resume, sync, and run until SIGTERM."""
        check_job_callables()
        with self.lock as lock:
            log.info("scheduler started as %s (grace %s min, sync every %s s)", lock.holder,
                     self.settings.schedule_grace_minutes, self.sync_seconds)
            _DAEMONS[self.id] = self
            old = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
            try:
                self.sync()
                self.scheduler.add_job(SYNC_JOB, IntervalTrigger(seconds=self.sync_seconds), args=[self.id],
                                       id="sync", name="sync", replace_existing=True)
                log.info("jobs: %s", ", ".join(self.job_ids()))
                if not self.stop.is_set():
                    self.scheduler.start()
                self.executor.shutdown(wait=True)
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)
                _DAEMONS.pop(self.id, None)
            log.info("scheduler stopped")
