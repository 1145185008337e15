"""Helpers shared by the tests: a free port, polling, issue folders, an audience, a hand-built issue,
bounce and complaint reports.

The audience goes through the real path (`lists.add_list`, `subscriptions.subscribe`), so every
subscriber has its consent row and audit event, as one added by `mailer add` would.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from mailer.config import Settings
from mailer.content.compose import ComposedIssue
from mailer.db import Database
from mailer.models import ConsentSource, OptIn
from mailer.people.importing import import_csv
from mailer.people.lists import add_list, find_list
from mailer.people.subscriptions import ConsentInfo, normalize_email, subscribe

TEST_SECRET_KEYS = ("test-secret-key-newest", "test-secret-key-older")
TEST_HASH_KEY = "test-hash-key"
# base_url https: sends through SMTP refuse links to a local address
TEST_ENV = {"MAILER_SECRET_KEYS": ",".join(TEST_SECRET_KEYS), "MAILER_HASH_KEY": TEST_HASH_KEY,
            "MAILER_BASE_URL": "https://news.example.org"}
BULK = 1000   # audiences larger than this are imported in bulk


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], object], timeout: float = 3.0, what: str = "the condition") -> bool:
    """Poll *check* until it is true (returns True); AssertionError naming *what* after *timeout* s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
    return True


def make_issue(project: Path, slug: str, reports: dict[str, str], *, subject: str = "Weekly digest",
               toml: str | None = None) -> Path:
    """issues/<slug> with reports/ holding *reports* (none is fine) and issue.toml (*toml*, or subject + news)."""
    folder = project / "issues" / slug
    (folder / "reports").mkdir(parents=True, exist_ok=True)
    if toml is None:
        toml = f'subject = "{subject}"\nlists = ["news"]\n'
    (folder / "issue.toml").write_text(toml, encoding="utf-8")
    for name, body in reports.items():
        (folder / "reports" / name).write_text(body, encoding="utf-8")
    return folder


def make_list(db: Database, slug: str, name: str | None = None) -> int:
    """The id of list *slug*, created (single opt-in) when it does not exist."""
    with db.session() as session:
        found = find_list(session, slug)
        if found is not None:
            return found.id
        return add_list(session, slug, name or slug.title(), OptIn.SINGLE).id


def add_subscribers(db: Database, slug: str, count: int, *, settings: Settings | None = None,
                    domain: str = "example.net", start: int = 0, prefix: str = "user") -> list[str]:
    """Subscribe ``user<i>@domain`` (i from *start*) to list *slug*, confirmed, as an import would.

    Up to BULK addresses go through `subscriptions.subscribe` in the order of i (subscriber ids,
    and so send order, follow i); more go through `mailer import` (same rules, in address order),
    which is many times faster. Returns the addresses.
    """
    settings = settings or Settings(hash_key=TEST_HASH_KEY, secret_keys=TEST_SECRET_KEYS)
    make_list(db, slug)
    emails = [f"{prefix}{i}@{domain}" for i in range(start, start + count)]
    if count > BULK:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "audience.csv"
            csv.write_text("email,name\n" + "".join(f"{e},Reader {e.split('@')[0]}\n" for e in emails))
            report = import_csv(db, settings, csv, slug, confirmed=True, rejects_path=Path(tmp) / "rejects.csv")
        assert report.accepted == count, report
        return emails
    consent = ConsentInfo(ConsentSource.IMPORT, form_id="tests")
    with db.session() as session:
        mlist = find_list(session, slug)
        for email in emails:
            subscribe(session, settings, mlist, normalize_email(email), name=f"Reader {email.split('@')[0]}",
                      confirmed=True, consent=consent)
    return emails


def composed_issue(path: Path, *, slug: str = "2026-12-test", lists: tuple[str, ...] = ("news",)) -> ComposedIssue:
    """A ComposedIssue built by hand (placeholders included), without composing a folder."""
    html = ("<html><body><h1>Hello __mailer_name__</h1><p>News for __mailer_email__.</p>"
            '<p><a href="__mailer_unsubscribe_url__">Unsubscribe</a> '
            '<a href="__mailer_preferences_url__">Preferences</a> '
            '<a href="__mailer_view_online_url__">View online</a></p></body></html>')
    text = ("Hello __mailer_name__\n\nNews for __mailer_email__.\n\n"
            "Unsubscribe: __mailer_unsubscribe_url__\nPreferences: __mailer_preferences_url__\n")
    return ComposedIssue(slug=slug, path=path, subject="Solidarity news & notes", preheader="", lists=lists,
                         html=html, text=text, archive_html="<html><body>archive</body></html>",
                         content_hash="0" * 64)


# bounce (RFC 3464) and complaint (RFC 5965) reports, as a receiving MTA or a mailbox provider sends them
MID = "<4f1c0ffee@example.org>"


def dsn(action: str, status: str, to: str, third: str = "rfc822", recipient: str = "ana@example.org",
        report_id: str = "") -> bytes:
    """A DSN for *recipient*, sent to *to* (a VERP address ties it to its delivery); *report_id* its Message-ID."""
    returned = f"From: news@example.org\r\nTo: {recipient}\r\nMessage-ID: {MID}\r\nSubject: December\r\n"
    if third == "rfc822":
        tail = f"Content-Type: message/rfc822\r\n\r\n{returned}\r\nbody\r\n"
    else:
        tail = f"Content-Type: text/rfc822-headers\r\n\r\n{returned}"
    return (
        f"From: MAILER-DAEMON@mx.example.net\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        + (f"Message-ID: {report_id}\r\n" if report_id else "") +
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\nArrival-Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected\r\n\r\n"
        f"--B\r\n{tail}--B--\r\n"
    ).encode()


def arf(feedback_type: str = "abuse", to: str = "bounces@example.org") -> bytes:
    return (
        f"From: fbl@mailbox.example.com\r\nTo: {to}\r\nSubject: FW: December\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n\r\n'
        "--F\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
        "--F\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: {feedback_type}\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n"
        "Original-Rcpt-To: <ana@example.org>\r\n\r\n"
        f"--F\r\nContent-Type: message/rfc822\r\n\r\nFrom: news@example.org\r\nTo: ana@example.org\r\n"
        f"Message-ID: {MID}\r\nSubject: December\r\n\r\nbody\r\n--F--\r\n"
    ).encode()


CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (no browser download); the test is skipped without it."""
    import pytest
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
