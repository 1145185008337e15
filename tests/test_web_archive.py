"""Archive and feed, the mail queue's failure handling, and `mailer serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailer.backends.base import DeliveryOutcome
from mailer.backends.memory import MemoryBackend
from mailer.cli import cli
from mailer.config import Settings
from mailer.db import Database
from mailer.models import MailingList, QueuedMail, QueueStatus, Send, SendStatus, SubscriptionStatus
from tests.helpers import free_port
from tests.web_fixtures import WebApp, web_app  # noqa: F401

ATOM = "{http://www.w3.org/2005/Atom}"


def add_send(app: WebApp, slug: str, status: SendStatus, days_ago: int, subject: str) -> None:
    with app.db.session() as session:
        session.add(Send(issue_slug=slug, issue_path=f"issues/{slug}", subject=subject, preheader="News",
                         html="<p>Hi __mailer_name__</p>", text="Hi", content_hash="x", status=status,
                         archive_html=f"<!doctype html><html><body><h1>{subject}</h1></body></html>",
                         started_at=datetime.now(timezone.utc) - timedelta(days=days_ago)))


def test_archive_lists_sent_issues_only_and_serves_web_version(web_app: WebApp) -> None:
    add_send(web_app, "2026-10", SendStatus.DONE, 30, "October <news> & more")
    add_send(web_app, "2026-11", SendStatus.SENDING, 1, "November news")
    add_send(web_app, "2026-12", SendStatus.DRAFT, 0, "Secret draft")
    index = web_app.client.get("/archive/")
    assert index.status_code == 200
    assert "November news" in index.text and "October &lt;news&gt; &amp; more" in index.text
    assert "Secret draft" not in index.text
    assert index.text.index("November") < index.text.index("October")
    issue = web_app.client.get("/archive/2026-11")
    assert issue.status_code == 200 and "<h1>November news</h1>" in issue.text
    assert "__mailer_" not in issue.text
    csp = issue.headers["Content-Security-Policy"]
    assert "script" not in csp and "frame-ancestors 'none'" in csp
    assert web_app.client.get("/archive/2026-12").status_code == 404
    assert web_app.client.get("/archive/nothing").status_code == 404


def test_atom_feed_is_valid_xml_with_sent_issues(web_app: WebApp) -> None:
    add_send(web_app, "2026-10", SendStatus.DONE, 30, "October <news> & more")
    add_send(web_app, "2026-12", SendStatus.DRAFT, 0, "Secret draft")
    for path in ("/archive/feed.xml", "/feed.xml"):
        response = web_app.client.get(path)
        assert response.status_code == 200 and response.mimetype == "application/atom+xml"
        root = ET.fromstring(response.data)
        entries = root.findall(f"{ATOM}entry")
        assert [e.findtext(f"{ATOM}title") for e in entries] == ["October <news> & more"]
        link = entries[0].find(f"{ATOM}link").get("href")
        assert link == "https://news.example.org/archive/2026-10"
        assert "<h1>" in entries[0].findtext(f"{ATOM}content")


def test_queue_retries_temporary_failures_and_gives_up_on_permanent(web_app: WebApp) -> None:
    MemoryBackend.outcomes["soft@example.org"] = (DeliveryOutcome.TEMPORARY, 451, "4.3.0 try later")
    MemoryBackend.outcomes["hard@example.org"] = (DeliveryOutcome.PERMANENT, 550, "5.1.1 no such user")
    web_app.sign_up("soft@example.org")
    web_app.sign_up("hard@example.org")
    report = web_app.deliver()
    assert (report.sent, report.retried, report.failed) == (0, 1, 1)
    with web_app.db.session() as session:
        rows = {r.last_error[:3]: r for r in session.scalars(select(QueuedMail))}
        assert rows["451"].status is QueueStatus.QUEUED and rows["451"].attempts == 1
        assert rows["451"].next_attempt_at > datetime.now(timezone.utc)
        assert rows["550"].status is QueueStatus.FAILED
    assert web_app.deliver().sent == 0          # not due yet
    del MemoryBackend.outcomes["soft@example.org"]
    with web_app.db.session() as session:
        for row in session.scalars(select(QueuedMail).where(QueuedMail.status == QueueStatus.QUEUED)):
            row.next_attempt_at = datetime.now(timezone.utc)
    assert web_app.deliver().sent == 1
    assert [m["To"] for m in web_app.outbox()] == ["soft@example.org"]


def test_queue_skips_mail_for_a_subscription_no_longer_pending(web_app: WebApp) -> None:
    web_app.sign_up("ulla@example.org")
    web_app.process_intake()
    from mailer.people.subscriptions import confirm
    from mailer.models import Subscription

    with web_app.db.session() as session:
        confirm(session, web_app.settings, session.scalar(select(Subscription)))
    report = web_app.deliver()
    assert (report.sent, report.failed) == (0, 1)
    assert web_app.outbox() == []


def test_queue_thread_of_the_app_sends_without_being_asked(web_app: WebApp) -> None:
    """The background thread (what `mailer serve` runs) picks the mail up after the request."""
    from mailer.web import create_app, stop_app

    app = create_app(web_app.settings, web_app.db, start_queue=True)
    try:
        client = WebApp(app, app.test_client(), web_app.settings, web_app.db)
        assert client.sign_up("vic@example.org").status_code == 200
        deadline = time.monotonic() + 10
        while not MemoryBackend.outbox and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop_app(app)
    assert [m["To"] for m in web_app.outbox()] == ["vic@example.org"]
    assert web_app.status("vic@example.org") is SubscriptionStatus.PENDING


def test_serve_help_documents_options() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--host", "--port", "--production", "--threads"):
        assert option in result.output


def test_serve_without_database_is_one_clear_line(tmp_path: Path) -> None:
    env = {"MAILER_SECRET_KEYS": "k", "MAILER_HASH_KEY": "h"}
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "serve", "--port", "1"], env=env)
    assert result.exit_code != 0
    assert result.output.startswith("error: ") and "mailer init" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_serve_production_answers_over_http(settings: Settings) -> None:
    """`mailer serve --production` (waitress) in a subprocess, settings from the environment."""
    db = Database(settings.resolved_database_url)
    db.upgrade()
    with db.session() as session:
        session.add(MailingList(slug="news", name="Riverside News"))
    db.dispose()
    port = free_port()
    env = {**os.environ, "MAILER_ROOT": str(settings.root), "MAILER_DATABASE_URL": settings.database_url,
           "MAILER_SECRET_KEYS": ",".join(settings.secret_keys), "MAILER_HASH_KEY": "test-hash-key",
           "MAILER_BACKEND": "file"}
    proc = subprocess.Popen([sys.executable, "-m", "mailer", "serve", "--production", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        body = b""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/subscribe/news", timeout=2) as r:
                    body = r.read()
                    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'")
                break
            except OSError:
                time.sleep(0.1)
        assert b"Subscribe to Riverside News" in body
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
