"""One scheduler per database (STANDARDS G1).

The lock itself is held by the operating system or the database server, so it
goes away with the process however that process dies: on PostgreSQL a
session-level advisory lock on a connection kept open for the daemon's life;
on SQLite an ``fcntl.flock`` on a file next to the database file. The `lease`
row only says who holds the lock, for the refusal message.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import delete, select, text

from mailer.db import Database
from mailer.errors import MailerError
from mailer.models import Lease, utcnow

SCHEDULER = "scheduler"
# pg_try_advisory_lock key: a fixed 64-bit number meaning "the mailer scheduler"
ADVISORY_KEY = 0x6D61696C65720001


class LockHeld(MailerError):
    """Another process holds the role on this database."""

    exit_code = 4


def holder_id() -> str:
    """``host:pid`` of this process, as stored in the lease."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lock_file_for(db: Database) -> Path | None:
    """The lock file of a SQLite database file (None for in-memory databases)."""
    database = db.engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(database + ".scheduler.lock")


class SingletonLock:
    """The lock of one role on one database; use as a context manager."""

    def __init__(self, db: Database, name: str = SCHEDULER, *, wait_for_holder: float = 3.0) -> None:
        self.db = db
        self.name = name
        self.holder = holder_id()
        self.wait_for_holder = wait_for_holder
        self._conn: Any = None
        self._file: IO[bytes] | None = None
        self.acquired_at: datetime | None = None

    def acquire(self) -> "SingletonLock":
        """Take the lock or raise LockHeld naming who holds it."""
        if not self._take():
            raise LockHeld(self._refusal())
        self.acquired_at = utcnow()
        with self.db.session() as session:
            session.execute(delete(Lease).where(Lease.name == self.name))
            session.add(Lease(name=self.name, holder=self.holder, acquired_at=self.acquired_at,
                              heartbeat_at=self.acquired_at))
        return self

    def _take(self) -> bool:
        if self.db.dialect == "postgresql":
            conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": _signed(ADVISORY_KEY)}).scalar())
            if got:
                self._conn = conn
            else:
                conn.close()
            return got
        path = lock_file_for(self.db)
        if path is None:
            return True
        handle = open(path, "ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def _refusal(self) -> str:
        """The message for a refused start; waits briefly for a racing holder to write its lease."""
        deadline = time.monotonic() + self.wait_for_holder
        while True:
            with self.db.session() as session:
                lease = session.scalar(select(Lease).where(Lease.name == self.name))
            if lease is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        if lease is None:
            return f"{self.name} already running on this database (holder unknown)"
        host, _, pid = lease.holder.rpartition(":")
        since = lease.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{self.name} already running on {host} pid {pid} since {since}"

    def heartbeat(self) -> None:
        """Record that the holder is alive (shown by `schedule list`)."""
        with self.db.session() as session:
            lease = session.get(Lease, self.name)
            if lease is not None and lease.holder == self.holder:
                lease.heartbeat_at = utcnow()

    def release(self) -> None:
        """Drop the lease row and the lock; safe to call twice."""
        if self._conn is None and self._file is None:
            return
        try:
            with self.db.session() as session:
                session.execute(delete(Lease).where(Lease.name == self.name, Lease.holder == self.holder))
        finally:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _signed(ADVISORY_KEY)})
                finally:
                    self._conn.close()
                    self._conn = None
            if self._file is not None:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
                self._file.close()
                self._file = None

    def __enter__(self) -> "SingletonLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def current_holder(db: Database, name: str = SCHEDULER) -> Lease | None:
    """The lease row of *name*, if a holder wrote one."""
    with db.session() as session:
        return session.scalar(select(Lease).where(Lease.name == name))


def _signed(key: int) -> int:
    """PostgreSQL bigint is signed."""
    return key - (1 << 64) if key >= (1 << 63) else key
