"""A database that goes away during a send (issue 15, STANDARDS G7): one line, exit 3, resumable.

A real `mailer send` process sends through the fault SMTP server at a paced rate; mid-send
every connection to its PostgreSQL database is terminated (the server restarting, a failover).
The command says so in one `error:` line naming `--resume` and exits 3; `--resume` then
finishes the send, and the ledger and the server's copies agree: nobody got two.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text

from tests.test_faults import ISSUE, fault_server, new_mailer, tally  # noqa: F401  (fault_server: a fixture)
from tests.test_send_race import _env

N = 200


def _terminate_others(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return len(conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_database_gone_mid_send_is_one_line_exit_3_and_resumable_G7(project, fault_server, postgres):
    url = postgres.new_database()
    mailer, addresses = new_mailer(project, url, fault_server, N)
    with (project / "mailer.toml").open("a") as config:
        config.write("\n[rate]\nper_second = 50\n")
    command = [sys.executable, "-m", "mailer", "send", ISSUE, "--list", "news", "--yes", "--backend", "smtp"]
    proc = subprocess.Popen(command, cwd=project, env=_env(project), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while sum(fault_server.received.values()) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _terminate_others(url) >= 1
    _, err = proc.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert proc.returncode == 3, err
    assert len(lines) == 1 and lines[0].startswith("error: database error") and "--resume" in lines[0], err
    assert sum(fault_server.received.values()) < N                  # it really stopped mid-send

    resumed = subprocess.run([sys.executable, "-m", "mailer", "send", ISSUE, "--resume", "--yes",
                              "--backend", "smtp"], cwd=project, env=_env(project), capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    t = tally(mailer, addresses)
    assert not t.wrong, t.wrong[:5]
    assert t.duplicates == 0 and t.left == 0 and t.lost == 0
    assert t.sent + t.unknown == N and t.unknown <= 2               # at most the messages in flight
