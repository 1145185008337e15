"""`web.background_thread = false`: the web process only stores sign-ups; `mailer worker` applies them (C1)."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from mailer.models import IntakeStatus, QueuedMail, QueueStatus, SignupIntake, Subscriber, SubscriptionStatus
from mailer.web import make_wsgi_app
from tests.helpers import TEST_ENV
from tests.web_fixtures import WebApp, body_text, web_app  # noqa: F401


def test_without_the_thread_the_worker_applies_the_sign_up_and_sends_one_mail(
        web_app: WebApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """The production entry point with the thread off stores the row and nothing else;
    `mailer worker --until-idle` (a real process) subscribes and writes exactly one confirmation mail."""
    root = web_app.settings.root
    env = {**TEST_ENV, "MAILER_ROOT": str(root), "MAILER_DATABASE_URL": web_app.db.url,
           "MAILER_BACKEND": "file", "MAILER_BASE_URL": web_app.settings.base_url,
           "MAILER_WEB_BACKGROUND_THREAD": "false"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    app = make_wsgi_app()
    web = WebApp(app, app.test_client(), web_app.settings, web_app.db)
    assert web.sign_up("ada@example.org", name="Ada").status_code == 200
    time.sleep(0.5)   # the app's own thread would have applied it by now (a request wakes it)
    assert web.count(Subscriber) == 0 and web.queued() == 0
    with web.db.session() as session:
        assert session.scalars(select(SignupIntake.status)).all() == [IntakeStatus.NEW]
    outbox = root / "outbox"
    assert not outbox.exists() or list(outbox.glob("*.eml")) == []

    def worker() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mailer", "worker", "--until-idle"],
                              env={**os.environ, **env}, capture_output=True, text=True, timeout=60)

    result = worker()
    assert result.returncode == 0, result.stderr
    assert "sign-ups: 1 applied; confirmation mails: 1 sent" in result.stderr
    assert web.status("ada@example.org") is SubscriptionStatus.PENDING
    mails = [email.message_from_bytes(p.read_bytes()) for p in outbox.glob("*.eml")]
    assert [m["To"] for m in mails] == ["Ada <ada@example.org>"]
    assert "https://news.example.org/confirm/" in body_text(mails[0])
    with web.db.session() as session:
        assert session.scalars(select(QueuedMail.status)).all() == [QueueStatus.SENT]
        assert session.scalars(select(SignupIntake.status)).all() == [IntakeStatus.DONE]
    result = worker()   # nothing left: a second run sends nothing again
    assert result.returncode == 0, result.stderr
    assert len(list(outbox.glob("*.eml"))) == 1
