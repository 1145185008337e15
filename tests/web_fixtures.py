"""Fixtures of the web tests: the app on a migrated database (SQLite and PostgreSQL), helpers."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message
from typing import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from mailer.backends.memory import MemoryBackend
from mailer.config import Settings
from mailer.db import Database
from mailer.models import MailingList, OptIn, QueuedMail, Subscriber, Subscription, SubscriptionStatus
from mailer.web import create_app
from mailer.signups.intake import IntakeReport, process_intake
from mailer.signups.confirmations import QueueReport, process_queue

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
URL_RE = re.compile(r"https?://[^\s<>\"')]+")


@dataclass
class WebApp:
    app: Flask
    client: FlaskClient
    settings: Settings
    db: Database

    def form_token(self, path: str = "/subscribe/news") -> str:
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        return TOKEN_RE.search(page.text).group(1)

    def sign_up(self, email_addr: str, name: str = "", slug: str = "news", consent: bool = True,
                headers: dict | None = None, **extra: str):  # type: ignore[no-untyped-def]
        data = {"csrf_token": self.form_token(f"/subscribe/{slug}"), "email": email_addr, "name": name, **extra}
        if consent:
            data["consent"] = "yes"
        return self.client.post(f"/subscribe/{slug}", data=data, headers=headers or {})

    @property
    def current_settings(self) -> Settings:
        """The settings the app runs with now (tests replace them on the app)."""
        return self.app.extensions["mailer"].settings

    def process_intake(self) -> IntakeReport:
        """Apply the received sign-ups, as the app's background thread does."""
        return process_intake(self.current_settings, self.db)

    def deliver(self) -> QueueReport:
        """Apply received sign-ups, then run the mail queue, as the app's background thread does."""
        self.process_intake()
        return process_queue(self.current_settings, self.db)

    def outbox(self) -> list[Message]:
        return [email.message_from_bytes(m.data) for m in MemoryBackend.outbox]

    def status(self, email_addr: str, slug: str = "news") -> SubscriptionStatus | None:
        with self.db.session() as session:
            return session.scalar(select(Subscription.status).join(Subscriber).join(MailingList).where(
                Subscriber.email_key == email_addr.casefold(), MailingList.slug == slug))

    def count(self, model: type) -> int:
        with self.db.session() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    def queued(self) -> int:
        return self.count(QueuedMail)


def body_text(msg: Message) -> str:
    """All text of a message: its parts decoded."""
    parts = msg.walk() if msg.is_multipart() else [msg]
    return "\n".join(p.get_payload(decode=True).decode() for p in parts if not p.is_multipart())


def urls_in(msg: Message) -> list[str]:
    found = URL_RE.findall(body_text(msg))
    for header in ("List-Unsubscribe",):
        found += re.findall(r"<(https?://[^>]+)>", msg.get(header, ""))
    return sorted(set(u.rstrip(".,;") for u in found))


def path_of(url: str, settings: Settings) -> str:
    assert url.startswith(settings.base_url), url
    return url[len(settings.base_url.rstrip("/")):]


@pytest.fixture
def web_app(db: Database, settings: Settings) -> Iterator[WebApp]:
    """The app on the `db` fixture (both databases), memory backend, lists `news` (double opt-in)
    and `bulletin` (single opt-in)."""
    settings = settings.replace(database_url=db.url, backend="memory")
    with db.session() as session:
        session.add(MailingList(slug="news", name="Riverside News", opt_in=OptIn.DOUBLE))
        session.add(MailingList(slug="bulletin", name="Action Bulletin", opt_in=OptIn.SINGLE))
    MemoryBackend.reset()
    app = create_app(settings, db)
    yield WebApp(app, app.test_client(), settings, db)
    MemoryBackend.reset()
