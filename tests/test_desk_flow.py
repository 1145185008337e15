"""The whole editor's flow on the desk, in Chromium against a live server and a running scheduler.

An editor logs in with a password and a TOTP code, creates an issue, pastes a report, uploads an
image, previews, sends a test to themselves, schedules the issue a minute ahead, watches a real
`mailer scheduler` process send it, opens the delivery report, finds a subscriber and unsubscribes
them, and logs out. Every step is checked by what it left behind: files in the issue folder, mails
in the file backend's outbox, rows in the database, text on the page.
"""

from __future__ import annotations

import email
from email.utils import parseaddr
import io
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pyotp
import pytest
from PIL import Image
from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.desk import accounts
from mailer.models import OptIn, Schedule, ScheduleStatus, Subscriber, Subscription, SubscriptionStatus
from mailer.people.directory import add_list, add_subscriber
from tests.helpers import free_port, wait_for
from tests.schedule_support import Daemon, env_for
from tests.test_browser import LiveServer, browser_page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "correct horse battery"
EDITOR = "jo@example.org"
SLUG = "2026-12-flow"
READERS = {"ana@example.org": "Ana Reader", "ben@example.org": "Ben Okafor"}


@pytest.fixture
def live_flow(settings: Settings) -> Iterator[tuple[Settings, Database, LiveServer]]:
    port = free_port()
    settings = settings.replace(backend="file", outbox_dir="outbox", base_url=f"http://127.0.0.1:{port}",
                                web_port=port)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    add_list(db, "news", "Riverside News", OptIn.SINGLE, "Our weekly news")
    for address, name in READERS.items():
        add_subscriber(db, settings, address, name, "news", True)
    with LiveServer(settings, db) as server:
        yield settings, db, server
    db.dispose()


def outbox(settings: Settings) -> list[email.message.Message]:
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(settings.path("outbox").rglob("*.eml"))]


def to(message: email.message.Message) -> str:
    return parseaddr(message["To"])[1]


def png(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 30, 30)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def submit(page, selector: str) -> None:  # type: ignore[no-untyped-def]
    """Click a form's button and wait for the page the server answers with."""
    with page.expect_navigation():
        page.click(selector)


def next_minute() -> datetime:
    """The start of a minute at least 20 s away (UTC: the group's zone here), as the form takes it."""
    soon = datetime.now(timezone.utc) + timedelta(seconds=20)
    return soon.replace(second=0, microsecond=0) + timedelta(minutes=1)


def test_an_editor_makes_sends_and_follows_an_issue_from_the_browser(live_flow, browser_page, tmp_path):  # type: ignore[no-untyped-def]
    settings, db, server = live_flow
    base, page = settings.base_url, browser_page
    page.set_viewport_size({"width": 390, "height": 844})          # on a phone

    # the account: a one-time link, a password, then two-step login turned on
    page.goto(f"{base}/desk/password/{accounts.add_user(db, EDITOR, 'editor')}")
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/desk/")
    page.goto(f"{base}/desk/account")
    submit(page, "text=Set up two-step login")
    totp = pyotp.TOTP(page.inner_text("code.secret").replace(" ", ""))
    page.fill("#code", totp.now())
    submit(page, "text=Turn two-step login on")
    submit(page, "text=Log out")

    # log in with the password and a code (the next step's: the set-up used this one)
    page.goto(f"{base}/desk/login")
    page.fill("#email", EDITOR)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/desk/login/code")
    page.fill("#code", totp.at(time.time() + 30))
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/desk/")

    # a new issue, its list, a pasted report and an image
    page.fill("#slug", SLUG)
    page.fill("#date", "2026-12-04")
    page.fill("#subject", "Flow news")
    submit(page, "text=Create issue")
    page.wait_for_url(f"{base}/desk/issues/{SLUG}?done=created")
    folder = settings.path("issues") / SLUG
    assert (folder / "issue.toml").is_file()
    page.check("#list-news")
    submit(page, "text=Save changes")
    assert 'lists = ["news"]' in (folder / "issue.toml").read_text(encoding="utf-8")
    page.fill("#paste-title", "Tenants win repairs")
    page.fill("#paste-text", "Forty tenants met on Tuesday.\n\nThe landlord agreed to fix the heating by Friday.")
    submit(page, "text=Add the report")
    reports = list((folder / "reports").iterdir())                 # plain text pasted: a .txt report
    assert len(reports) == 1 and "landlord agreed" in reports[0].read_text(encoding="utf-8")
    assert "Tenants win repairs" in page.inner_text("main")
    page.set_input_files("#image-file", str(png(tmp_path / "banner.png")))
    submit(page, "text=Upload the image")
    assert any(p.name.endswith(".png") for p in folder.rglob("*.png")), list(folder.rglob("*"))

    # the preview: the report in the composed mail's frames
    page.goto(f"{base}/desk/issues/{SLUG}/preview")
    frames = [f for f in page.frames if f != page.main_frame]
    assert frames, page.content()
    wait_for(lambda: any("landlord agreed" in f.content() for f in frames), 10, "the report in a preview frame")

    # a test to myself: one mail, to me, nothing recorded for the readers
    page.goto(f"{base}/desk/issues/{SLUG}/send")
    submit(page, "button:text('Send a test to me')")
    wait_for(lambda: len(outbox(settings)) == 1, 10, "the test mail")
    assert to(outbox(settings)[0]) == EDITOR and "Flow news" in outbox(settings)[0]["Subject"]

    # scheduled a minute ahead; a running scheduler sends it to both readers, once
    daemon = Daemon(env_for(settings.root, db.url, MAILER_BASE_URL=base), log=tmp_path / "scheduler.log")
    try:
        daemon.wait_log("jobs: sync")
        at = next_minute()
        page.goto(f"{base}/desk/issues/{SLUG}/send")
        page.fill("#at", at.strftime("%Y-%m-%dT%H:%M"))
        submit(page, "button:text('Schedule')")
        with db.session() as session:
            row = session.scalars(select(Schedule)).one()
            assert SLUG in row.issue_path and row.list_slugs == ["news"] and row.status is ScheduleStatus.SCHEDULED
            assert row.run_at.replace(tzinfo=timezone.utc) == at
        try:
            wait_for(lambda: {to(m) for m in outbox(settings)} >= set(READERS), 150, "the scheduled send")
        except AssertionError:
            raise AssertionError(daemon.log) from None
        time.sleep(2)                                               # a few more syncs: still once
    finally:
        assert daemon.stop() == 0
    mails = outbox(settings)
    assert sorted(to(m) for m in mails) == sorted([EDITOR, *READERS])
    assert all(m["List-Unsubscribe"] for m in mails if to(m) in READERS)

    # the delivery report, reached from the send page
    page.goto(f"{base}/desk/issues/{SLUG}/send")
    submit(page, "a:text-matches('Delivery report of')")
    assert page.inner_text("h1").startswith("Delivery report")
    row = page.locator("table.report tbody tr", has=page.locator("th:text('news')"))
    figures = {cell.get_attribute("data-label"): cell.inner_text().split()[0]
               for cell in row.locator("td").all()}
    assert figures == {"Sent": "2", "Deferred": "0", "Failed": "0", "Unknown": "0", "Bounced": "0",
                       "Unsubscribed since": "0"}, figures

    # a subscriber found by name, unsubscribed after a confirmation
    submit(page, "nav >> text=Subscribers")
    page.fill("#q", "ben")
    submit(page, "button:text('Search')")
    submit(page, "a:text('ben@example.org')")
    submit(page, "text=Unsubscribe from news")
    submit(page, "button:text('Unsubscribe')")
    with db.session() as session:
        status = session.scalars(select(Subscription.status).join(Subscriber)
                                 .where(Subscriber.email == "ben@example.org")).one()
    assert status is SubscriptionStatus.UNSUBSCRIBED

    # log out: the desk asks for a login again
    submit(page, "text=Log out")
    page.goto(f"{base}/desk/")
    assert page.url == f"{base}/desk/login"
