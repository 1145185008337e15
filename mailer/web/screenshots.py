"""PNG screenshots of the sign-up page, every desk page, and the example issue's preview, desktop
and phone width.

The desk's pages are found in the app's URL map (every GET route under /desk/, as an admin
sees it; a route with variables through the first link to it, up to three links away), plus the states
a form reaches: the login, the code step of a login with TOTP (`desk-login-code`) and the
account page setting TOTP up with its QR code (`desk-account`).

The issue also in dark mode (`issue-phone-dark.png`, `issue-desktop-dark.png`) and as a mail
client that drops <style> shows it (`issue-phone-nostyle.png`, `issue-desktop-nostyle.png`).

    python -m mailer.web.screenshots [--out build/screenshots] [--issue issues/example]

Runs the web app under waitress on a free loopback port with a throw-away
SQLite database, and Debian's Chromium through Playwright (CHROMIUM_PATH,
default /usr/bin/chromium). Called by `make screenshots`.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
from pathlib import Path

from mailer.config import load_settings
from mailer.content.compose import compose_issue
from mailer.db import Database
from mailer.errors import MailerError
from mailer.mail.preview import write_preview
from mailer.people.lists import add_list
from mailer.web import create_app

WIDTHS = {"desktop": 1280, "phone": 390}
# the issue's variants: suffix -> (colour scheme, keep <style>)
ISSUE_VARIANTS = {"": ("light", True), "-dark": ("dark", True), "-nostyle": ("light", False)}
REMOVE_STYLE = "document.querySelectorAll('style').forEach(s => s.remove())"
PASSWORD = "screenshots only, not secret"
# the desk's GET routes not shot as an admin's page: scripts, and the pages shot in their own state
DESK_SKIP = {"desk.script", "desk.login_form", "desk.password_form", "desk.code_form"}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def take(out: Path, issue_dir: str | None) -> list[Path]:
    """Write the PNGs into *out*; returns their paths."""
    from playwright.sync_api import sync_playwright
    from waitress.server import create_server

    chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
    if not Path(chromium).exists():
        raise MailerError(f"Chromium not found at {chromium} (apt-get install chromium, or set CHROMIUM_PATH)")
    settings = load_settings()
    tmp = Path(tempfile.mkdtemp(prefix="mailer-shots-"))
    port = _free_port()
    settings = settings.replace(database_url=f"sqlite:///{tmp}/shots.db", base_url=f"http://127.0.0.1:{port}",
                                secret_keys=settings.secret_keys or ("screenshots-only",),
                                hash_key=settings.hash_key or "screenshots-only")
    db = Database(settings.resolved_database_url)
    db.upgrade()
    with db.session() as session:
        add_list(session, "news", f"{settings.group_name} newsletter",
                 description="Reports from our branches, campaigns and meetings, once a month.")
    pages = {"signup": f"{settings.base_url}/subscribe/news", "desk-login": f"{settings.base_url}/desk/login"}
    cookies = _desk_cookies(settings, db)
    app = create_app(settings, db)
    desk_pages = {}
    if issue_dir:
        files = write_preview(settings, compose_issue(settings, issue_dir))
        pages["issue"] = files.html.resolve().as_uri()
        from mailer.scheduling.plans import schedule_once

        schedule_once(db, settings, issue_dir, ("news",), "2031-07-01 09:00")   # for the schedule pages
        _delivered_send(db, settings, issue_dir)                                  # for its progress and report
        from mailer.people.directory import set_welcome

        set_welcome(db, settings, "news", issue_dir)                               # the list page's welcome frames
    server = create_server(app, host="127.0.0.1", port=port, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                desk_pages = _desk_pages(browser, app, settings.base_url, cookies["admin"])
                pages.update({name: settings.base_url + path for name, path in desk_pages.items()})
                pages["desk-login-code"] = f"{settings.base_url}/desk/login/code"
                for name, url in pages.items():
                    variants = ISSUE_VARIANTS if name == "issue" else {"": ("light", True)}
                    for label, width in WIDTHS.items():
                        for suffix, (scheme, style) in variants.items():
                            page = browser.new_page(viewport={"width": width, "height": 900})
                            if name in desk_pages:
                                page.context.add_cookies([cookies["admin"]])
                            elif name == "desk-login-code":
                                page.context.add_cookies([cookies["code"]])
                            page.emulate_media(color_scheme=scheme)
                            page.goto(url)
                            if page.locator("iframe").count():
                                # framed previews paint only inside the viewport: make it the page's height
                                height = page.evaluate("document.documentElement.scrollHeight")
                                page.set_viewport_size({"width": width, "height": min(height, 16000)})
                                page.wait_for_load_state("networkidle")
                                page.wait_for_timeout(500)
                            if not style:
                                page.evaluate(REMOVE_STYLE)
                            path = out / f"{name}-{label}{suffix}.png"
                            page.screenshot(path=str(path), full_page=True)
                            page.close()
                            written.append(path)
            finally:
                browser.close()
    finally:
        server.close()
        thread.join(5)
        db.dispose()
    return written


def _delivered_send(db: Database, settings, issue_dir: str) -> None:  # type: ignore[no-untyped-def]
    """A send of the issue to a second list, delivered by the worker loop through the memory backend:
    sent, one unknown (no reply after the data) and one deferred, for the progress and report pages."""
    from mailer.backends.base import DeliveryOutcome
    from mailer.backends.memory import MemoryBackend
    from mailer.people.directory import add_subscriber
    from mailer.sending import campaign, ledger
    from mailer.sending.worker import run_worker

    with db.session() as session:
        add_list(session, "bulletin", "Action bulletin", description="Calls to action, when they happen.")
    for n, name in enumerate(("Ana Silva", "Ben Okafor", "Chidi Eze", "Dana Levi", "")):
        add_subscriber(db, settings, f"reader{n}@example.org", name, "bulletin", True)
    MemoryBackend.outcomes.update({
        "reader3@example.org": (DeliveryOutcome.UNKNOWN, 0, "connection lost after the data"),
        "reader4@example.org": (DeliveryOutcome.TEMPORARY, 451, "4.7.1 greylisted, try again later")})
    send_id = campaign.start_confirmed(db, compose_issue(settings, issue_dir), ["bulletin"])
    ledger.freeze_audience(db, send_id)
    try:
        run_worker(db, settings.replace(backend="memory"), backend_name="memory", until_idle=True)
    finally:
        MemoryBackend.reset()


def _desk_cookies(settings, db: Database) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Playwright cookies: an admin's session (its TOTP being set up, so its account page shows the
    QR code), and the code step of a login of an account with TOTP on."""
    import pyotp

    from mailer.desk import accounts, sessions, totp
    from mailer.desk.pages import cookie_name_for

    def account(email: str, role: str) -> tuple[int, str]:
        secret = accounts.add_user(db, email, role)
        return accounts.link_account(db, secret).id, sessions.set_password_and_login(db, secret, PASSWORD, "127.0.0.1")

    admin_id, admin_session = account("admin@example.org", "admin")
    account("editor@example.org", "editor")
    totp.begin(db, settings, admin_id)
    code_id, _ = account("two.steps@example.org", "editor")
    totp.begin(db, settings, code_id)
    totp.confirm(db, settings, code_id, pyotp.TOTP(totp.pending(db, settings, code_id)).now())
    challenge = sessions.login(db, "two.steps@example.org", PASSWORD, "127.0.0.1").challenge
    name = cookie_name_for(settings.base_url)
    return {"admin": {"name": name, "value": admin_session, "url": f"{settings.base_url}/desk/"},
            "code": {"name": f"{name}-code", "value": challenge, "url": f"{settings.base_url}/desk/login/"}}


DOWNLOADS = (".csv", ".json")     # files, not pages: a browser downloads them
DEPTH = 3                         # links followed from the pages without variables


def _desk_pages(browser, app, base_url: str, cookie: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Screenshot name -> path of every desk page an admin reaches by GET: the URL map's routes without
    variables, and for each route with variables the first link to it on those pages (up to DEPTH
    links away)."""
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/desk") and "GET" in (r.methods or set())
             and r.endpoint not in DESK_SKIP]
    plain = {r.rule: r.endpoint for r in rules if "<" not in r.rule and not r.rule.endswith(DOWNLOADS)}
    adapter = app.url_map.bind("localhost")
    found: dict[str, str] = {}        # endpoint -> the first link to it
    refused: set[str] = set()         # plain routes that need a query (a 4xx without one)
    page = browser.new_page()
    page.context.add_cookies([cookie])
    def collect() -> None:
        for href in page.eval_on_selector_all("a[href^='/desk/']", "els => els.map(e => e.getAttribute('href'))"):
            try:
                endpoint, _ = adapter.match(href.split("?")[0].split("#")[0], method="GET")
            except Exception:        # not a desk page (a POST-only path)
                continue
            if endpoint not in DESK_SKIP and not href.split("?")[0].endswith(DOWNLOADS):
                found.setdefault(endpoint, href)

    for path in plain:
        response = page.goto(base_url + path)
        if response is None or response.status >= 400:
            refused.add(path)
        collect()
    visited: set[str] = set()
    for _ in range(DEPTH):                # further: an issue, its send page, a send's progress and report
        for href in [h for h in found.values() if h not in visited]:
            visited.add(href)
            response = page.goto(base_url + href)
            if response is not None and response.status < 400:
                collect()
    page.close()
    names = {}
    for path, endpoint in plain.items():
        name = "desk-issues" if path == "/desk/" else "desk-" + path.strip("/").removeprefix("desk/").replace("/", "-")
        if path not in refused:
            names[name] = path
        elif endpoint in found:
            names[name] = found[endpoint]
    names.update({"desk-" + endpoint.removeprefix("desk.").replace("_", "-"): href for endpoint, href in found.items()
                  if endpoint not in plain.values()})
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description="Screenshots of the sign-up page and the example issue.")
    parser.add_argument("--out", default="build/screenshots", help="folder for the PNG files")
    parser.add_argument("--issue", default="issues/example", help="issue folder to preview ('' for none)")
    args = parser.parse_args()
    try:
        for path in take(Path(args.out), args.issue or None):
            print(path)
    except MailerError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
