"""`mailer schedule` tells the truth: `--at` reads a time alone and `tomorrow HH:MM`, and scheduling
warns when no scheduler would run the send (its heartbeat, or a recent `scheduler --once`)."""

from __future__ import annotations

import signal
import socket
import subprocess
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailer.cli import cli
from mailer.errors import InputError
from mailer.liveness import SCHEDULER, Heartbeat
from mailer.models import Lease, Schedule, Send, utcnow
from mailer.scheduling.times import parse_when
from tests.schedule_support import MAILER, Daemon, add_list, env_for

LONDON = ZoneInfo("Europe/London")
UTC = timezone.utc
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
WARNING = "warning: no scheduler is running on this database"


# --- --at: a time alone, tomorrow, a date -------------------------------------------------------------

@pytest.mark.parametrize("text, now, expected", [
    ("09:00", datetime(2026, 12, 3, 8, 0, tzinfo=UTC), datetime(2026, 12, 3, 9, 0, tzinfo=UTC)),   # still ahead today
    ("09:00", datetime(2026, 12, 3, 9, 0, tzinfo=UTC), datetime(2026, 12, 4, 9, 0, tzinfo=UTC)),   # now: the next one
    ("9:05:30", datetime(2026, 12, 3, 10, 0, tzinfo=UTC), datetime(2026, 12, 4, 9, 5, 30, tzinfo=UTC)),
    ("tomorrow 09:00", datetime(2026, 12, 3, 8, 0, tzinfo=UTC), datetime(2026, 12, 4, 9, 0, tzinfo=UTC)),
    ("Tomorrow  18:30", datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2027, 1, 1, 18, 30, tzinfo=UTC)),
    # summer time: 09:00 in London is 08:00 UTC
    ("09:00", datetime(2026, 7, 1, 7, 0, tzinfo=UTC), datetime(2026, 7, 1, 8, 0, tzinfo=UTC)),
    # "today" is London's: at 23:30 UTC on 30 June it is already 1 July in London
    ("tomorrow 09:00", datetime(2026, 6, 30, 23, 30, tzinfo=UTC), datetime(2026, 7, 2, 8, 0, tzinfo=UTC)),
    # 01:30 does not exist in London on 28 March 2027 (the clocks go forward): the next 01:30 is the 29th's
    ("01:30", datetime(2027, 3, 28, 0, 30, tzinfo=UTC), datetime(2027, 3, 29, 0, 30, tzinfo=UTC)),
    ("2027-01-05 09:00", datetime(2026, 12, 3, tzinfo=UTC), datetime(2027, 1, 5, 9, 0, tzinfo=UTC)),
])
def test_at_reads_a_time_alone_tomorrow_and_a_date_in_the_zone(text, now, expected):
    assert parse_when(text, LONDON, now=now) == expected


@pytest.mark.parametrize("text", ["25:00", "09:60", "9am", "tomorrow", "tomorrow 9", "next friday",
                                  "yesterday 09:00", "09:00 tomorrow", ""])
def test_an_unreadable_at_names_the_option_and_the_accepted_forms(text):
    with pytest.raises(InputError) as caught:
        parse_when(text, LONDON, now=datetime(2026, 12, 3, tzinfo=UTC))
    message = str(caught.value)
    assert message.startswith("--at: cannot read") and "\n" not in message
    assert "HH:MM" in message and "'tomorrow HH:MM'" in message and "'YYYY-MM-DD HH:MM'" in message


def test_tomorrow_at_a_time_the_clocks_skip_is_refused():
    with pytest.raises(InputError, match=r"--at: tomorrow 01:30 does not exist in Europe/London"):
        parse_when("tomorrow 01:30", LONDON, now=datetime(2027, 3, 27, 12, tzinfo=UTC))


# --- the CLI: schedules, and warns when no scheduler runs ---------------------------------------------

@pytest.fixture
def env(db, db_settings, project):  # type: ignore[no-untyped-def]
    add_list(db, db_settings)
    return env_for(project, db.url, MAILER_SCHEDULE_TIMEZONE="Europe/London")


def _schedule(env, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["schedule", "issues/example", "--list", "news", *args], env=env,
                              catch_exceptions=False)


def _schedules(db) -> list[Schedule]:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return list(session.scalars(select(Schedule).order_by(Schedule.id)))


def test_without_a_scheduler_it_schedules_and_warns_on_one_stderr_line(db, env):
    before = utcnow()
    result = _schedule(env, "--at", "tomorrow 09:00")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("scheduled ") and WARNING not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(WARNING) and "`mailer scheduler`" in lines[0], result.stderr
    [row] = _schedules(db)
    local = row.run_at.astimezone(LONDON)
    assert (local.date(), local.hour, local.minute) == ((before.astimezone(LONDON) + timedelta(days=1)).date(), 9, 0)


def test_a_bad_at_on_the_command_line_is_one_line_and_schedules_nothing(db, env):
    result = _schedule(env, "--at", "half past nine")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --at: cannot read 'half past nine' as a time; use HH:MM (the next such time), "
        "'tomorrow HH:MM' or 'YYYY-MM-DD HH:MM'"]
    with db.session() as session:
        assert session.scalars(select(Send)).first() is None
    assert _schedules(db) == []


def test_a_beating_scheduler_lease_silences_the_warning_a_stale_one_does_not(db, env):
    """Another host's scheduler counts while its lease beats (90 s); a lease left by a dead one does not."""
    beat = Heartbeat(db, "scheduler-host.example:4242", name=SCHEDULER).start()
    try:
        result = _schedule(env, "--at", "09:00")
        assert result.exit_code == 0 and result.stderr == "", result.output
    finally:
        beat.stop()
    now = utcnow()
    with db.session() as session:
        session.add(Lease(name=SCHEDULER, holder="scheduler-host.example:4242", acquired_at=now - timedelta(hours=1),
                          heartbeat_at=now - timedelta(minutes=2)))
    result = _schedule(env, "--at", "10:00")
    assert result.exit_code == 0 and result.stderr.startswith(WARNING)
    assert len(_schedules(db)) == 2


@sqlite_only
def test_the_daemon_beats_its_lease_and_a_killed_one_is_seen_dead(db, env, tmp_path):
    daemon = Daemon(env, log=tmp_path / "d.log")
    try:
        daemon.wait_log("jobs: sync")
        with db.session() as session:
            lease = session.get(Lease, SCHEDULER)
            assert lease is not None and lease.holder.endswith(f":{daemon.proc.pid}")
        result = _schedule(env, "--at", "09:00")
        assert result.exit_code == 0 and result.stderr == "", result.output
    finally:
        daemon.stop(signal.SIGKILL)
    with db.session() as session:
        assert session.get(Lease, SCHEDULER) is not None      # left behind by the killed daemon
    result = _schedule(env, "--at", "tomorrow 09:00")
    assert result.exit_code == 0 and result.stderr.startswith(WARNING)
    listing = CliRunner().invoke(cli, ["schedule", "list"], env=env).output
    assert f"scheduler: not running, last seen on {socket.gethostname()}:{daemon.proc.pid} at " in listing


@sqlite_only
def test_a_recent_scheduler_once_counts_as_a_running_scheduler(db, env):
    """`scheduler --once` from cron: its last run within schedule.grace_minutes counts."""
    assert _schedule(env, "--at", "09:00").stderr.startswith(WARNING)
    done = subprocess.run([MAILER, "scheduler", "--once"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = _schedule(env, "--at", "10:00")
    assert result.exit_code == 0 and result.stderr == "", result.output
    result = CliRunner().invoke(cli, ["schedule", "issues/example", "--list", "news", "--at", "11:00"],
                                env={**env, "MAILER_SCHEDULE_GRACE_MINUTES": "0.001"})
    assert result.exit_code == 0 and result.stderr.startswith(WARNING)
