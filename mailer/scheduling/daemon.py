"""APScheduler 3.x wiring: wake the sender when a schedule in our tables is due.

The in-memory job store is rebuilt from our tables at start and re-synced
every few seconds by the `sync` job, so schedules made while the daemon runs
are picked up. Each schedule has one job, ``schedule-<id>``, added with an
explicit id and ``replace_existing=True`` (G4), whose callable is the
module-level ``mailer.scheduling.daemon:run_schedule`` with primitive
arguments (G5). What a job decides is mailer.scheduling.runs' business. Holds
the one-scheduler lock (mailer.locking, G1). May import runs, sending and the floor.
"""

from __future__ import annotations

import signal
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import ref_to_obj
from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import ConfigError
from mailer.liveness import SCHEDULER_ONCE, Heartbeat
from mailer.locking import SingletonLock
from mailer.models import Schedule, ScheduleStatus, utcnow
from mailer.scheduling.runs import (
    continue_send,
    due_ids,
    due_time,
    fmt_utc,
    guarded_execute,
    interrupted,
    log,
    mark_missed,
    settle_running,
)

RUN_JOB = "mailer.scheduling.daemon:run_schedule"
RESUME_JOB = "mailer.scheduling.daemon:resume_send"
SYNC_JOB = "mailer.scheduling.daemon:sync"

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


def run_schedule(daemon_id: str, schedule_id: int) -> None:
    """Job callable (primitive args): run one schedule in the daemon *daemon_id* of this process."""
    daemon = _DAEMONS[daemon_id]
    guarded_execute(daemon.db, daemon.settings, schedule_id, daemon.stop, daemon.busy)


def resume_send(daemon_id: str, send_id: int) -> None:
    """Job callable (primitive args): resume one interrupted send."""
    daemon = _DAEMONS[daemon_id]
    continue_send(daemon.db, daemon.settings, send_id, daemon.stop, daemon.busy)


def sync(daemon_id: str) -> None:
    """Job callable: bring the jobs in line with the schedule table."""
    _DAEMONS[daemon_id].sync()


def recover_digests(db: Database, settings: Settings) -> None:
    """Finish digest runs a crash left staged (their sends are then resumed like any other)."""
    from mailer.scheduling.digest import recover

    try:
        recover(db, settings)
    except Exception as exc:  # noqa: BLE001 - reported; the staged reports stay for the next start
        log.error("digest recovery crashed: %s: %s", type(exc).__name__, exc)


def run_once(db: Database, settings: Settings, stop: threading.Event | None = None) -> list[str]:
    """`mailer scheduler --once`: resume interrupted sends, run what is due now, then return."""
    check_job_callables()
    recover_digests(db, settings)
    decisions = [continue_send(db, settings, send_id, stop) for send_id in interrupted(db, settings)]
    settle_running(db)
    mark_missed(db, settings)
    return decisions + [guarded_execute(db, settings, schedule_id, stop) for schedule_id in due_ids(db)]


def run_once_locked(db: Database, settings: Settings) -> list[str]:
    """`run_once` holding the one-scheduler lock, its lease beating; leaves the time of the run in
    the ``scheduler:once`` lease, so that `mailer schedule` knows a cron job runs the scheduler."""
    with SingletonLock(db) as lock:
        beat = Heartbeat(db, lock.holder, name=lock.name).start()
        try:
            decisions = run_once(db, settings)
        finally:
            beat.stop()
        Heartbeat(db, lock.holder, name=SCHEDULER_ONCE).beat()
    return decisions


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
                        event.job_id, fmt_utc(event.scheduled_run_time))
        else:
            log.error("job %s: crashed: %s: %s", event.job_id, type(event.exception).__name__, event.exception)

    def sync(self) -> None:
        """Mark missed schedules, then add, move or remove jobs to match the table (G4: explicit ids)."""
        with self._lock:
            if self.stop.is_set():
                self.request_stop()
                return
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
            wanted = {job_id(r.id): (r.id, due_time(r)) for r in rows if due_time(r) is not None}
            for job in self.scheduler.get_jobs():
                if job.id.startswith("schedule-") and job.id not in wanted:
                    self._remove(job.id)
            for jid, (schedule_id, when) in wanted.items():
                if self._planned.get(jid) == when and self.scheduler.get_job(jid) is not None:
                    continue
                self.scheduler.add_job(RUN_JOB, DateTrigger(when), args=[self.id, schedule_id], id=jid,
                                       name=jid, replace_existing=True)
                self._planned[jid] = when  # type: ignore[assignment]
                log.info("schedule %s: planned for %s", schedule_id, fmt_utc(when))

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
            beat = Heartbeat(self.db, lock.holder, name=lock.name).start()   # `mailer schedule` sees us alive
            old = {sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
            try:
                recover_digests(self.db, self.settings)   # the lock is ours: no other run is live
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
                beat.stop()
                _DAEMONS.pop(self.id, None)
            log.info("scheduler stopped")
