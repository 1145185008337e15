"""axe-core on every desk page, in Chromium against a live server: zero serious or critical violations.

The pages are the URL map's desk routes without variables, every /desk link found on them (so pages
with real ids, and pages other parts of the desk add, are covered as they land), and the states
reached by a form: the login, the code step of a login with TOTP, the set-password link, the TOTP
set-up with its QR code, a new account's one-time link. Each in the light and the dark scheme.
axe-core is the copy bundled by the axe-playwright-python package (no download at test time).
"""

from __future__ import annotations

import re
import time
from collections import deque
from typing import Iterator

import pyotp
import pytest

from mailer.config import Settings
from mailer.db import Database
from mailer.desk import accounts
from mailer.models import OptIn
from tests.helpers import free_port, make_issue
from tests.test_browser import LiveServer, browser_page  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "correct horse battery"
VARIABLE = re.compile(r"<[^>]+>")
LIMIT = 150                     # pages per crawl: far more than the desk has
SKIP = {"desk.script", "desk.login_form", "desk.password_form", "desk.code_form"}   # checked in their states


@pytest.fixture
def live_desk(settings: Settings) -> Iterator[tuple[Settings, Database, LiveServer]]:
    port = free_port()
    settings = settings.replace(backend="memory", base_url=f"http://127.0.0.1:{port}", web_port=port)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    from mailer.people.directory import add_list, add_subscriber
    add_list(db, "news", "Riverside News", OptIn.SINGLE, "Our weekly news")
    add_subscriber(db, settings, "ana@example.org", "Ana Reader", "news", True)
    make_issue(settings.root, "2026-12-news", {"a.md": "# A report\n\nText."}, subject="December news")
    weekly = make_issue(settings.root, "weekly", {}, subject="Weekly reports, {date}")   # a digest and its inbox
    (weekly / "inbox").mkdir()
    (weekly / "inbox" / "a.md").write_text("# Rent strike\n\nIt holds.\n", encoding="utf-8")
    from mailer.people import tagging                      # a segment's page, and tags on a person's page
    tagging.tag(db, "ana@example.org", ["eastfield"])
    tagging.add_segment(db, "east", "tag = eastfield and list = news")
    from mailer.people.directory import set_welcome       # the list page then shows the welcome frames
    set_welcome(db, settings, "news", str(make_issue(settings.root, "welcome", {"a.md": "# Hello\n\nWelcome."},
                                                    subject="Welcome to Riverside News")))
    with LiveServer(settings, db) as server:
        yield settings, db, server
    db.dispose()


def serious(page) -> list[str]:  # type: ignore[no-untyped-def]
    """axe-core's serious and critical violations on *page*, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.response["passes"], "axe-core did not run on the page"
    return [f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


def set_password(page, base: str, secret: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/desk/password/{secret}")
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/desk/")


def crawl(page, base: str, app_rules: list[str]) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Visit every desk page reachable by GET from *app_rules*; yields each path once the page is loaded."""
    queue, seen = deque(app_rules), set(app_rules)
    visited = 0
    while queue and visited < LIMIT:
        path = queue.popleft()
        try:
            response = page.goto(base + path)
        except Exception:                    # a download (CSV export), not a page
            continue
        if response is None or "text/html" not in response.headers.get("content-type", "") or response.status >= 400:
            continue
        visited += 1
        yield path
        for href in page.eval_on_selector_all("a[href^='/desk'], iframe[src^='/desk']",
                                              "els => els.map(e => e.getAttribute('href') || e.getAttribute('src'))"):
            link = href.split("#")[0]
            if link and link not in seen and not link.startswith("/desk/js/") and link != "/desk/logout":
                seen.add(link)
                queue.append(link)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_desk_page_has_no_serious_axe_violation(live_desk, browser_page, scheme: str) -> None:  # type: ignore[no-untyped-def]
    settings, db, server = live_desk
    base = settings.base_url
    page = browser_page
    page.emulate_media(color_scheme=scheme)
    found: dict[str, list[str]] = {}

    def check(name: str) -> None:
        found[name] = serious(page)

    # before login: the login form, a set-password link
    page.goto(f"{base}/desk/login")
    check("/desk/login")
    set_password(page, base, accounts.add_user(db, "sam@example.org", "admin"))
    check("/desk/ (after the link)")
    # the TOTP set-up with its QR code, then a login through the code step
    page.goto(f"{base}/desk/account")
    page.click("text=Set up two-step login")
    check("/desk/account (set-up)")
    secret = page.inner_text("code.secret").replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("text=Turn two-step login on")
    check("/desk/account (on)")
    page.click("text=Log out")
    page.fill("#email", "sam@example.org")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/desk/login/code")
    check("/desk/login/code")
    page.fill("#code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("button[type=submit]")
    check("/desk/login/code (wrong code)")
    page.fill("#code", pyotp.TOTP(secret).at(time.time() + 30))      # the next step's (the set-up took this one)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/desk/")
    # a new account's one-time link, shown once
    page.goto(f"{base}/desk/accounts")
    page.fill("#add-email", "jo@example.org")
    page.click("text=Add and show the link")
    check("/desk/accounts (link shown)")
    # every page by GET: the routes without variables, and every desk link on the pages
    rules = [r.rule for r in server.app.url_map.iter_rules() if r.rule.startswith("/desk")
             and "GET" in (r.methods or set()) and not VARIABLE.search(r.rule) and r.endpoint not in SKIP]
    crawled = list(crawl(page, base, rules))
    for path in crawled:
        page.goto(base + path)
        check(path)
    assert {"/desk/", "/desk/account", "/desk/accounts", "/desk/audit", "/desk/segments", "/desk/segments/east",
            "/desk/digests", "/desk/digests/weekly", "/desk/lists/news"} <= set(crawled), crawled   # the new pages, with data
    bad = {name: lines for name, lines in found.items() if lines}
    assert not bad, (scheme, bad)
