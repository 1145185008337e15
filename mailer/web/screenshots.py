"""PNG screenshots of the sign-up page, the desk's login and issue list, and the example issue's
preview, desktop and phone width.

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
    pages = {"signup": f"{settings.base_url}/subscribe/news", "desk-login": f"{settings.base_url}/desk/login",
             "desk-issues": f"{settings.base_url}/desk/", "desk-lists": f"{settings.base_url}/desk/lists",
             "desk-list": f"{settings.base_url}/desk/lists/news"}
    desk_cookie = _desk_session(db, settings.base_url)
    if issue_dir:
        files = write_preview(settings, compose_issue(settings, issue_dir))
        pages["issue"] = files.html.resolve().as_uri()
    server = create_server(create_app(settings, db), host="127.0.0.1", port=port, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                for name, url in pages.items():
                    variants = ISSUE_VARIANTS if name == "issue" else {"": ("light", True)}
                    for label, width in WIDTHS.items():
                        for suffix, (scheme, style) in variants.items():
                            page = browser.new_page(viewport={"width": width, "height": 900})
                            if name.startswith("desk-") and name != "desk-login":
                                page.context.add_cookies([desk_cookie])
                            page.emulate_media(color_scheme=scheme)
                            page.goto(url)
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


def _desk_session(db: Database, base_url: str) -> dict[str, str]:
    """A desk account logged in through its link, as the cookie Playwright sets for the desk's pages."""
    from mailer.desk import accounts, sessions
    from mailer.desk.pages import cookie_name_for

    secret = accounts.add_user(db, "editor@example.org", "editor")
    raw = sessions.set_password_and_login(db, secret, "screenshots only, not secret", "127.0.0.1")
    return {"name": cookie_name_for(base_url), "value": raw, "url": f"{base_url}/desk/"}


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
