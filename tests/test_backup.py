"""`mailer backup` and `mailer restore` for real: a backup taken in the middle of a running send (a
`mailer send` subprocess), restored after the send finished; files that are not backups, backups
from a newer schema and a restore that fails all leave the database as it was; PostgreSQL through
pg_dump, pg_restore and psql against the test server."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from alembic.script import ScriptDirectory

from mailer.backup import postgres as pgbackup
from mailer.db import Database, alembic_config
from mailer.models import Delivery, DeliveryStatus, Lease, MailingList, Send, SendStatus
from tests.helpers import add_subscribers, make_list, wait_for
from tests.schedule_support import MAILER, emls, env_for

AUDIENCE = 100
HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def mailer(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MAILER, *args], env=env, cwd=env["MAILER_ROOT"], capture_output=True, text=True,
                          timeout=timeout)


def one_error_line(done: subprocess.CompletedProcess[str], *parts: str) -> str:
    """The single `error:` line of a refused command (no traceback, non-zero exit)."""
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def digest(path: Path) -> str:
    """A hash of the database's content (its SQL dump: the file's bytes move when the WAL is checkpointed)."""
    with sqlite3.connect(path) as conn:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()


def list_slugs(db: Database) -> list[str]:
    with db.session() as session:
        return sorted(session.scalars(select(MailingList.slug)))


def delivery_counts(db: Database) -> dict[DeliveryStatus, int]:
    with db.session() as session:
        rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
        return {status: count for status, count in rows}


@pytest.fixture
def sqlite_db(project: Path):  # type: ignore[no-untyped-def]
    db = Database(f"sqlite:///{project}/subscribers/mailer.db")
    db.upgrade()
    yield db
    db.dispose()


@pytest.fixture
def env(project: Path, sqlite_db: Database) -> dict[str, str]:
    return env_for(project, sqlite_db.url)


# --- SQLite: the round trip while a send is running -----------------------------------------------------

def test_backup_mid_send_then_restore_after_it_finished_gives_the_snapshot_and_a_usable_db(
        project, sqlite_db, env):
    add_subscribers(sqlite_db, "news", AUDIENCE)
    sending = subprocess.Popen([MAILER, "send", "issues/example", "--list", "news", "--yes"],
                               env={**env, "MAILER_RATE_PER_SECOND": "25"}, cwd=project,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(emls(project)) >= 15 or sending.poll() is not None, 60, "15 messages out")
        backup = project / "mid-send.db"
        made = mailer(env, "backup", str(backup))
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith(f"backed up the sqlite database (schema {HEAD}) to {backup}")
        assert stat.S_IMODE(backup.stat().st_mode) == 0o600
        assert sending.poll() is None, "the send finished before the backup: too fast to test anything"

        # while the send runs, a restore is refused and changes nothing
        before = delivery_counts(sqlite_db)
        one_error_line(mailer(env, "restore", "--yes", str(backup)), "a send is running", "--force")
        assert sum(delivery_counts(sqlite_db).values()) == AUDIENCE
        assert delivery_counts(sqlite_db).get(DeliveryStatus.SENT, 0) >= before.get(DeliveryStatus.SENT, 0)
        out, err = sending.communicate(timeout=120)
        assert sending.returncode == 0, err
    finally:
        if sending.poll() is None:
            sending.kill()
            sending.wait()
    assert delivery_counts(sqlite_db) == {DeliveryStatus.SENT: AUDIENCE} and len(emls(project)) == AUDIENCE

    restored = mailer(env, "restore", "--yes", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert "restored" in restored.stdout

    # the database is the snapshot of the middle of the send, whole and consistent
    with sqlite3.connect(project / "subscribers" / "mailer.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    counts = delivery_counts(sqlite_db)
    assert sum(counts.values()) == AUDIENCE
    assert set(counts) <= {DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.QUEUED}
    assert 15 <= counts[DeliveryStatus.SENT] < AUDIENCE
    written = {int(re.search(r"-(\d+)\.eml$", p.name).group(1)) for p in emls(project)}
    with sqlite_db.session() as session:
        sent_ids = set(session.scalars(select(Delivery.id).where(Delivery.status == DeliveryStatus.SENT)))
        assert sent_ids <= written                    # every row the backup calls sent had gone out
        assert session.scalar(select(Send.status)) is SendStatus.SENDING
        assert session.scalars(select(Lease)).all() == []     # the backup's "who is running" is dropped

    # and usable: the interrupted send resumes to the end (what went out after the backup goes again:
    # the ledger of those minutes is what a restore gives up), and the database takes new rows
    resumed = mailer(env, "send", "issues/example", "--resume", "--yes")
    assert resumed.returncode == 0, resumed.stderr
    final = delivery_counts(sqlite_db)
    assert sum(final.values()) == AUDIENCE and set(final) <= {DeliveryStatus.SENT, DeliveryStatus.UNKNOWN}
    assert mailer(env, "lists", "add", "after", "After restore").returncode == 0
    assert "after" in list_slugs(sqlite_db)


# --- SQLite: files that are not backups, newer schemas, failures ---------------------------------------

def _not_a_mailer_db(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    return path


def _truncated_backup(project: Path, env: dict[str, str]) -> Path:
    full = project / "full.db"
    assert mailer(env, "backup", str(full)).returncode == 0
    cut = project / "cut.db"
    cut.write_bytes(full.read_bytes()[:12288])
    return cut


@pytest.mark.parametrize("make, message", [
    (lambda project, env: (project / "notes.txt").write_text("hello") and project / "notes.txt",
     "not a mailer backup (neither a SQLite database nor a pg_dump custom-format archive)"),
    (lambda project, env: (project / "empty.db").write_bytes(b"") or project / "empty.db", "not a mailer backup"),
    (lambda project, env: _not_a_mailer_db(project / "other.db"), "not a mailer backup (no alembic_version row)"),
    (_truncated_backup, "cut.db: "),
    (lambda project, env: project / "missing.db", "missing.db: no such file"),
])
def test_a_file_that_is_not_a_backup_is_refused_in_one_line_and_the_db_is_untouched(
        project, sqlite_db, env, make, message):
    make_list(sqlite_db, "news")
    live = project / "subscribers" / "mailer.db"
    bad = make(project, env)
    before = digest(live)
    line = one_error_line(mailer(env, "restore", "--yes", str(bad)), message)
    assert line.startswith("error: restore ")
    assert digest(live) == before and list_slugs(sqlite_db) == ["news"]


def test_a_backup_from_a_newer_schema_is_refused(project, sqlite_db, env):
    backup = project / "future.db"
    assert mailer(env, "backup", str(backup)).returncode == 0
    with sqlite3.connect(backup) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    make_list(sqlite_db, "news")
    before = digest(project / "subscribers" / "mailer.db")
    one_error_line(mailer(env, "restore", "--yes", str(backup)),
                   f"its schema (revision 0099_from_the_future) is newer than this mailer knows (newest {HEAD})",
                   "upgrade mailer first")
    assert digest(project / "subscribers" / "mailer.db") == before and list_slugs(sqlite_db) == ["news"]


def test_an_older_backup_is_brought_to_the_newest_schema_and_a_failing_one_changes_nothing(
        project, sqlite_db, env):
    make_list(sqlite_db, "old")
    sqlite_db.downgrade("0003")
    old = project / "old.db"
    made = mailer(env, "backup", str(old))
    assert made.returncode == 0 and "(schema 0003)" in made.stdout, made.stderr
    broken = project / "broken.db"
    broken.write_bytes(old.read_bytes())
    with sqlite3.connect(broken) as conn:            # migration 0004 drops web_hit: make it fail
        conn.execute("DROP TABLE web_hit")
    sqlite_db.upgrade()
    make_list(sqlite_db, "new")
    live = project / "subscribers" / "mailer.db"

    before = digest(live)
    failed = mailer(env, "restore", "--yes", str(broken))
    one_error_line(failed, "web_hit")
    assert digest(live) == before and list_slugs(sqlite_db) == ["new", "old"]
    assert [p.name for p in live.parent.iterdir() if ".restore-" in p.name] == []

    assert mailer(env, "restore", "--yes", str(old)).returncode == 0
    assert sqlite_db.is_current() and list_slugs(sqlite_db) == ["old"]


def test_restore_onto_a_new_machine_creates_the_database(project, sqlite_db, env, tmp_path):
    make_list(sqlite_db, "news")
    backup = tmp_path / "news.db"
    assert mailer(env, "backup", str(backup)).returncode == 0
    fresh = tmp_path / "fresh" / "subscribers" / "mailer.db"
    fresh_env = {**env, "MAILER_DATABASE_URL": f"sqlite:///{fresh}"}
    assert mailer(fresh_env, "restore", "--yes", str(backup)).returncode == 0
    assert list_slugs(Database(f"sqlite:///{fresh}")) == ["news"]


def test_restore_without_a_terminal_asks_for_yes(project, sqlite_db, env):
    backup = project / "b.db"
    assert mailer(env, "backup", str(backup)).returncode == 0
    one_error_line(subprocess.run([MAILER, "restore", str(backup)], env=env, cwd=project, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=60), "pass --yes")


# --- PostgreSQL: pg_dump, pg_restore, psql -------------------------------------------------------------

def _pg_tools_or_skip() -> None:
    try:
        for name in ("pg_dump", "pg_restore", "psql"):
            pgbackup.tool(name)
    except Exception as exc:  # noqa: BLE001 - a machine without the client programs
        pytest.skip(str(exc))


@pytest.mark.postgres
def test_postgresql_round_trip_and_refusals(postgres, project, tmp_path):
    _pg_tools_or_skip()
    db = Database(postgres.new_database())
    db.upgrade()
    env = env_for(project, db.url)
    add_subscribers(db, "news", 5)
    backup = tmp_path / "news.dump"
    made = mailer(env, "backup", str(backup))
    assert made.returncode == 0 and f"backed up the postgresql database (schema {HEAD})" in made.stdout, made.stderr
    assert backup.read_bytes().startswith(b"PGDMP") and stat.S_IMODE(backup.stat().st_mode) == 0o600

    make_list(db, "later")
    with db.session() as session:
        session.execute(text("DELETE FROM subscription"))
    assert mailer(env, "restore", "--yes", str(backup)).returncode == 0
    assert list_slugs(db) == ["news"] and db.is_current()
    with db.session() as session:
        assert session.execute(text("SELECT count(*) FROM subscription")).scalar() == 5
    assert mailer(env, "lists", "add", "after", "After").returncode == 0     # sequences restored too

    # a SQLite file, a non-backup, and an archive from a newer schema: refused, nothing changes
    sqlite_file = tmp_path / "sqlite.db"
    in_use = Database(f"sqlite:///{sqlite_file}")
    in_use.upgrade()
    one_error_line(mailer(env, "restore", "--yes", str(sqlite_file)), "a database in use (it has a -wal file)")
    in_use.dispose()
    one_error_line(mailer(env, "restore", "--yes", str(sqlite_file)), "a sqlite backup cannot be restored into "
                                                                       "this postgresql database")
    (tmp_path / "junk.dump").write_bytes(b"PGDMP" + b"\x00" * 200)
    one_error_line(mailer(env, "restore", "--yes", str(tmp_path / "junk.dump")), "not a readable pg_dump archive")
    future_db = Database(postgres.new_database())
    future_db.upgrade()
    with future_db.session() as session:
        session.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
    future = tmp_path / "future.dump"
    assert mailer(env_for(project, future_db.url), "backup", str(future)).returncode == 0
    one_error_line(mailer(env, "restore", "--yes", str(future)), "revision 0099_future) is newer")
    assert list_slugs(db) == ["after", "news"]
    future_db.dispose()
    db.dispose()


def test_force_restores_while_a_sender_beats(project, sqlite_db, env):
    """A sending process alive on this host (its `sender:` heartbeat, its pid running) blocks a restore;
    --force goes ahead."""
    from mailer.liveness import Heartbeat
    from mailer.locking import holder_id

    make_list(sqlite_db, "news")
    backup = project / "b.db"
    assert mailer(env, "backup", str(backup)).returncode == 0
    make_list(sqlite_db, "later")
    beat = Heartbeat(sqlite_db, holder_id()).start()
    try:
        one_error_line(mailer(env, "restore", "--yes", str(backup)), f"a send is running ({holder_id()})")
        assert list_slugs(sqlite_db) == ["later", "news"]
        forced = mailer(env, "restore", "--yes", "--force", str(backup))
        assert forced.returncode == 0, forced.stderr
        assert list_slugs(sqlite_db) == ["news"]
    finally:
        beat.stop()


@pytest.mark.postgres
def test_postgresql_a_restore_failing_midway_rolls_back_and_an_older_backup_is_upgraded(postgres, project,
                                                                                         tmp_path):
    """psql runs the drop of the live tables, the archive and the lease clean-up in one transaction: a
    statement failing at the very end (this archive has no lease table) leaves every live table as it was."""
    _pg_tools_or_skip()
    live = Database(postgres.new_database())
    live.upgrade()
    make_list(live, "live")
    env = env_for(project, live.url)

    odd = Database(postgres.new_database())
    odd.upgrade()
    make_list(odd, "from-dump")
    with odd.session() as session:
        session.execute(text("DROP TABLE lease"))
    broken = tmp_path / "no-lease.dump"
    assert mailer(env_for(project, odd.url), "backup", str(broken)).returncode == 0
    one_error_line(mailer(env, "restore", "--yes", str(broken)), "psql failed", 'relation "lease" does not exist')
    assert list_slugs(live) == ["live"] and live.is_current()
    with live.session() as session:
        assert session.execute(text("SELECT count(*) FROM lease")).scalar() == 0

    old = Database(postgres.new_database())
    old.upgrade()
    make_list(old, "old")
    old.downgrade("0003")
    older = tmp_path / "older.dump"
    made = mailer(env_for(project, old.url), "backup", str(older))
    assert made.returncode == 0 and "(schema 0003)" in made.stdout, made.stderr
    assert mailer(env, "restore", "--yes", str(older)).returncode == 0
    assert list_slugs(live) == ["old"] and live.is_current()
    for database in (live, odd, old):
        database.dispose()
