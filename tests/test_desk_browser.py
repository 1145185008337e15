"""The desk in Chromium at phone width: a link sets the password and logs in, the issue list fits and
reads well, the cookie is HttpOnly and SameSite=Strict, Log out ends the session."""

from __future__ import annotations

from typing import Iterator

import pytest

from mailer.config import Settings
from mailer.db import Database
from mailer.desk import accounts
from tests.browser_checks import horizontal_overflow, text_contrasts
from tests.helpers import free_port
from tests.test_browser import LiveServer, browser_page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def desk(settings: Settings) -> Iterator[tuple[Settings, Database]]:
    port = free_port()
    settings = settings.replace(backend="memory", base_url=f"http://127.0.0.1:{port}", web_port=port)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    with LiveServer(settings, db):
        yield settings, db
    db.dispose()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_a_link_logs_in_and_the_desk_fits_a_phone(desk, browser_page, scheme: str) -> None:  # type: ignore[no-untyped-def]
    settings, db = desk
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme=scheme)
    secret = accounts.add_user(db, "a.very.long.address.of.an.editor@riverside-solidarity.example.org", "editor")
    page.goto(f"{settings.base_url}/desk/password/{secret}")
    page.fill("#password", "correct horse battery")
    page.fill("#password_again", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{settings.base_url}/desk/")
    assert page.locator("h1").inner_text() == "Issues"
    assert "December: the bakery strike" in page.content()          # the example issue's subject
    cookie, = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/desk"
    for path in ("/desk/", "/desk/login"):
        if path == "/desk/login":
            page.click("text=Log out")
            page.wait_for_url(f"{settings.base_url}/desk/login")
        assert page.evaluate("document.scripts.length") == 0
        assert horizontal_overflow(page) == 0, (scheme, path)
        worst = min(text_contrasts(page, "body"))
        assert worst[0] >= 4.5, (scheme, path, worst)
    page.goto(f"{settings.base_url}/desk/")
    assert page.url == f"{settings.base_url}/desk/login"
