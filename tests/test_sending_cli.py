"""`mailer send`, `mailer status`, `mailer worker` through click's CliRunner (SQLite, memory/file backends)."""

from __future__ import annotations

import email
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests.helpers import TEST_ENV, add_subscribers, composed_issue, free_port, make_issue, make_list
from mailer.sending import ledger
from mailer.backends.base import DeliveryOutcome
from mailer.backends.memory import MemoryBackend
from mailer.cli import cli
from mailer.db import Database
from mailer.models import Delivery, DeliveryStatus, Send, SendStatus
from mailer.locking import worker_lock
from mailer.sending.worker import run_worker
from tests.helpers import TEST_ENV
from tests.smtpserver import SMTPServer, tls_cert  # noqa: F401


@pytest.fixture
def app(project: Path, monkeypatch: pytest.MonkeyPatch):
    """A project with a migrated SQLite database, list `news` (12 subscribers), memory backend."""
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MAILER_BACKEND", "memory")
    monkeypatch.setenv("MAILER_BASE_URL", "https://news.example.org")
    db = Database(f"sqlite:///{project}/subscribers/mailer.db")
    db.upgrade()
    add_subscribers(db, "news", 12)
    MemoryBackend.reset()
    yield db
    MemoryBackend.reset()
    db.dispose()


def mailer(project: Path, *args: str, input: str | None = None):
    result = CliRunner().invoke(cli, ["--root", str(project), *args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_send_sends_once_and_refuses_a_second_campaign(project, app):
    """E5: every subscriber gets one message; a second send of the issue to the list needs --again."""
    r = mailer(project, "send", "issues/example", "--yes")
    assert r.exit_code == 0, r.stderr
    assert "send #1 done" in r.stdout and "12 sent now" in r.stdout
    assert len(MemoryBackend.outbox) == 12
    assert len({m.recipient for m in MemoryBackend.outbox}) == 12
    r = mailer(project, "send", "issues/example", "--yes")
    assert r.exit_code != 0
    assert "was already sent to news (send #1): pass --again" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = mailer(project, "send", "issues/example", "--yes", "--again")
    assert r.exit_code == 0 and len(MemoryBackend.outbox) == 24


def test_send_without_yes_and_no_tty_refuses(project, app):
    r = mailer(project, "send", "issues/example", input="y\n")
    assert r.exit_code == 2
    assert r.stderr == "error: stdin is not a terminal: pass --yes to confirm the send\n"
    with app.session() as session:
        assert session.scalar(select(func.count()).select_from(Send)) == 0
    assert MemoryBackend.outbox == []


def test_dry_run_counts_and_sends_nothing(project, app):
    r = mailer(project, "send", "issues/example", "--list", "news", "--dry-run")
    assert r.exit_code == 0
    assert "news: 12 confirmed" in r.stdout and "to 12 subscriber(s)" in r.stdout
    assert "user0@example.net" in r.stdout and "... and 2 more" in r.stdout
    assert MemoryBackend.outbox == []
    with app.session() as session:
        assert session.scalar(select(func.count()).select_from(Send)) == 0


def test_to_is_a_test_send_not_recorded(project, app):
    r = mailer(project, "send", "issues/example", "--to", "editor@example.org")
    assert r.exit_code == 0, r.stderr
    assert [m.recipient for m in MemoryBackend.outbox] == ["editor@example.org"]
    msg = email.message_from_bytes(MemoryBackend.outbox[0].data)
    assert msg["To"] == "editor@example.org" and "bakery strike" in msg["Subject"]
    with app.session() as session:
        assert session.scalar(select(func.count()).select_from(Send)) == 0


@pytest.mark.parametrize("args, message", [
    (["--list", "nope"], "error: unknown list 'nope' (see `mailer lists`)\n"),
    (["--to", "not an address"], "error: invalid email address"),
])
def test_bad_input_one_line(project, app, args, message):
    r = mailer(project, "send", "issues/example", "--yes", *args)
    assert r.exit_code == 2 and r.stderr.startswith(message) and r.stderr.count("\n") == 1
    assert MemoryBackend.outbox == []


def test_no_confirmed_subscribers_is_refused(project, app):
    make_list(app, "empty")
    r = mailer(project, "send", "issues/example", "--yes", "--list", "empty")
    assert r.exit_code == 2 and r.stderr == "error: no confirmed subscribers in empty: nothing to send\n"


def test_issue_that_fails_to_compose(project, app):
    (project / "issues" / "example" / "issue.toml").write_text("subject = [broken\n")
    r = mailer(project, "send", "issues/example", "--yes")
    assert r.exit_code == 2 and r.stderr.startswith("error: ") and "issue.toml" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_smtp_server_pauses_resumably(project, app, monkeypatch):
    """An unreachable SMTP server: one line, exit 3, the send paused and every row still queued."""

    monkeypatch.setenv("MAILER_BACKEND", "smtp")
    monkeypatch.setenv("MAILER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("MAILER_SMTP_PORT", str(free_port()))
    monkeypatch.setenv("MAILER_SMTP_SECURITY", "none")
    monkeypatch.setenv("MAILER_SMTP_TIMEOUT", "2")
    r = mailer(project, "send", "issues/example", "--yes")
    assert r.exit_code == 3 and r.stderr.startswith("error: SMTP 127.0.0.1:") and r.stderr.count("\n") == 1
    with app.session() as session:
        send = session.scalars(select(Send)).one()
        assert send.status is SendStatus.PAUSED and "delivery stopped" in send.status_reason
        assert ledger.counts(session, send.id)[DeliveryStatus.QUEUED] == 12
    monkeypatch.setenv("MAILER_BACKEND", "memory")
    r = mailer(project, "send", "issues/example", "--resume", "--yes")
    assert r.exit_code == 0, r.stderr
    assert "done" in r.stdout and len(MemoryBackend.outbox) == 12


def test_status_lists_counts_and_failures_and_retry_failed(project, app):
    """E4 through the CLI: status shows deferred and failed rows; --retry-failed retries the deferred."""
    MemoryBackend.outcomes["user3@example.net"] = (DeliveryOutcome.PERMANENT, 550, "5.1.1 <user3@example.net> unknown")
    MemoryBackend.outcomes["user4@example.net"] = (DeliveryOutcome.TEMPORARY, 450, "4.2.0 greylisted")
    r = mailer(project, "send", "issues/example", "--yes")
    assert r.exit_code == 0
    assert "10 sent, 1 deferred, 1 failed" in r.stdout and "1 hard bounce(s)" in r.stdout
    r = mailer(project, "status", "issues/example")
    assert r.exit_code == 0
    assert "send #1 to news: sending" in r.stdout
    assert "sent 10" in r.stdout and "deferred 1" in r.stdout and "failed 1" in r.stdout
    assert "user3@example.net" in r.stdout and "5.1.1" in r.stdout
    MemoryBackend.outcomes.clear()
    r = mailer(project, "send", "issues/example", "--retry-failed", "--yes")
    assert r.exit_code == 0, r.stderr
    assert "1 row(s) queued again" in r.stdout and "send #1 done" in r.stdout
    assert sorted(m.recipient for m in MemoryBackend.outbox).count("user4@example.net") == 1
    assert "user3@example.net" not in {m.recipient for m in MemoryBackend.outbox}


def test_status_of_unsent_issue(project, app):
    r = mailer(project, "status", "issues/example")
    assert r.exit_code == 0 and r.stdout == "example: not sent yet\n"


def test_file_backend_writes_one_eml_per_subscriber(project, app, monkeypatch):
    monkeypatch.setenv("MAILER_BACKEND", "file")
    r = mailer(project, "send", "issues/example", "--yes")
    assert r.exit_code == 0, r.stderr
    assert f"messages written to {project / 'outbox'}/" in r.stdout
    files = sorted((project / "outbox").rglob("*.eml"))
    assert len(files) == 12
    tos = {email.message_from_bytes(f.read_bytes())["To"] for f in files}
    assert len(tos) == 12


def test_dev_redirect_sends_everything_to_one_address(project, app, monkeypatch):
    monkeypatch.setenv("MAILER_DEV_REDIRECT", "dev@example.org")
    r = mailer(project, "send", "issues/example", "--yes")
    assert r.exit_code == 0
    assert {m.recipient for m in MemoryBackend.outbox} == {"dev@example.org"} and len(MemoryBackend.outbox) == 12
    parsed = [email.message_from_bytes(m.data) for m in MemoryBackend.outbox]
    tos = {p["To"] for p in parsed}
    assert len(tos) == 12 and not any("dev@example.org" in to for to in tos)   # To still shows the subscriber
    assert all(len(p.get_all("To")) == 1 and not p.defects for p in parsed)
    bodies = {p.get_payload()[0].get_payload(decode=True).decode() for p in parsed}
    assert len(bodies) == 12                             # each still rendered for its real recipient


def test_worker_sends_due_sends_and_a_second_sqlite_worker_is_refused(project, app):
    """On SQLite one worker: a second exits with a clear line; the first sends what is due."""
    from mailer.config import load_settings

    settings = load_settings(project)
    with app.session() as session:
        send_id = ledger.create_send(session, composed_issue(project / "issues" / "example"), ["news"]).id
    assert ledger.claim_send(app, send_id, SendStatus.DRAFT)
    with worker_lock(app):
        r = mailer(project, "worker", "--until-idle")
        assert r.exit_code == 1
        assert "another `mailer worker`" in r.stderr and "use PostgreSQL to run several" in r.stderr
    r = mailer(project, "worker", "--until-idle")
    assert r.exit_code == 0, r.stderr
    assert "send #1: 12 sent" in r.stderr
    assert len(MemoryBackend.outbox) == 12
    stop = threading.Event()
    stop.set()
    assert run_worker(app, settings, stop=stop) == []


@pytest.mark.parametrize("case", ["untrusted certificate", "wrong password"])
def test_tls_failure_and_wrong_credentials_one_line_resumable(project, app, monkeypatch, tls_cert, case):
    """D4 / bad input: a certificate we do not trust, or refused credentials: one line, exit 3,
    the send paused with every row still queued (resumable), nothing delivered."""
    server = SMTPServer(tls_cert=tls_cert, credentials=("editor", "right-password")).start()
    try:
        for key, value in {"MAILER_BACKEND": "smtp", "MAILER_SMTP_HOST": "localhost",
                           "MAILER_SMTP_PORT": str(server.port), "MAILER_SMTP_SECURITY": "starttls",
                           "MAILER_SMTP_TIMEOUT": "5", "MAILER_SMTP_USERNAME": "editor",
                           "MAILER_SMTP_PASSWORD": "wrong-password"}.items():
            monkeypatch.setenv(key, value)
        if case == "wrong password":
            monkeypatch.setenv("MAILER_SMTP_CA_FILE", str(tls_cert[0]))
        r = mailer(project, "send", "issues/example", "--yes")
    finally:
        server.stop()
    assert r.exit_code == 3, r.stderr
    assert r.stderr.startswith("error: SMTP localhost:") and r.stderr.count("\n") == 1
    words = ("certificate",) if case == "untrusted certificate" else ("credentials", "auth")
    assert any(word in r.stderr.lower() for word in words)
    assert server.messages == []
    with app.session() as session:
        send = session.scalars(select(Send)).one()
        assert send.status is SendStatus.PAUSED
        assert ledger.counts(session, send.id)[DeliveryStatus.QUEUED] == 12


def test_resume_refused_while_another_live_process_sends(project, app):
    """G7: --resume does not take over a send whose rows a live process holds; it does once that one died."""
    import socket
    import subprocess

    from sqlalchemy import update

    MemoryBackend.outcomes["user5@example.net"] = (DeliveryOutcome.POLICY, 554, "5.7.1 policy")
    assert mailer(project, "send", "issues/example", "--yes").exit_code == 1      # paused at user5
    other = subprocess.Popen(["sleep", "30"])
    try:
        with app.engine.begin() as conn:
            conn.execute(update(Delivery).where(Delivery.email == "user5@example.net")
                         .values(status="sending", claimed_by=f"{socket.gethostname()}:{other.pid}"))
        MemoryBackend.outcomes.clear()
        r = mailer(project, "send", "issues/example", "--resume", "--yes")
        assert r.exit_code == 2 and "is being sent right now by" in r.stderr and str(other.pid) in r.stderr
    finally:
        other.kill()
        other.wait()
    r = mailer(project, "send", "issues/example", "--resume", "--yes")
    assert r.exit_code == 0, r.stderr
    assert "1 message(s) were in flight when the last run died" in r.stdout
    with app.session() as session:
        counts = ledger.counts(session, 1)
    assert counts[DeliveryStatus.UNKNOWN] == 1 and counts[DeliveryStatus.SENT] == 11
    assert "user5@example.net" not in {m.recipient for m in MemoryBackend.outbox}


def test_send_repeats_every_compose_warning(project, app):
    make_issue(project, "untitled", {"04-untitled.txt": "We met at the hall and agreed to march on Saturday.\n"})
    r = mailer(project, "send", "issues/untitled", "--list", "news", "--dry-run")
    assert r.exit_code == 0
    assert "warning: 04-untitled.txt: no title; using the first sentence, 'We met at the hall and agreed " \
           "to march on Saturday'" in r.stderr
