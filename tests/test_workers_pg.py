"""Four `mailer worker` processes on one real PostgreSQL share a send of 5,000: exactly one copy each.

Workers claim batches with SELECT ... FOR UPDATE SKIP LOCKED and send over
SMTP to one aiosmtpd server, which counts the copies per recipient.
"""

from __future__ import annotations

import os
import re
import time
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import TEST_ENV, add_subscribers, composed_issue
from mailer.sending import ledger
from mailer.db import Database
from mailer.models import DeliveryStatus, Send, SendStatus
from tests.smtpserver import SMTPServer

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
N = 5000


def test_four_workers_5000_subscribers_exactly_one_copy_each(postgres, project: Path):
    url = postgres.new_database()
    db = Database(url)
    db.upgrade()
    emails = add_subscribers(db, "news", N)
    with db.session() as session:
        send_id = ledger.create_send(session, composed_issue(project / "issues" / "example"), ["news"]).id
    assert ledger.claim_send(db, send_id, SendStatus.DRAFT)
    server = SMTPServer().start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    env.update(TEST_ENV)
    env.update({"MAILER_ROOT": str(project), "MAILER_DATABASE_URL": url, "MAILER_BACKEND": "smtp",
                "MAILER_SMTP_HOST": server.host, "MAILER_SMTP_PORT": str(server.port),
                "MAILER_SMTP_SECURITY": "none", "MAILER_SMTP_CONNECTIONS": "1", "MAILER_BATCH_SIZE": "50"})
    started = time.monotonic()
    workers = [subprocess.Popen([sys.executable, "-m", "mailer", "worker", "--until-idle", "--poll", "0.2"],
                                env=env, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(4)]
    logs = []
    try:
        for proc in workers:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err.decode()
            logs.append(err.decode())
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
        server.stop()
    print(f"4 workers, {N} messages: {time.monotonic() - started:.1f} s")
    per_worker = [sum(int(n) for n in re.findall(r"send #\d+: (\d+) sent", log)) for log in logs]
    assert sum(per_worker) == N
    assert sum(1 for n in per_worker if n > 0) >= 2, per_worker       # the work really was shared

    copies = Counter(server.recipients())
    assert set(copies) == set(emails)
    assert set(copies.values()) == {1}
    with db.session() as session:
        counts = ledger.counts(session, send_id)
        assert counts[DeliveryStatus.SENT] == N and sum(counts.values()) == N
        assert session.get(Send, send_id).status is SendStatus.DONE
    db.dispose()
