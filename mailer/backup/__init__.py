"""Backups: a consistent copy of the database taken while it is in use, and an atomic restore.

  sqlite    the online backup API (sqlite3 Connection.backup): out to a file, and back into the live
            database in one write transaction
  postgres  pg_dump's custom format; restored by psql in one transaction

`restore` first reads the file: a SQLite database or a pg_dump archive holding an `alembic_version`
row whose revision this code knows (a newer one is refused), and refuses while a send is running
unless forced. A restore that fails leaves the database as it was. An older backup is brought up
to the newest schema after it is restored. The `lease` rows (who is running) are not data: the
ones of the backup are dropped, running processes write theirs again at their next beat.
May import the floor (db, liveness, errors) only.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from mailer.db import Database, alembic_config
from mailer.errors import InputError, MailerError

SQLITE_HEADER = b"SQLite format 3\x00"
PGDUMP_HEADER = b"PGDMP"


@dataclass(frozen=True)
class BackupFile:
    """What a backup file holds: its kind (`sqlite` or `postgresql`) and schema revision."""

    path: Path
    kind: str
    revision: str


def schema_head(db: Database) -> str:
    """The newest migration revision this code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(db.url)).get_current_head() or "base"


def _known_revisions(db: Database) -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(alembic_config(db.url)).walk_revisions()}


def backup(db: Database, target: Path) -> BackupFile:
    """Write a backup of *db* to *target* (replaced atomically if it exists); safe while a send runs."""
    target = Path(target)
    if not target.parent.is_dir():
        raise InputError(f"backup {target}: folder {target.parent} does not exist")
    live = db.sqlite_file()
    if live is not None and target.exists() and target.resolve() == live.resolve():
        raise InputError(f"backup {target}: that is the live database itself; name another file")
    db.require_schema()
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))   # it holds personal data
        if db.dialect == "sqlite":
            from mailer.backup import sqlite

            if live is None:
                raise InputError("backup: an in-memory SQLite database has nothing to back up")
            sqlite.dump(live, temporary)
        elif db.dialect == "postgresql":
            from mailer.backup import postgres

            postgres.dump(db, temporary)
        else:
            raise MailerError(f"backup: {db.dialect} databases are not supported (SQLite, PostgreSQL)")
        found = _inspect(temporary)
        _durable(temporary)
        os.replace(temporary, target)
        _durable(target.parent)
    finally:
        temporary.unlink(missing_ok=True)
    return BackupFile(target, found.kind, found.revision)


def read_backup(path: Path, db: Database) -> BackupFile:
    """What *path* holds, or InputError: not a backup, not of this database's kind, or from a newer schema."""
    found = _inspect(Path(path))
    if found.kind != db.dialect:
        raise InputError(f"restore {path}: a {found.kind} backup cannot be restored into this {db.dialect} "
                         "database")
    if found.revision not in _known_revisions(db):
        raise InputError(f"restore {path}: its schema (revision {found.revision}) is newer than this mailer "
                         f"knows (newest {schema_head(db)}): upgrade mailer first")
    return found


def _inspect(path: Path) -> BackupFile:
    """The kind and schema revision of the backup *path*, or InputError when it is not one."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        raise InputError(f"restore {path}: no such file") from None
    except OSError as exc:
        raise InputError(f"restore {path}: cannot read it: {exc.strerror}") from None
    if header.startswith(SQLITE_HEADER):
        from mailer.backup import sqlite

        kind, revision = "sqlite", sqlite.revision_of(path)
    elif header.startswith(PGDUMP_HEADER):
        from mailer.backup import postgres

        kind, revision = "postgresql", postgres.revision_of(path)
    else:
        raise InputError(f"restore {path}: not a mailer backup (neither a SQLite database nor a pg_dump "
                         "custom-format archive)")
    return BackupFile(path, kind, revision)


def running_sends(db: Database) -> list[str]:
    """``host:pid`` of the sending processes alive on *db* (none when it has no tables yet)."""
    from sqlalchemy import inspect

    from mailer import liveness

    live = db.sqlite_file()
    if live is not None and not live.exists():
        return []
    if not inspect(db.engine).has_table("lease"):
        return []
    return liveness.running_senders(db)


def restore(db: Database, source: Path, force: bool = False) -> BackupFile:
    """Replace *db*'s content with the backup *source*, atomically, then bring it to the newest schema."""
    found = read_backup(source, db)
    senders = running_sends(db)
    if senders and not force:
        raise MailerError(f"restore: a send is running ({', '.join(senders)}): let it finish or stop it "
                          "(SIGTERM), or pass --force")
    head = schema_head(db)
    if db.dialect == "sqlite":
        from mailer.backup import sqlite

        live = db.sqlite_file()
        if live is None:
            raise InputError("restore: an in-memory SQLite database cannot be restored into")
        db.dispose()
        sqlite.load(found.path, live, upgrade=found.revision != head)
    else:
        from mailer.backup import postgres

        postgres.load(db, found.path)
        if found.revision != head:
            try:
                db.upgrade()
            except Exception as exc:
                raise MailerError(f"restore: the backup is restored at revision {found.revision}, but the "
                                  f"upgrade to {head} failed ({exc}): run `mailer db upgrade`") from None
    return found


def _durable(path: Path) -> None:
    """fsync a file or a folder, so a rename is on disk before we say it is done."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
