"""The schedule service and the run decision, in process, on SQLite and PostgreSQL (STANDARDS G1-G7)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from mailer.scheduling import daemon as scheduling
from mailer.cli import cli
from mailer.errors import ConfigError
from mailer.sending.ledger import claim_send
from mailer.locking import LockHeld, SingletonLock
from mailer.models import Delivery, DeliveryStatus, Schedule, ScheduleKind, ScheduleStatus, Send, SendStatus, utcnow
from mailer.scheduling.plans import schedule_cron, schedule_once
from mailer.scheduling.times import next_fire, parse_cron
from mailer.scheduling.runs import execute, guarded_execute, mark_missed
from tests.helpers import make_issue
from tests.schedule_support import add_list, emls

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def sdb(db, db_settings):  # type: ignore[no-untyped-def]
    """A database with list `news` of 3 confirmed subscribers; file backend into the project's outbox."""
    add_list(db, db_settings)
    return db


@pytest.fixture
def s(db_settings):  # type: ignore[no-untyped-def]
    return db_settings.replace(backend="file")


def _run_cli(settings, *args: str):  # type: ignore[no-untyped-def]
    env = {"MAILER_ROOT": str(settings.root), "MAILER_DATABASE_URL": settings.database_url,
           "MAILER_SECRET_KEYS": ",".join(settings.secret_keys), "MAILER_HASH_KEY": settings.hash_key,
           "MAILER_BASE_URL": settings.base_url}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def _count(db, model) -> int:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(model))


# --- time: zones, cron, daylight saving (G6) -------------------------------------------------------

def test_weekly_0130_london_across_october_change_runs_once_a_week_at_0130_local():
    """G6: a weekly Sunday 01:30 Europe/London neither shifts nor doubles when the clocks go back.

    On 2026-10-25 01:30 happens twice (BST, then GMT): exactly one run, the first.
    """
    runs, after, previous = [], datetime(2026, 10, 10, tzinfo=timezone.utc), None
    for _ in range(4):
        fire = next_fire("30 1 * * SUN", "Europe/London", after, previous=previous)
        runs.append(fire)
        previous, after = fire, fire + timedelta(microseconds=1)
    assert [r.isoformat() for r in runs] == [
        "2026-10-11T00:30:00+00:00", "2026-10-18T00:30:00+00:00",
        "2026-10-25T00:30:00+00:00",  # 01:30 BST; the second 01:30 (GMT) one hour later is not a run
        "2026-11-01T01:30:00+00:00"]
    assert {r.astimezone(LONDON).strftime("%a %H:%M") for r in runs} == {"Sun 01:30"}


def test_cron_weekday_numbers_are_crontab_numbers_not_apschedulers():
    """`0 9 * * 5` is Friday and 0 is Sunday, as in crontab (APScheduler 3 alone counts 0 as Monday)."""
    start = datetime(2026, 12, 1, tzinfo=timezone.utc)  # a Tuesday
    assert parse_cron("0 9 * * 5", LONDON).get_next_fire_time(None, start).strftime("%a") == "Fri"
    assert parse_cron("0 9 * * 0", LONDON).get_next_fire_time(None, start).strftime("%a") == "Sun"
    assert parse_cron("0 9 * * 1-5", LONDON).get_next_fire_time(None, start).strftime("%a") == "Tue"


# --- bad input: one line, non-zero exit, nothing scheduled ------------------------------------------

FUTURE = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%d 09:00")


@pytest.mark.parametrize("args, message", [
    (["--at", "next friday"], "--at: cannot read 'next friday' as a time"),
    (["--at", "2020-01-01 09:00"], "is in the past"),
    (["--at", "2027-03-28 01:30", "--tz", "Europe/London"], "does not exist in Europe/London"),
    (["--at", FUTURE, "--tz", "Mars/Olympus"], "--tz: unknown time zone 'Mars/Olympus'"),
    (["--cron", "0 9 * *"], "--cron: '0 9 * *' has 4 fields; expected 5"),
    (["--cron", "61 9 * * 5"], "--cron: invalid cron expression"),
    (["--at", FUTURE, "--list", "nope"], "unknown list 'nope'"),
    ([], "give exactly one of --at"),
])
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # input checks do not depend on the database
def test_bad_schedule_input_is_one_line_and_schedules_nothing(sdb, s, args, message):
    result = _run_cli(s, "schedule", "issues/example", *args)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert _count(sdb, Schedule) == 0 and _count(sdb, Send) == 0


def test_an_issue_that_fails_to_compose_is_not_scheduled(sdb, s, project):
    folder = make_issue(project, "broken", {"a.md": "# Hi\n\nSee [the minutes](minutes.pdf).\n"})
    result = _run_cli(s, "schedule", str(folder), "--at", FUTURE)
    assert result.exit_code != 0
    assert result.output.startswith("error: ") and "a.md: link 'minutes.pdf'" in result.output
    assert _count(sdb, Schedule) == 0 and _count(sdb, Send) == 0


# --- one-off: snapshot, list, out of date, refresh, move, cancel -------------------------------------

def test_one_off_lifecycle_snapshot_out_of_date_refresh_move_cancel(sdb, s, project):
    """What was previewed goes out; a changed report shows 'out of date' until refreshed."""
    result = _run_cli(s, "schedule", "issues/example", "--list", "news", "--at", "2031-07-01 09:00",
                      "--tz", "Europe/London")
    assert result.exit_code == 0, result.output
    assert "at 2031-07-01 09:00:00 BST (2031-07-01 08:00:00 UTC)" in result.output
    with sdb.session() as session:
        row = session.scalars(select(Schedule)).one()
        send = session.get(Send, row.send_id)
        assert (row.kind, row.status, send.status) == (ScheduleKind.ONCE, ScheduleStatus.SCHEDULED,
                                                       SendStatus.SCHEDULED)
        assert row.run_at == datetime(2031, 7, 1, 8, tzinfo=timezone.utc) and "bakery" in send.html.lower()
    listing = _run_cli(s, "schedule", "list").output
    assert f"{row.id}  example  lists=news  once 2031-07-01 09:00:00 BST (2031-07-01 08:00:00 UTC)  scheduled" \
        in listing and "out of date" not in listing

    report = project / "issues" / "example" / "reports" / "03-whats-on.md"
    report.write_text(report.read_text() + "\nLate addition: a quiz night on Friday.\n")
    assert "out of date" in _run_cli(s, "schedule", "list").output

    result = _run_cli(s, "schedule", "refresh", str(row.id))
    assert result.exit_code == 0, result.output
    assert "out of date" not in _run_cli(s, "schedule", "list").output
    with sdb.session() as session:
        fresh = session.get(Schedule, row.id)
        assert fresh.send_id != send.id and "quiz night" in session.get(Send, fresh.send_id).text
        assert session.get(Send, send.id).status is SendStatus.CANCELLED

    result = _run_cli(s, "schedule", "move", str(row.id), "--at", "2031-12-06 09:00")
    assert result.exit_code == 0 and "2031-12-06 09:00:00 GMT (2031-12-06 09:00:00 UTC)" in result.output
    result = _run_cli(s, "schedule", "cancel", str(row.id))
    assert result.exit_code == 0, result.output
    with sdb.session() as session:
        assert session.get(Schedule, row.id).status is ScheduleStatus.CANCELLED
        assert session.get(Send, fresh.send_id).status is SendStatus.CANCELLED
    assert "cancelled" in _run_cli(s, "schedule", "list").output
    assert _run_cli(s, "schedule", "cancel", "999").output.startswith("error: no schedule with id 999")


# --- the run decision: claim, grace, recurring ------------------------------------------------------

def _due_once(sdb, s, project, seconds: float = 1.0):  # type: ignore[no-untyped-def]
    at = (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")
    row = schedule_once(sdb, s, project / "issues" / "example", ("news",), at, "UTC")
    return row, row.run_at + timedelta(milliseconds=10)


def test_two_racing_triggers_give_one_send(sdb, s, project):
    """G3: two triggers of the same due schedule at once: one claims, the other does nothing."""
    row, due = _due_once(sdb, s, project)
    barrier, results = threading.Barrier(2), []

    def trigger() -> None:
        barrier.wait()
        results.append(execute(sdb, s, row.id, now=due))

    threads = [threading.Thread(target=trigger) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(r.startswith("send ") and "done" in r for r in results) == 1, results
    assert any(r.startswith("not run") for r in results), results
    assert len(emls(project)) == 3
    with sdb.session() as session:
        assert session.get(Schedule, row.id).status is ScheduleStatus.DONE
        assert session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.status == DeliveryStatus.SENT)) == 3
    assert not claim_send(sdb, row.send_id, SendStatus.SCHEDULED)


def test_past_the_grace_a_one_off_is_missed_and_nothing_is_sent(sdb, s, project):
    """G2: late only within the grace; past it the schedule and its send are `missed`."""
    row, due = _due_once(sdb, s, project)
    late = row.run_at + timedelta(minutes=s.schedule_grace_minutes, seconds=1)
    assert "missed" in execute(sdb, s, row.id, now=late)
    assert emls(project) == []
    with sdb.session() as session:
        assert session.get(Schedule, row.id).status is ScheduleStatus.MISSED
        assert session.get(Send, row.send_id).status is SendStatus.MISSED
    assert "missed - missed: due" in _run_cli(s, "schedule", "list").output


def test_recurring_composes_afresh_skips_an_empty_run_and_does_not_catch_up(sdb, s, project):
    """A weekly digest with a test clock: empty week skipped, each run composed from the folder as it is."""
    folder = make_issue(project, "weekly-digest", {})
    row = schedule_cron(sdb, s, folder, ("news",), "0 9 * * FRI", "Europe/London",
                        now=datetime(2026, 12, 1, tzinfo=timezone.utc))
    first = datetime(2026, 12, 4, 9, tzinfo=timezone.utc)
    assert row.next_run_at == first

    assert "has no reports" in execute(sdb, s, row.id, now=first)
    assert _count(sdb, Send) == 0 and emls(project) == []

    (folder / "reports" / "a.md").write_text("# Food bank\n\nOpen on Tuesday.\n")
    second = first + timedelta(days=7)
    assert "done" in execute(sdb, s, row.id, now=second + timedelta(seconds=5))
    (folder / "reports" / "b.md").write_text("# Rent strike\n\nMeeting on Thursday.\n")
    # three weeks of downtime, restarted 10 minutes after a run time (within grace): one run, not three
    fourth = second + timedelta(days=21)
    assert "done" in execute(sdb, s, row.id, now=fourth + timedelta(minutes=10))
    with sdb.session() as session:
        sends = list(session.scalars(select(Send).order_by(Send.id)))
        assert [("Rent strike" in x.html, "Food bank" in x.html) for x in sends] == [(False, True), (True, True)]
        fresh = session.get(Schedule, row.id)
        assert fresh.status is ScheduleStatus.SCHEDULED and fresh.next_run_at == fourth + timedelta(days=7)
    assert len(emls(project)) == 6
    # past the grace: the slot is skipped, logged in the row, nothing sent
    fifth = fourth + timedelta(days=7)
    assert mark_missed(sdb, s, now=fifth + timedelta(hours=2)) == [row.id]
    with sdb.session() as session:
        fresh = session.get(Schedule, row.id)
        assert fresh.next_run_at == fifth + timedelta(days=7) and fresh.status_reason.startswith("missed")
    assert _count(sdb, Send) == 2


def test_a_crashing_run_is_reported_and_marks_the_schedule_failed(sdb, s, project):
    folder = make_issue(project, "weekly-digest", {"a.md": "# Hi\n\nText.\n"})
    row = schedule_cron(sdb, s, folder, ("news",), "0 9 * * FRI", "UTC")
    (folder / "issue.toml").write_text("subject = [unclosed\n")
    with sdb.session() as session:
        session.get(Schedule, row.id).next_run_at = utcnow() - timedelta(seconds=1)
    reason = guarded_execute(sdb, s, row.id)
    assert reason.startswith("crashed: ComposeError") and "issue.toml: invalid TOML" in reason
    with sdb.session() as session:
        fresh = session.get(Schedule, row.id)
        assert fresh.status is ScheduleStatus.FAILED and "invalid TOML" in fresh.status_reason
    assert "failed - crashed: ComposeError" in _run_cli(s, "schedule", "list").output


# --- one scheduler per database, job callables ------------------------------------------------------

def test_second_scheduler_lock_on_the_same_database_is_refused_naming_the_holder(db):
    """G1: advisory lock on PostgreSQL, flock on SQLite; the lease names host and pid."""
    with SingletonLock(db) as first:
        with pytest.raises(LockHeld, match=r"^scheduler already running on \S+ pid \d+ since "
                                           r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$") as err:
            SingletonLock(db, wait_for_holder=0.5).acquire()
        assert f"pid {first.holder.rsplit(':', 1)[1]} " in str(err.value)
    with SingletonLock(db):
        pass


def test_a_job_callable_that_no_longer_imports_is_detected(monkeypatch):
    """G5: APScheduler would drop such a job silently; the daemon refuses to start instead."""
    scheduling.check_job_callables()
    monkeypatch.setattr(scheduling, "RUN_JOB", "mailer.scheduling.daemon:no_such_function")
    with pytest.raises(ConfigError, match="'mailer.scheduling.daemon:no_such_function' does not import"):
        scheduling.check_job_callables()
