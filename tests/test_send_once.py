"""Never twice (issue 15): one issue goes to one list once unless --again, on every path, enforced by
the database (`send_list`'s unique key), on SQLite and PostgreSQL.

Paths: `mailer send`, `mailer schedule --at/--cron` (and --again), a plan firing, `schedule move`
and `refresh`, a recurring schedule's runs, resume; the migration's backfill and its downgrade.
The racing commands (subprocesses behind a held write lock) are in tests/test_send_race.py.
"""

from __future__ import annotations

import collections
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import MetaData, Table, func, inspect, select, text

from mailer.cli import cli
from mailer.config import Settings
from mailer.content.compose import compose_issue
from mailer.db import Database
from mailer.models import Schedule, ScheduleKind, ScheduleStatus, Send, SendList, SendStatus, utcnow
from mailer.scheduling.plans import schedule_cron, schedule_once
from mailer.scheduling.runs import execute
from mailer.sending import campaign, ledger
from tests.helpers import make_issue, wait_for
from tests.schedule_support import add_list, emls

EXAMPLE = "issues/example"
FUTURE = "2031-07-01 09:00"


@pytest.fixture
def sdb(db, db_settings):  # type: ignore[no-untyped-def]
    """A database with list `news` of 3 confirmed subscribers."""
    add_list(db, db_settings)
    return db


@pytest.fixture
def s(db_settings: Settings) -> Settings:
    return db_settings.replace(backend="file")


def _cli(settings: Settings, *args: str) -> Result:
    env = {"MAILER_ROOT": str(settings.root), "MAILER_DATABASE_URL": settings.database_url,
           "MAILER_SECRET_KEYS": ",".join(settings.secret_keys), "MAILER_HASH_KEY": settings.hash_key,
           "MAILER_BASE_URL": settings.base_url, "MAILER_BACKEND": "file"}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def _ok(settings: Settings, *args: str) -> Result:
    result = _cli(settings, *args)
    assert result.exit_code == 0, result.output
    return result


def _refused(settings: Settings, *args: str) -> str:
    """Run a command that must be refused: non-zero, exactly one `error:` line; that line."""
    result = _cli(settings, *args)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _copies(project: Path) -> collections.Counter:
    """How many messages each address got (file backend outbox)."""
    counter: collections.Counter = collections.Counter()
    for eml in emls(project):
        for line in eml.read_text(errors="replace").splitlines():
            if line.lower().startswith("to:"):
                counter[line.split(":", 1)[1].strip()] += 1
                break
    return counter


def _count(db: Database, model) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def _claims(db: Database) -> set[tuple[int, str, int, bool | None]]:
    """(send, occurrence, generation, held) of every claim row."""
    with db.session() as session:
        return {(r.send_id, r.occurrence, r.generation, r.held) for r in session.scalars(select(SendList))}


def _due_once(db: Database, settings: Settings, project: Path, **kw):  # type: ignore[no-untyped-def]
    at = (datetime.now(timezone.utc) + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    row = schedule_once(db, settings, project / "issues" / "example", ("news",), at, "UTC", **kw)
    return row, row.run_at + timedelta(milliseconds=10)


PEOPLE = {f"person{i}@example.org" for i in range(3)}


def test_schedule_of_a_sent_issue_is_refused_and_again_schedules_a_second_campaign(sdb, s, project):
    _ok(s, "send", EXAMPLE, "--list", "news", "--yes")
    assert _copies(project) == {p: 1 for p in PEOPLE}

    line = _refused(s, "schedule", EXAMPLE, "--list", "news", "--at", FUTURE)
    assert "issue 'example' was already sent to news (send #1): pass --again" in line
    assert "already sent to news" in _refused(s, "schedule", EXAMPLE, "--list", "news", "--cron", "0 9 * * FRI")
    assert _count(sdb, Schedule) == 0 and _count(sdb, Send) == 1

    row, due = _due_once(sdb, s, project, again=True)
    assert _claims(sdb) == {(1, "", 0, True), (row.send_id, "", 1, True)}
    assert execute(sdb, s, row.id, now=due).startswith(f"send {row.send_id} done")
    assert _copies(project) == {p: 2 for p in PEOPLE}       # the second campaign, asked for with --again


def test_a_scheduled_issue_is_refused_by_send_and_by_a_second_schedule_until_cancelled(sdb, s, project):
    _ok(s, "schedule", EXAMPLE, "--list", "news", "--at", FUTURE)
    with sdb.session() as session:
        row = session.scalars(select(Schedule)).one()
    line = _refused(s, "send", EXAMPLE, "--list", "news", "--yes")
    assert f"issue 'example' is already scheduled to news (send #{row.send_id}, see `mailer schedule list`)" in line
    assert "already scheduled to news" in _refused(s, "schedule", EXAMPLE, "--list", "news", "--at", "2031-08-01 09:00")
    assert "already scheduled" in _refused(s, "schedule", EXAMPLE, "--list", "news", "--cron", "0 9 * * FRI")

    _ok(s, "schedule", "refresh", str(row.id))          # the new snapshot takes the old one's claim
    with sdb.session() as session:
        fresh = session.get(Schedule, row.id).send_id
    assert _claims(sdb) == {(row.send_id, "", 0, None), (fresh, "", 0, True)}
    assert "already scheduled" in _refused(s, "send", EXAMPLE, "--list", "news", "--yes")

    _ok(s, "schedule", "cancel", str(row.id))           # cancelling releases the claim
    _ok(s, "send", EXAMPLE, "--list", "news", "--yes")
    assert _copies(project) == {p: 1 for p in PEOPLE} and _count(sdb, Schedule) == 1


def test_a_missed_plan_moved_after_a_hand_send_is_refused(sdb, s, project):
    row, due = _due_once(sdb, s, project)
    late = row.run_at + timedelta(minutes=s.schedule_grace_minutes, seconds=1)
    assert "missed" in execute(sdb, s, row.id, now=late)
    _ok(s, "send", EXAMPLE, "--list", "news", "--yes")           # a missed plan holds nothing
    hand = max(sid for sid, *_ in _claims(sdb))
    line = _refused(s, "schedule", "move", str(row.id), "--at", FUTURE)
    assert f"issue 'example' was already sent to news (send #{hand})" in line
    with sdb.session() as session:
        assert session.get(Schedule, row.id).status is ScheduleStatus.MISSED
        assert session.get(Send, row.send_id).status is SendStatus.MISSED
    assert _copies(project) == {p: 1 for p in PEOPLE}


def test_a_paused_send_resumes_without_a_new_claim_and_blocks_again(sdb, s, project):
    composed = compose_issue(s, project / "issues" / "example")
    send_id = campaign.start(sdb, composed, ["news"])
    ledger.set_send_status(sdb, send_id, SendStatus.PAUSED, "stopped by a signal")
    line = _refused(s, "send", EXAMPLE, "--list", "news", "--yes", "--again")
    assert f"already has send #{send_id} to news (paused): continue it with --resume" in line
    _ok(s, "send", EXAMPLE, "--resume", "--yes")
    assert _copies(project) == {p: 1 for p in PEOPLE}
    assert _claims(sdb) == {(send_id, "", 0, True)} and _count(sdb, Send) == 1


def test_a_recurring_schedule_sends_each_run_once_and_refuses_a_second_plan(sdb, s, project):
    folder = make_issue(project, "weekly-digest", {"a.md": "# Food bank\n\nOpen on Tuesday.\n"})
    row = schedule_cron(sdb, s, folder, ("news",), "0 9 * * FRI", "UTC", now=datetime(2026, 12, 1, tzinfo=timezone.utc))
    first = datetime(2026, 12, 4, 9, tzinfo=timezone.utc)
    assert "done" in execute(sdb, s, row.id, now=first)
    assert _copies(project) == {p: 1 for p in PEOPLE}

    # the same run triggered again (its next time put back, as a stale second daemon would see it)
    with sdb.session() as session:
        session.get(Schedule, row.id).next_run_at = first
    decision = execute(sdb, s, row.id, now=first)
    assert decision.startswith("not run: run of 2026-12-04 09:00:00 UTC refused: issue 'weekly-digest' was "
                               "already sent to news"), decision
    assert _copies(project) == {p: 1 for p in PEOPLE}
    with sdb.session() as session:
        fresh = session.get(Schedule, row.id)
        assert fresh.status is ScheduleStatus.SCHEDULED and "refused" in fresh.status_reason

    with sdb.session() as session:
        session.get(Schedule, row.id).next_run_at = first + timedelta(days=7)
    assert "done" in execute(sdb, s, row.id, now=first + timedelta(days=7))      # next week: sent again
    assert _copies(project) == {p: 2 for p in PEOPLE}
    assert {(occ, gen) for _, occ, gen, _ in _claims(sdb)} == {("2026-12-04T09:00:00Z", 0),
                                                               ("2026-12-11T09:00:00Z", 0)}

    line = _refused(s, "schedule", str(folder), "--list", "news", "--cron", "0 18 * * MON")
    assert f"issue 'weekly-digest' is already on recurring schedule {row.id} to news: pass --again" in line
    assert "recurring schedule" in _refused(s, "schedule", str(folder), "--list", "news", "--at", FUTURE)
    assert "recurring schedule" in _refused(s, "send", str(folder), "--list", "news", "--yes")
    assert _copies(project) == {p: 2 for p in PEOPLE}
    _ok(s, "schedule", str(folder), "--list", "news", "--cron", "0 18 * * MON", "--again")
    assert _count(sdb, Schedule) == 2


def test_a_claim_the_check_could_not_see_is_refused_by_the_database(sdb, s, project, db_url):
    """Writer 1 has made its send and claim but not committed; writer 2 checks (sees nothing on
    PostgreSQL, waits for the write lock on SQLite) and inserts: the unique key refuses it."""
    composed = compose_issue(s, project / "issues" / "example")
    outcome: list[object] = []

    def second() -> None:
        try:
            outcome.append(campaign.start(sdb, composed, ["news"]))
        except ledger.AlreadySent as exc:
            outcome.append(exc)

    with sdb.session() as session:
        first = ledger.create_send(session, composed, ["news"], SendStatus.SENDING).id
        session.flush()
        thread = threading.Thread(target=second)
        thread.start()
        if sdb.dialect == "postgresql":        # writer 2 waits on writer 1's claim row: past its check
            probe = Database(db_url)
            try:
                wait_for(lambda: _waiting_on_a_lock(probe), 20, "the second writer to wait on the claim")
            finally:
                probe.dispose()
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], ledger.AlreadySent), outcome
    assert f"already has send #{first} to news (sending)" in str(outcome[0])
    assert _count(sdb, Send) == 1 and _claims(sdb) == {(first, "", 0, True)}


def _waiting_on_a_lock(db: Database) -> bool:
    with db.engine.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND wait_event_type = 'Lock'")).scalar_one())


# --- the migration: backfill of existing sends, downgrade --------------------------------------------

def _legacy(db_url: str, settings: Settings, project: Path) -> tuple[Database, Settings]:
    """A database at revision 0004 (before send_list) with list news (3) and list actions (3)."""
    settings = settings.replace(database_url=db_url, backend="file")
    database = Database(db_url)
    database.upgrade("0004")
    _legacy_list(database, "news")
    _legacy_list(database, "actions")
    return database, settings


def _legacy_list(database: Database, slug: str, subscribers: int = 3) -> None:
    """A list and its confirmed subscribers written with the columns revision 0004 has: today's
    models know columns that later migrations add."""
    meta = MetaData()
    tables = {name: Table(name, meta, autoload_with=database.engine)
              for name in ("mailing_list", "subscriber", "subscription")}
    now = utcnow()
    with database.engine.begin() as conn:
        list_id = conn.execute(tables["mailing_list"].insert().values(
            slug=slug, name=slug.title(), description="", opt_in="double", created_at=now)).inserted_primary_key[0]
        for i in range(subscribers):
            email = f"{slug}{i}@example.org"
            found = conn.execute(select(tables["subscriber"].c.id).where(
                tables["subscriber"].c.email_key == email)).scalar()
            sid = found or conn.execute(tables["subscriber"].insert().values(
                uid=f"legacy{slug}{i}", email=email, email_key=email, name="", attributes={},
                created_at=now, updated_at=now)).inserted_primary_key[0]
            conn.execute(tables["subscription"].insert().values(
                subscriber_id=sid, list_id=list_id, status="confirmed", reason="admin", created_at=now,
                status_at=now, confirmed_at=now))


def _old_send(database: Database, settings: Settings, project: Path, status: SendStatus,
              lists: list[str]) -> int:
    """A send row as the code before 0005 wrote it (no claim), composed from the example issue."""
    c = compose_issue(settings, project / "issues" / "example")
    table = Table("send", MetaData(), autoload_with=database.engine)   # the columns of 0004
    now = utcnow()
    with database.engine.begin() as conn:
        return conn.execute(table.insert().values(
            uid=f"legacy{now.timestamp()}", issue_slug=c.slug, issue_path=str(c.path), subject=c.subject,
            preheader=c.preheader, html=c.html, text=c.text, archive_html=c.archive_html,
            content_hash=c.content_hash, list_slugs=lists, status=status.value, status_at=now, status_reason="",
            audience_frozen=False, created_at=now)).inserted_primary_key[0]


def test_upgrade_backfills_existing_sends_and_downgrade_to_0004_works(db_url, settings, project):
    database, s = _legacy(db_url, settings, project)
    try:
        done = _old_send(database, s, project, SendStatus.DONE, ["news"])
        again = _old_send(database, s, project, SendStatus.DONE, ["news"])            # an --again of old
        cancelled = _old_send(database, s, project, SendStatus.CANCELLED, ["news"])
        late_plan = _old_send(database, s, project, SendStatus.SCHEDULED, ["news", "actions"])
        paused = _old_send(database, s, project, SendStatus.PAUSED, ["actions"])
        database.upgrade()
        expected = {(done, "", 0, True), (again, "", 1, True), (cancelled, "", 0, None),
                    (late_plan, "", 0, None), (paused, "", 0, True)}
        assert _claims(database) == expected
        assert _count(database, SendList) == 6

        line = _refused(s, "send", EXAMPLE, "--list", "news", "--yes")
        assert f"was already sent to news (send #{done})" in line
        database.downgrade("0004")
        assert "send_list" not in inspect(database.engine).get_table_names()
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0004"
        assert _count(database, Send) == 5
        database.upgrade()
        assert _count(database, SendList) == 6
        _ok(s, "send", EXAMPLE, "--list", "news", "--yes", "--again")
        newest = max(sid for sid, *_ in _claims(database))
        assert (newest, "", 2, True) in _claims(database)
    finally:
        database.dispose()


def test_a_plan_made_after_a_hand_send_before_the_upgrade_does_not_resend_when_it_fires(db_url, settings,
                                                                                       project):
    """The bug of issue 15 left such plans in databases: after the upgrade the plan is refused when it
    fires, recorded as failed with the reason, and nobody gets a second copy."""
    database, s = _legacy(db_url, settings, project)
    try:
        hand = _old_send(database, s, project, SendStatus.DONE, ["news"])
        plan_send = _old_send(database, s, project, SendStatus.SCHEDULED, ["news"])
        run_at = utcnow() - timedelta(seconds=1)
        schedule = Table("schedule", MetaData(), autoload_with=database.engine)   # the columns of 0004
        with database.engine.begin() as conn:
            plan_id = conn.execute(schedule.insert().values(
                issue_path=str(project / "issues" / "example"), list_slugs=["news"], kind=ScheduleKind.ONCE.value,
                run_at=run_at, next_run_at=run_at, timezone="UTC", send_id=plan_send, cron="", status="scheduled",
                status_reason="", source_hash="", created_at=run_at, updated_at=run_at)).inserted_primary_key[0]
        database.upgrade()
        decision = execute(database, s, plan_id)
        assert decision.startswith(f"not run: refused: issue 'example' was already sent to news (send #{hand})")
        assert emls(project) == []
        with database.session() as session:
            assert session.get(Schedule, plan_id).status is ScheduleStatus.FAILED
            assert session.get(Send, plan_send).status is SendStatus.CANCELLED
        listing = _ok(s, "schedule", "list").output
        assert f"failed - refused: issue 'example' was already sent to news (send #{hand})" in listing
    finally:
        database.dispose()
