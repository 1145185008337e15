"""PostgreSQL backups with the server's own tools: pg_dump (custom format), pg_restore, psql.

pg_dump takes one transaction's snapshot, so a send may go on while it runs. A restore turns the
archive into SQL (pg_restore, no connection), then psql runs it in one transaction after dropping
every table and enum type of the live schema (a backup from an older schema must not meet tables
of a newer one): a failure at any statement rolls the whole restore back. The tools are found on
PATH or in /usr/lib/postgresql/<version>/bin (newest first); the password goes in PGPASSWORD,
never on a command line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from mailer.db import Database
from mailer.errors import InputError, MailerError

_COPY = re.compile(r"^COPY \S*alembic_version \(version_num\) FROM stdin;\n(.*?)\n\\\.$", re.M | re.S)


def tool(name: str) -> str:
    """The path of PostgreSQL client program *name*."""
    found = shutil.which(name)
    if found:
        return found

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.parent.name))

    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=version, reverse=True)
    if not candidates:
        raise MailerError(f"{name} not found on PATH or in /usr/lib/postgresql/*/bin: install the PostgreSQL "
                          "client programs (Debian: postgresql-client)")
    return str(candidates[0])


def _connection(db: Database) -> tuple[str, dict[str, str]]:
    """A libpq URI for *db* without its password, and the environment that carries the password."""
    url = db.engine.url
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _run(args: list[str], what: str, env: dict[str, str] | None = None) -> str:
    """Run a client program; its first error line becomes one MailerError line."""
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        detail = next((line for line in lines if "error" in line.lower()), lines[0] if lines else "")
        raise MailerError(f"{what}: {os.path.basename(args[0])} failed: {detail.strip()}")
    return done.stdout


def dump(db: Database, target: Path) -> None:
    """pg_dump *db* in the custom format to the new file *target*."""
    uri, env = _connection(db)
    _run([tool("pg_dump"), "--format=custom", "--file", str(target), "--dbname", uri], "backup", env)


def revision_of(path: Path) -> str:
    """The schema revision in the pg_dump archive *path*; InputError when it is not a mailer backup."""
    try:
        script = _run([tool("pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(path)],
                      f"restore {path}")
    except MailerError as exc:
        raise InputError(f"restore {path}: not a readable pg_dump archive ({exc})") from None
    found = _COPY.search(script)
    if found is None or not found.group(1).strip():
        raise InputError(f"restore {path}: a pg_dump archive but not a mailer backup (no alembic_version row)")
    return found.group(1).strip().splitlines()[0]


def _drop_live_schema(db: Database) -> str:
    """SQL dropping every table and enum type of the live database's default schema."""
    from sqlalchemy import inspect

    inspector = inspect(db.engine)
    tables = inspector.get_table_names()
    enums = [enum["name"] for enum in inspector.get_enums()]   # type: ignore[attr-defined]
    statements = []
    if tables:
        statements.append("DROP TABLE IF EXISTS " + ", ".join(f'"{t}"' for t in tables) + " CASCADE;")
    if enums:
        statements.append("DROP TYPE IF EXISTS " + ", ".join(f'"{e}"' for e in enums) + " CASCADE;")
    return "\n".join(statements) or "SELECT 1;"


def load(db: Database, archive: Path) -> None:
    """Replace the content of *db* with the pg_dump archive *archive*, in one transaction."""
    uri, env = _connection(db)
    with tempfile.TemporaryDirectory(prefix="mailer-restore-") as folder:   # mode 0700: it holds personal data
        script = Path(folder) / "restore.sql"
        _run([tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
              "--file", str(script), str(archive)], f"restore {archive}")
        drop = _drop_live_schema(db)
        db.dispose()
        _run([tool("psql"), "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1",
              "--dbname", uri, "--command", drop, "--file", str(script),
              "--command", "RESET search_path; DELETE FROM lease;"], f"restore {archive}", env)
