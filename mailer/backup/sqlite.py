"""SQLite backups through the online backup API (sqlite3 Connection.backup).

The copy out is one backup step: a read transaction on the live database, a consistent snapshot,
while other processes go on writing (WAL). The copy back goes through a temporary file next to the
database (brought to the newest schema there, its leases dropped), then one backup step into the
live file: a single write transaction that other connections see as a whole or not at all, and
that rolls back on failure. The live file is never replaced under open connections or their WAL.
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

from mailer.errors import InputError, MailerError


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:   # immutable: nothing is written next to the backup file, not even -wal or -shm
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    return sqlite3.connect(path, timeout=30)


def dump(live: Path, target: Path) -> None:
    """Copy the database *live* to the new file *target*, as one self-contained file (no WAL)."""
    try:
        with closing(_connect(live)) as source, closing(_connect(target)) as copy:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise MailerError(f"backup: {exc}") from None


def revision_of(path: Path) -> str:
    """The schema revision of the SQLite backup *path*; InputError when it is not a sound mailer backup."""
    if Path(f"{path}-wal").exists():   # a database in use: its latest rows may be in the WAL, not the file
        raise InputError(f"restore {path}: a database in use (it has a -wal file), not a backup: make one "
                         "with `mailer backup`")
    try:
        with closing(_connect(path, read_only=True)) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise InputError(f"restore {path}: the file is damaged ({check})")
            has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                                     "'alembic_version'").fetchone()
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone() if has_table else None
    except sqlite3.Error as exc:
        raise InputError(f"restore {path}: not a readable SQLite database ({exc})") from None
    if row is None:
        raise InputError(f"restore {path}: a SQLite database but not a mailer backup (no alembic_version row)")
    return str(row[0])


def load(backup: Path, live: Path, upgrade: bool) -> None:
    """Put *backup* into the database file *live* atomically; *upgrade*: migrate it to the newest first."""
    try:
        live.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MailerError(f"restore: cannot create {live.parent}: {exc.strerror}") from None
    staging = live.with_name(f".{live.name}.restore-{uuid.uuid4().hex[:8]}")
    try:
        with closing(_connect(backup, read_only=True)) as source, closing(_connect(staging)) as copy:
            source.backup(copy)
        if upgrade:
            from mailer.db import Database

            staged = Database(f"sqlite:///{staging}")
            try:
                staged.upgrade()
            finally:
                staged.dispose()    # the last connection closes: its WAL is checkpointed into the file
        with closing(_connect(staging)) as copy:
            copy.execute("PRAGMA journal_mode=DELETE")
            if copy.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'lease'").fetchone():
                copy.execute("DELETE FROM lease")
                copy.commit()
            with closing(_connect(live)) as target:
                copy.backup(target)
    except sqlite3.Error as exc:
        raise MailerError(f"restore: {exc}; the database is as it was") from None
    finally:
        for leftover in (staging, Path(f"{staging}-wal"), Path(f"{staging}-shm"), Path(f"{staging}-journal")):
            leftover.unlink(missing_ok=True)
