"""Atomic "never twice" (issue 15): one issue goes to one list once, whoever races for it.

Two `mailer send ISSUE --list news --yes` processes start while a third connection holds the
database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: LOCK TABLE send IN EXCLUSIVE MODE,
which lets both read and makes both wait to write). Once both wait, the lock is released.
Exactly one send may exist, each subscriber gets one copy at the server, and the loser exits
non-zero with one `error:` line. Two racing `mailer schedule` of one issue make one plan, and
`mailer schedule` of an issue already sent is refused too. (Before the rule lived in the
database: 2 sends and 60 of 60 subscribers with two copies, both commands exiting 0, on both.)
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
from sqlalchemy import create_engine, text

from tests.helpers import TEST_ENV
from tests.test_faults import ISSUE, fault_server, new_mailer  # noqa: F401  (fault_server: a fixture)

N = 60


def _cpu(pid: int) -> int:
    """utime + stime of *pid* in clock ticks (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def wait_until_blocked(procs: list[subprocess.Popen], least: float = 2.0, most: float = 20.0) -> None:
    """Hold on at least *least* seconds and until every process has used no CPU for 0.5 s
    (waiting on the lock) or ended; at most *most* seconds."""
    start = time.monotonic()
    last = {p.pid: (-1, start) for p in procs}
    while time.monotonic() - start < most:
        now = time.monotonic()
        idle = True
        for p in procs:
            cpu = _cpu(p.pid)
            before, since = last[p.pid]
            if cpu != before:
                last[p.pid] = (cpu, now)
                since = now
            idle = idle and (p.poll() is not None or now - since >= 0.5)
        if idle and now - start >= least:
            return
        time.sleep(0.05)


def hold_sqlite(url: str) -> Callable[[], None]:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30)
    conn.execute("BEGIN IMMEDIATE")

    def release() -> None:
        conn.execute("COMMIT")
        conn.close()
    return release


def hold_postgresql(url: str) -> Callable[[], None]:
    engine = create_engine(url)
    conn = engine.connect()
    conn.execute(text("LOCK TABLE send IN EXCLUSIVE MODE"))

    def release() -> None:
        conn.commit()
        conn.close()
        engine.dispose()
    return release


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    env.update(TEST_ENV)
    env["MAILER_ROOT"] = str(root)
    return env


def _scalar(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def race_db(request: pytest.FixtureRequest, project: Path) -> tuple[str, Callable[[str], Callable[[], None]]]:
    if request.param == "sqlite":
        return f"sqlite:///{project}/subscribers/mailer.db", hold_sqlite
    return request.getfixturevalue("postgres").new_database(), hold_postgresql


def test_two_sends_behind_a_write_lock_make_one_send_and_one_copy_each(race_db, project, fault_server):
    url, hold = race_db
    mailer, addresses = new_mailer(project, url, fault_server, N)
    release = hold(url)
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "mailer", "send", ISSUE, "--list", "news", "--yes",
                                   "--backend", "smtp"], cwd=project, env=_env(project),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        wait_until_blocked(procs)
    finally:
        release()
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in procs]

    sends = _scalar(url, "SELECT count(*) FROM send WHERE issue_slug = 'example'")
    copies = fault_server.received
    doubled = [a for a in addresses if copies[a] != 1]
    codes = sorted(code for code, _, _ in outcomes)
    assert sends == 1, f"{sends} sends of one issue to one list; exit codes {codes}"
    assert not doubled, f"{len(doubled)} of {N} subscribers did not get exactly one copy"
    assert codes[0] == 0 and codes[1] != 0, outcomes
    loser = next(err for code, _, err in outcomes if code != 0)
    lines = [line for line in loser.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), loser


def test_schedule_of_an_issue_already_sent_is_refused(project, fault_server):
    url = f"sqlite:///{project}/subscribers/mailer.db"
    mailer, addresses = new_mailer(project, url, fault_server, 5)
    mailer.ok("send", ISSUE, "--list", "news", "--yes", "--backend", "smtp")
    assert all(fault_server.received[a] == 1 for a in addresses)

    result = mailer.cli("schedule", ISSUE, "--list", "news", "--at", "2099-01-04 09:00")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code != 0, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and "already sent" in lines[0], result.stderr
    assert _scalar(url, "SELECT count(*) FROM schedule") == 0


def test_second_send_of_a_sent_issue_is_refused_without_again(project, fault_server):
    """The non-racing case holds today: one line, non-zero, nothing sent twice."""
    mailer, addresses = new_mailer(project, f"sqlite:///{project}/subscribers/mailer.db", fault_server, 5)
    mailer.ok("send", ISSUE, "--list", "news", "--yes", "--backend", "smtp")
    again = mailer.send()
    lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert again.exit_code != 0 and len(lines) == 1 and "--again" in lines[0], again.stderr
    assert all(fault_server.received[a] == 1 for a in addresses)


def test_two_schedules_behind_a_write_lock_make_one_plan(race_db, project, fault_server):
    """Two `mailer schedule` of one issue to one list, racing: one plan; the other refused in one line."""
    url, hold = race_db
    new_mailer(project, url, fault_server, 3)
    release = hold(url)
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "mailer", "schedule", ISSUE, "--list", "news", "--at",
                                   "2099-01-04 09:00"], cwd=project, env=_env(project), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        wait_until_blocked(procs)
    finally:
        release()
    outcomes = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in outcomes)
    assert _scalar(url, "SELECT count(*) FROM send WHERE issue_slug = 'example'") == 1, outcomes
    assert codes[0] == 0 and codes[1] != 0, outcomes
    loser = next(err for code, _, err in outcomes if code != 0)
    lines = [line for line in loser.splitlines() if line.strip()]
    assert len(lines) == 1 and "already scheduled to news" in lines[0], loser
    assert _scalar(url, "SELECT count(*) FROM schedule") == 1
