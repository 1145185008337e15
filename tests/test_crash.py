"""A real `mailer send` process killed with SIGKILL mid-send, then resumed (STANDARDS E5, G7).

The SMTP server (aiosmtpd) runs in this process; the sender is a subprocess.
After every kill the run is resumed with `mailer send ... --resume`; at the
end every subscriber has exactly one copy at the server, except rows the
ledger reports `unknown` (in flight at the kill), which have at most one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from tests.helpers import TEST_ENV, add_subscribers, composed_issue
from mailer.db import Database
from mailer.models import Delivery, DeliveryStatus
from tests.smtpserver import smtp_server  # noqa: F401

N = 150


def _env(project: Path, server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    env.update(TEST_ENV)
    env.update({
        "MAILER_ROOT": str(project), "MAILER_DATABASE_URL": f"sqlite:///{project}/subscribers/mailer.db",
        "MAILER_BACKEND": "smtp", "MAILER_SMTP_HOST": server.host, "MAILER_SMTP_PORT": str(server.port),
        "MAILER_SMTP_SECURITY": "none", "MAILER_SMTP_TIMEOUT": "10", "MAILER_RATE_PER_SECOND": "120",
        "MAILER_BATCH_SIZE": "10", "MAILER_BASE_URL": "https://news.example.org",
    })
    return env


def _start(project: Path, server, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mailer", "send", "issues/example", "--yes", *args],
                            cwd=project, env=_env(project, server), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sender never got there"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _status(db: Database, email: str) -> DeliveryStatus | None:
    with db.session() as session:
        return session.scalar(select(Delivery.status).where(Delivery.email == email))


def test_sigkill_at_several_points_then_resume_exactly_once_E5_G7(project, smtp_server):
    """SIGKILL after 15 messages, while a message is in flight, and after ~110; resume; one copy each."""
    db = Database(f"sqlite:///{project}/subscribers/mailer.db")
    db.upgrade()
    emails = add_subscribers(db, "news", N)
    count = lambda: len(smtp_server.messages)  # noqa: E731

    _kill_when(_start(project, smtp_server), lambda: count() >= 15)
    killed_at_1 = count()

    slow = emails[70]
    smtp_server.delay("EOD", 1.5, address=slow, times=1)       # this one is in flight when we kill
    proc = _start(project, smtp_server, "--resume")
    _kill_when(proc, lambda: _status(db, slow) is DeliveryStatus.SENDING)
    time.sleep(0.1)
    killed_at_2 = count()

    _kill_when(_start(project, smtp_server, "--resume"), lambda: count() >= 110)

    final = _start(project, smtp_server, "--resume")
    out, err = final.communicate(timeout=60)
    assert final.returncode == 0, err.decode()
    assert b"done" in out
    time.sleep(1.6)                                            # let the slow one land at the server (or not)

    with db.session() as session:
        rows = {d.email: d.status for d in session.scalars(select(Delivery))}
    copies = Counter(smtp_server.recipients())
    assert 15 <= killed_at_1 < killed_at_2 < 110
    assert set(rows) == set(emails)
    unknown = [e for e, s in rows.items() if s is DeliveryStatus.UNKNOWN]
    assert slow in unknown and len(unknown) <= 6      # at most one group (smtp.connections = 2) per kill
    for address, status in rows.items():
        if status is DeliveryStatus.UNKNOWN:
            assert copies[address] <= 1, address
        else:
            assert status is DeliveryStatus.SENT and copies[address] == 1, (address, status, copies[address])
    assert max(copies.values()) == 1
    db.dispose()


def test_worker_sigterm_finishes_in_flight_and_parks(project, smtp_server):
    """SIGTERM to `mailer worker`: exit 0, every message that reached the server is recorded sent,
    nothing is left `sending` or claimed; the next worker finishes the send with one copy each."""
    from mailer.sending import ledger
    from mailer.models import SendStatus

    db = Database(f"sqlite:///{project}/subscribers/mailer.db")
    db.upgrade()
    emails = add_subscribers(db, "news", 60)
    with db.session() as session:
        send_id = ledger.create_send(session, composed_issue(project / "issues" / "example"), ["news"]).id
    assert ledger.claim_send(db, send_id, SendStatus.DRAFT)
    env = _env(project, smtp_server)
    env["MAILER_RATE_PER_SECOND"] = "30"
    worker = subprocess.Popen([sys.executable, "-m", "mailer", "worker", "--poll", "0.2"], cwd=project, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while len(smtp_server.messages) < 10:
        assert worker.poll() is None and time.monotonic() < deadline, worker.communicate()
        time.sleep(0.005)
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=20)
    assert worker.returncode == 0, err.decode()
    assert "worker stopped" in err.decode()
    with db.session() as session:
        rows = list(session.scalars(select(Delivery)))
        assert ledger.counts(session, send_id)[DeliveryStatus.SENT] < 60
    sent = {d.email for d in rows if d.status is DeliveryStatus.SENT}
    assert sent == set(smtp_server.recipients())                       # recorded exactly what arrived
    assert {d.status for d in rows} <= {DeliveryStatus.SENT, DeliveryStatus.QUEUED}
    assert all(d.claimed_by == "" for d in rows)

    env["MAILER_RATE_PER_SECOND"] = "0"
    done = subprocess.run([sys.executable, "-m", "mailer", "worker", "--until-idle"], cwd=project, env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    copies = Counter(smtp_server.recipients())
    assert set(copies) == set(emails) and set(copies.values()) == {1}
    db.dispose()
