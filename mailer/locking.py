"""Who this process is (holder_id) and the single-holder locks: one scheduler per database (G1),
one worker per SQLite database.

A lock is held by the operating system or the database server, so it goes
away with the process however that process dies: on PostgreSQL a
session-level advisory lock on a connection kept open for the holder's life;
on SQLite an ``fcntl.flock`` on a file next to the database file. The
scheduler's `lease` row only says who holds the lock, for the refusal message
and `schedule list`. May import the floor only.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

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
    """``host:pid`` of this process: the lease holder, and the claimant of delivery rows."""
    return f"{socket.gethostname()}:{os.getpid()}"


def lock_file_for(db: Database, name: str = SCHEDULER) -> Path | None:
    """The lock file of role *name* next to a SQLite database file (None for in-memory databases)."""
    database = db.engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(f"{database}.{name}.lock")


def take_file_lock(path: Path, owner: str) -> int | None:
    """An exclusive ``flock`` on *path* with *owner* written in it: the open fd, or None when held.

    Closing the fd (or the process ending) releases it.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.pwrite(fd, owner.encode(), 0)
    return fd


def file_lock_owner(path: Path) -> str:
    """What the holder of the lock on *path* wrote in it ("?" when nothing)."""
    try:
        return path.read_text(errors="replace").strip() or "?"
    except OSError:
        return "?"


@contextmanager
def worker_lock(db: Database) -> Iterator[None]:
    """Hold the one-worker lock of a SQLite database; no-op on other databases (they allow several)."""
    if db.dialect != "sqlite":
        yield
        return
    path = Path(str(db.engine.url.database) + ".worker.lock")
    fd = take_file_lock(path, str(os.getpid()))
    if fd is None:
        raise MailerError(f"another `mailer worker` (pid {file_lock_owner(path)}) is running on "
                          f"{db.engine.url.database}; SQLite allows one worker: use PostgreSQL to run several")
    try:
        yield
    finally:
        os.close(fd)


class SingletonLock:
    """The lock of one role on one database; use as a context manager."""

    def __init__(self, db: Database, name: str = SCHEDULER, *, wait_for_holder: float = 3.0) -> None:
        self.db = db
        self.name = name
        self.holder = holder_id()
        self.wait_for_holder = wait_for_holder
        self._conn: Any = None
        self._fd: int | None = None
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
        path = lock_file_for(self.db, self.name)
        if path is None:
            return True
        self._fd = take_file_lock(path, self.holder)
        return self._fd is not None

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

    def release(self) -> None:
        """Drop the lease row and the lock; safe to call twice."""
        if self._conn is None and self._fd is None:
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
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

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
