"""Is a claimant alive? Processes on this host by their pid, others by a heartbeat (STANDARDS G7).

A process that claims delivery rows keeps a `lease` row named ``sender:<host:pid>`` fresh
every `BEAT_SECONDS` (`Heartbeat`); a claimant on another host is dead once its beat is older
than `DEAD_AFTER`. On this host the pid decides: gone, or a zombie (exited, not yet reaped by
its parent), is dead. The scheduler daemon beats its ``scheduler`` lease the same way, and
`scheduler --once` leaves the time of its last run in ``scheduler:once`` (`scheduler_alive`).
May import the floor only.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from mailer.db import Database
from mailer.models import Lease, utcnow

PREFIX = "sender:"
SCHEDULER = "scheduler"            # the daemon's lease, written by mailer.locking.SingletonLock
SCHEDULER_ONCE = "scheduler:once"  # the last `mailer scheduler --once` run (from cron)
BEAT_SECONDS = 15.0
DEAD_AFTER = timedelta(seconds=90)
# a claimant from before heartbeats (or one that never beat): judged by its rows' last move
SILENT_AFTER = timedelta(minutes=15)


def pid_alive(pid: int) -> bool:
    """True while *pid* runs on this host: not gone and not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # "pid (comm) S ...": the state follows the last ')' (comm may hold spaces or parentheses)
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True    # no /proc here: the kill check is all we have
    return state not in (b"Z", b"X")


def beats(db: Database) -> dict[str, datetime]:
    """holder -> its last heartbeat, for every sending process that keeps one."""
    with db.session() as session:
        rows = session.execute(select(Lease.holder, Lease.heartbeat_at).where(Lease.name.startswith(PREFIX)))
        return {holder: _utc(beat) for holder, beat in rows}


def running_senders(db: Database, now: datetime | None = None) -> list[str]:
    """The ``host:pid`` of every sending process alive now (its heartbeat fresh, or its pid running here)."""
    heartbeats = beats(db)
    return sorted(holder for holder in heartbeats if claimant_alive(holder, None, heartbeats, now))


@dataclass(frozen=True)
class SchedulerStatus:
    """What the leases say of the scheduler, for `schedule list` and the desk."""

    alive: bool                  # the daemon beats, or `scheduler --once` ran recently enough
    daemon_alive: bool
    holder: str                  # ``host:pid`` of the daemon's lease ("" when it left none)
    since: datetime | None       # when that daemon took the lock
    last_seen: datetime | None   # its last heartbeat
    last_once: datetime | None   # the last `scheduler --once` run


def scheduler_status(db: Database, once_within: timedelta, now: datetime | None = None) -> SchedulerStatus:
    """The scheduler daemon's lease and the last `scheduler --once`, judged as `scheduler_alive` does."""
    now = now or utcnow()
    with db.session() as session:
        daemon = session.get(Lease, SCHEDULER)
        once = session.get(Lease, SCHEDULER_ONCE)
    beat = _utc(daemon.heartbeat_at) if daemon is not None else None
    daemon_alive = daemon is not None and claimant_alive(daemon.holder, None, {daemon.holder: beat}, now)
    last_once = _utc(once.heartbeat_at) if once is not None else None
    return SchedulerStatus(
        alive=daemon_alive or (last_once is not None and now - last_once < once_within),
        daemon_alive=daemon_alive, holder=daemon.holder if daemon is not None else "",
        since=_utc(daemon.acquired_at) if daemon is not None else None, last_seen=beat, last_once=last_once)


def scheduler_alive(db: Database, once_within: timedelta, now: datetime | None = None) -> bool:
    """True while a scheduler daemon beats its lease, or when `scheduler --once` ran within *once_within*."""
    return scheduler_status(db, once_within, now).alive


def claimant_alive(holder: str, last_move: datetime | None, heartbeats: dict[str, datetime],
                   now: datetime | None = None) -> bool:
    """True while *holder* (``host:pid``) may still be working on the rows it claimed."""
    if not holder:
        return False
    host, _, pid = holder.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return pid_alive(int(pid))
    now = now or utcnow()
    if holder in heartbeats:
        return now - heartbeats[holder] < DEAD_AFTER
    return last_move is not None and now - last_move < SILENT_AFTER


class Heartbeat:
    """A thread that keeps a lease fresh: this process's ``sender:`` one while it holds claims
    (the default *name*), or the scheduler's while the daemon runs."""

    def __init__(self, db: Database, holder: str, interval: float = BEAT_SECONDS, name: str | None = None) -> None:
        self.db, self.holder, self.interval = db, holder, interval
        self.name = name or PREFIX + holder
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Heartbeat":
        self.beat()    # before any row is claimed, so nobody takes this process for silent
        self._thread = threading.Thread(target=self._run, name="mailer-heartbeat", daemon=True)
        self._thread.start()
        return self

    def beat(self) -> None:
        now = utcnow()
        with self.db.session() as session:
            lease = session.get(Lease, self.name)
            if lease is None:
                session.add(Lease(name=self.name, holder=self.holder, acquired_at=now, heartbeat_at=now))
            else:
                lease.holder, lease.heartbeat_at = self.holder, now

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:   # a busy or failing database: the next beat tries again
                pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with self.db.session() as session:
                session.execute(delete(Lease).where(Lease.name == self.name, Lease.holder == self.holder))
        except Exception:   # the database is gone: the beat simply goes stale
            pass


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=utcnow().tzinfo)
