"""`mailer scheduler` as real processes with real time (STANDARDS G1, G2, G4, G7).

Each test runs the daemon as a subprocess against a database file (or a real
PostgreSQL), with the file backend, and counts the .eml files it wrote.
"""

from __future__ import annotations

import email
import re
import signal
import socket
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailer.cli import cli
from mailer.models import Schedule, ScheduleStatus, Send, SendStatus
from mailer.scheduling.plans import schedule_cron, schedule_once
from tests.helpers import make_issue, wait_for
from tests.schedule_support import MAILER, Daemon, add_list, emls, env_for

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _at(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")


def _status(db, schedule_id: int) -> ScheduleStatus:  # type: ignore[no-untyped-def]
    with db.session() as session:
        return session.get(Schedule, schedule_id).status


@pytest.fixture
def env(db, db_settings, project):  # type: ignore[no-untyped-def]
    add_list(db, db_settings)
    return env_for(project, db.url)


@sqlite_only
def test_send_scheduled_2s_ahead_while_the_daemon_runs_is_sent_once(db, db_settings, env, project, tmp_path):
    """G2: picked up without a restart (the sync job), sent at its time, exactly once."""
    daemon = Daemon(env, log=tmp_path / "d.log")
    try:
        daemon.wait_log("jobs: sync")
        row = schedule_once(db, db_settings, "issues/example", ("news",), _at(2), "UTC")
        wait_for(lambda: _status(db, row.id) is ScheduleStatus.DONE, 15, "the send")
        sent_at = datetime.now(timezone.utc)
        assert sent_at >= row.run_at
        time.sleep(1.5)  # three more syncs: still one send
        assert len(emls(project)) == 3
        listing = CliRunner().invoke(cli, ["schedule", "list"], env=env).output
        assert f"scheduler: running on {socket.gethostname()}:{daemon.proc.pid} since" in listing
        assert re.search(rf"^{row.id}  example  lists=news  once .*  done - sent as send {row.send_id}$",
                         listing, re.M), listing
    finally:
        assert daemon.stop() == 0
    log = daemon.log
    assert f"schedule {row.id}: planned for" in log and f"schedule {row.id}: sending send {row.send_id}" in log
    assert log.count(f"sending send {row.send_id}") == 1 and "scheduler stopped" in log
    assert {email.message_from_bytes(p.read_bytes())["To"] for p in emls(project)} == {
        f"person{i}@example.org" for i in range(3)}


@sqlite_only
def test_daemon_killed_before_the_time_and_restarted_within_grace_sends_once(db, db_settings, env, project,
                                                                             tmp_path):
    """G2: down across T, restarted within the grace: the send starts late, once."""
    # due 5 s ahead: the first daemon must be gone before the job could fire (it may run 1 s early)
    row = schedule_once(db, db_settings, "issues/example", ("news",), _at(5), "UTC")
    first = Daemon(env, log=tmp_path / "d1.log")
    first.wait_log(f"schedule {row.id}: planned")
    first.stop(signal.SIGKILL)
    assert datetime.now(timezone.utc) < row.run_at - timedelta(seconds=1), "machine too slow for this test"
    assert "sending send" not in first.log
    wait_for(lambda: datetime.now(timezone.utc) > row.run_at + timedelta(seconds=1), 10, "the due time")
    assert emls(project) == []
    second = Daemon(env, log=tmp_path / "d2.log")
    try:
        wait_for(lambda: _status(db, row.id) is ScheduleStatus.DONE, 15, "the late send")
        time.sleep(1)
    finally:
        assert second.stop() == 0
    assert len(emls(project)) == 3
    assert re.search(rf"schedule {row.id}: sending send {row.send_id} \(due .*, [1-9][\d.]* s late\)", second.log)


@sqlite_only
def test_daemon_restarted_after_grace_marks_missed_and_sends_nothing(db, db_settings, project, tmp_path):
    """G2: past the grace (0.02 min here) the schedule is `missed`, logged and listed; nothing sent."""
    add_list(db, db_settings)
    env = env_for(project, db.url, MAILER_SCHEDULE_GRACE_MINUTES="0.02")
    row = schedule_once(db, db_settings, "issues/example", ("news",), _at(1), "UTC")
    wait_for(lambda: datetime.now(timezone.utc) > row.run_at + timedelta(seconds=2), 10, "the grace to pass")
    daemon = Daemon(env, log=tmp_path / "d.log")
    try:
        daemon.wait_log(f"schedule {row.id}: missed: due")
        time.sleep(1)
    finally:
        assert daemon.stop() == 0
    assert emls(project) == []
    assert _status(db, row.id) is ScheduleStatus.MISSED
    with db.session() as session:
        assert session.get(Send, row.send_id).status is SendStatus.MISSED
    listing = CliRunner().invoke(cli, ["schedule", "list"], env=env).output
    assert re.search(rf"^{row.id}  example  lists=news  once .*  missed - missed: due", listing, re.M), listing


def test_two_daemons_started_at_once_one_refuses_naming_the_holder(db, env, tmp_path):
    """G1, on SQLite (flock) and a real PostgreSQL (advisory lock)."""
    daemons = [Daemon(env, log=tmp_path / f"d{i}.log") for i in range(2)]
    try:
        wait_for(lambda: any(d.proc.poll() is not None for d in daemons), 20, "one daemon to refuse")
        loser = next(d for d in daemons if d.proc.poll() is not None)
        winner = next(d for d in daemons if d is not loser)
        assert loser.proc.returncode == 4
        line = loser.log.strip().splitlines()[-1]
        assert re.fullmatch(rf"error: scheduler already running on \S+ pid {winner.proc.pid} since "
                            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", line), loser.log
        assert winner.proc.poll() is None
    finally:
        codes = [d.stop() for d in daemons]
    assert sorted(codes) == [0, 4]


@sqlite_only
def test_restarting_three_times_leaves_one_job_per_schedule(db, db_settings, env, project, tmp_path):
    """G4: explicit job ids with replace_existing: every start lists each schedule's job once."""
    once = schedule_once(db, db_settings, "issues/example", ("news",), "2031-07-01 09:00", "Europe/London")
    weekly = schedule_cron(db, db_settings, make_issue(project, "weekly-digest", {}), ("news",), "0 9 * * FRI",
                           "Europe/London")
    for run in range(3):
        daemon = Daemon(env, log=tmp_path / f"d{run}.log")
        try:
            log = daemon.wait_log("jobs: ")
            time.sleep(1.2)  # two syncs more
        finally:
            assert daemon.stop() == 0
        jobs = re.search(r"jobs: (.*)", log).group(1).split(", ")
        assert jobs == [f"schedule-{once.id}", f"schedule-{weekly.id}", "sync"]
        assert daemon.log.count("planned for") == 2
    assert emls(project) == []


@sqlite_only
def test_sigterm_parks_the_send_in_flight_and_a_restart_resumes_it_without_duplicates(db, db_settings, project,
                                                                                      tmp_path):
    """SIGTERM stops cleanly mid-send; the next start resumes from the ledger (G7): each address once."""
    add_list(db, db_settings, subscribers=120)
    env = env_for(project, db.url, MAILER_RATE_PER_SECOND="40")
    row = schedule_once(db, db_settings, "issues/example", ("news",), _at(1), "UTC")
    first = Daemon(env, log=tmp_path / "d1.log")
    try:
        wait_for(lambda: len(emls(project)) >= 10, 20, "the send to start")
    finally:
        started = time.monotonic()
        assert first.stop() == 0
    assert time.monotonic() - started < 5
    parked = len(emls(project))
    assert 10 <= parked < 120
    with db.session() as session:
        assert session.get(Send, row.send_id).status is SendStatus.SENDING
    assert _status(db, row.id) is ScheduleStatus.RUNNING
    second = Daemon(env, log=tmp_path / "d2.log")
    try:
        wait_for(lambda: _status(db, row.id) is ScheduleStatus.DONE, 25, "the resumed send")
    finally:
        assert second.stop() == 0
    recipients = [email.message_from_bytes(p.read_bytes())["To"] for p in emls(project)]
    assert len(recipients) == 120 and len(set(recipients)) == 120
    assert f"send {row.send_id}: interrupted or retries due; resuming" in second.log


@sqlite_only
def test_once_runs_what_is_due_and_exits(db, db_settings, env, project):
    row = schedule_once(db, db_settings, "issues/example", ("news",), _at(0.5), "UTC")
    wait_for(lambda: datetime.now(timezone.utc) > row.run_at, 5, "the due time")
    result = subprocess.run([MAILER, "scheduler", "--once"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ran 1 due schedule(s)" in result.stdout
    assert len(emls(project)) == 3 and _status(db, row.id) is ScheduleStatus.DONE
