"""End to end in a real browser (Debian's Chromium via Playwright) against the app under waitress.

Sign up through the page, read the confirmation mail from the file backend's
outbox, open the link and press confirm (C2), send the example issue to the
list, follow its unsubscribe link and press the button (B5, B1): the database
says unsubscribed.
"""

from __future__ import annotations

import email
import re
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import select

from mailer.content.compose import compose_issue
from mailer.config import Settings
from mailer.db import Database
from mailer.sending.ledger import claim_send, create_send
from mailer.models import MailingList, OptIn, SendStatus, Subscriber, Subscription, SubscriptionStatus
from mailer.sending.loop import run_send
from mailer.web import create_app, stop_app
from mailer.signups.intake import process_intake
from tests.helpers import chromium, free_port
from tests.web_fixtures import body_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class LiveServer:
    """The app under waitress in a thread, on a free loopback port."""

    def __init__(self, settings: Settings, db: Database) -> None:
        from waitress.server import create_server

        self.app = create_app(settings, db, start_queue=True)
        self.server = create_server(self.app, host="127.0.0.1", port=settings.web_port, threads=4)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self.thread.join(5)
        stop_app(self.app)


@pytest.fixture
def browser_page() -> Iterator:  # type: ignore[type-arg]
    with chromium() as browser:
        yield browser.new_page()


@pytest.fixture
def live(settings: Settings, db: Database) -> Iterator[tuple[LiveServer, Settings, Database]]:
    port = free_port()
    settings = settings.replace(database_url=db.url, backend="file", outbox_dir="outbox",
                                base_url=f"http://127.0.0.1:{port}", web_port=port)
    with db.session() as session:
        session.add(MailingList(slug="news", name="Riverside News", opt_in=OptIn.DOUBLE))
    with LiveServer(settings, db) as server:
        yield server, settings, db


def wait_for_mail(outbox: Path, count: int, timeout: float = 15.0) -> list[email.message.Message]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(outbox.glob("*.eml")) if outbox.exists() else []
        if len(files) >= count:
            return [email.message_from_bytes(f.read_bytes()) for f in files]
        time.sleep(0.1)
    raise AssertionError(f"expected {count} mails in {outbox}")


def status(db: Database) -> SubscriptionStatus:
    with db.session() as session:
        return session.scalar(select(Subscription.status).join(Subscriber).where(
            Subscriber.email_key == "rosa@example.org"))


def status_once_applied(settings: Settings, db: Database, timeout: float = 15.0) -> SubscriptionStatus | None:
    """The status after the sign-up intake ran: here, or in the app's queue thread (they race)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process_intake(settings, db)
        found = status(db)
        if found is not None:
            return found
        time.sleep(0.1)
    return None


def test_signup_confirm_receive_unsubscribe_in_a_real_browser(live, browser_page) -> None:  # type: ignore[no-untyped-def]
    """C1, C2, C9, B5, B1 end to end; the pages work without any script."""
    server, settings, db = live
    page = browser_page
    page.goto(f"{settings.base_url}/subscribe/news")
    assert page.locator("html").get_attribute("lang") == "en"
    assert not page.is_checked("#consent")                      # C9
    page.fill("#email", "rosa@example.org")
    page.fill("#name", "Rosa")
    page.check("#consent")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "a mail is on its way" in page.content(), page.content()
    assert status_once_applied(settings, db) is SubscriptionStatus.PENDING

    outbox = settings.path(settings.outbox_dir)
    [confirmation] = wait_for_mail(outbox, 1)
    found = re.search(r"http://\S+/confirm/\S+", body_text(confirmation))
    assert found, confirmation.as_bytes()[:3000]
    link = found.group(0)
    page.goto(link)
    page.wait_for_selector("text=Confirm your subscription")
    assert status(db) is SubscriptionStatus.PENDING             # C2: the GET changed nothing
    page.click("text=Yes, subscribe me")
    page.wait_for_selector("text=you are now subscribed")
    assert status(db) is SubscriptionStatus.CONFIRMED

    composed = compose_issue(settings, settings.path("issues/example"))
    with db.session() as session:
        send_id = create_send(session, composed, ["news"]).id
    assert claim_send(db, send_id, SendStatus.DRAFT)
    run_send(db, settings, send_id)
    mails = wait_for_mail(outbox, 2)
    issue = [m for m in mails if m["List-Unsubscribe"]][0]
    assert issue["To"].endswith("<rosa@example.org>")
    unsubscribe = re.search(r"http://\S+/u/[^\s>\"]+", body_text(issue)).group(0)
    assert issue["List-Unsubscribe"] == f"<{unsubscribe}>"

    page.goto(unsubscribe)
    page.wait_for_selector("text=Press the button")
    assert status(db) is SubscriptionStatus.CONFIRMED           # B5: GET changes nothing
    page.click("button[type=submit]")
    page.wait_for_selector("text=You are unsubscribed")
    assert status(db) is SubscriptionStatus.UNSUBSCRIBED

    page.goto(f"{settings.base_url}/archive/")
    assert composed.subject in page.content()
