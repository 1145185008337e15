"""The public site in Chromium at 390 px, light and dark: no horizontal scroll, contrast ≥ 4.5:1."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from mailer.config import Settings
from mailer.content.compose import compose_issue
from mailer.db import Database
from mailer.models import MailingList, Send, SendStatus
from tests.browser_checks import horizontal_overflow, text_contrasts
from tests.helpers import free_port
from tests.test_browser import LiveServer, browser_page  # noqa: F401
from tests.test_web_site import add_send

pytestmark = [pytest.mark.browser, pytest.mark.slow]
LONG = "A very long subject line about the rent strike, the tenants' assembly and the Riverside_Housing_Cooperative_Annual_General_Meeting"


@pytest.fixture
def site(settings: Settings) -> Iterator[Settings]:
    port = free_port()
    settings = settings.replace(backend="memory", base_url=f"http://127.0.0.1:{port}", web_port=port)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    with db.session() as session:
        session.add(MailingList(slug="news", name="Riverside News", description="Monthly news of the branch."))
        session.add(MailingList(slug="bulletin", name="Action Bulletin"))
    add_send(db, "2026-10", 40, "October news")
    add_send(db, "2026-11", 10, LONG)
    add_send(db, "2026-12", 1, "December news")
    # the example issue's real web version, as the send loop stores it
    example = compose_issue(settings, "issues/example")
    with db.session() as session:
        session.add(Send(issue_slug="example", issue_path="issues/example", subject=example.subject,
                         preheader=example.preheader, html=example.html, text=example.text, content_hash="x",
                         status=SendStatus.DONE, archive_html=example.archive_html,
                         started_at=datetime.now(timezone.utc)))
    with LiveServer(settings, db):
        yield settings
    db.dispose()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_site_pages_fit_a_phone_and_read_well(site: Settings, browser_page, scheme: str) -> None:  # type: ignore[no-untyped-def]
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme=scheme)
    for path, root in (("/", "body"), ("/archive/", "body"), ("/archive/2026-12", "nav.mailer-site"), ("/archive/2026-10", "nav.mailer-site"),
                       ("/archive/example", "nav.mailer-site"),
                       ("/subscribe/news", "body"), ("/archive/nothing", "body")):
        page.goto(site.base_url + path)
        assert page.evaluate("document.scripts.length") == 0
        assert horizontal_overflow(page) == 0, (scheme, path)
        measured = text_contrasts(page, root)
        assert len(measured) >= 3, (path, measured)
        worst = min(measured)
        assert worst[0] >= 4.5, (scheme, path, worst)
    page.goto(site.base_url + "/")
    if os.environ.get("SITE_SHOT_DIR"):       # to look at: SITE_SHOT_DIR=/tmp pytest tests/test_browser_site.py
        for path, name in (("/", "home"), ("/archive/example", "archived")):
            page.goto(site.base_url + path)
            page.screenshot(path=str(Path(os.environ["SITE_SHOT_DIR"]) / f"site-{name}-{scheme}.png"), full_page=True)
        page.goto(site.base_url + "/")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == ("rgb(27, 27, 29)" if scheme == "dark" else "rgb(250, 250, 247)")
