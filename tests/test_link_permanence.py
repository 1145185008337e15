"""Links that never break: a mailed unsubscribe or preferences link works after every key is replaced
and after a restore from backup (STANDARDS B1, B2, B5, B6); no real send with local links."""

from __future__ import annotations

import email
import re
import shutil
import sqlite3
from email.message import Message
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text

from mailer.cli import cli
from mailer.db import Database
from mailer.mail import links
from mailer.mail.tokens import Purpose, make_link_token, make_token
from mailer.models import Send, Subscriber, Subscription, SubscriptionStatus
from mailer.people.linkcheck import check_link
from mailer.secretfile import write_secrets
from tests.helpers import add_subscribers, make_issue
from tests.smtpserver import SMTPServer, smtp_server  # noqa: F401

BASE = "https://news.example.org"
READERS = ["ana@example.net", "bob@example.net", "cy@example.net"]


def mailer(root: Path, *args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"MAILER_ROOT": str(root), **env})


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def status(root: Path, address: str) -> SubscriptionStatus:
    db = Database(f"sqlite:///{root}/subscribers/mailer.db")
    try:
        with db.session() as session:
            return session.scalar(select(Subscription.status).join(Subscriber)
                                  .where(Subscriber.email == address))
    finally:
        db.dispose()


def links_of(message: Message) -> tuple[str, str]:
    """The List-Unsubscribe URL and the preferences URL in the text part, as paths."""
    header = re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"]).group(1)
    body = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()
    prefs = re.search(rf"{re.escape(BASE)}/p/\S+", body).group(0)
    assert header in body                                   # the same link in the body (A11)
    return header[len(BASE):], prefs[len(BASE):]


def replace_every_key(root: Path) -> None:
    (root / "secrets.toml").unlink()
    write_secrets(root / "secrets.toml", {"secret_keys": ["replacement-key"], "hash_key": "replacement-hash"})
    assert "mailer keys accept" in mailer(root, "lists").output       # refused until accepted
    ok(mailer(root, "keys", "accept", "--yes"))


def web_client(root: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The production WSGI app (settings and keys read as in production), as a test client."""
    from mailer.web import make_wsgi_app

    monkeypatch.setenv("MAILER_ROOT", str(root))
    return make_wsgi_app().test_client()


@pytest.fixture
def sent(tmp_path: Path, smtp_server: SMTPServer) -> tuple[Path, dict[str, tuple[str, str]]]:  # noqa: F811
    """A group that sent an issue through SMTP to three readers; their (unsubscribe, preferences) paths."""
    root = tmp_path / "group"
    ok(mailer(root, "init"))
    (root / "mailer.toml").write_text(f'base_url = "{BASE}"\nbackend = "smtp"\n'
                                      f'[smtp]\nhost = "{smtp_server.host}"\nport = {smtp_server.port}\n'
                                      'security = "none"\n')
    ok(mailer(root, "lists", "add", "news", "News", "--single-opt-in"))
    for address in READERS:
        ok(mailer(root, "subscribers", "add", address, "--list", "news", "--confirmed"))
    make_issue(root, "2026-12-links", {"01-news.md": "# Branch news\n\nThe meeting is on Friday.\n"})
    ok(mailer(root, "send", "issues/2026-12-links", "--yes"))
    assert sorted(smtp_server.recipients()) == READERS
    found = {}
    for received in smtp_server.messages:
        found[received.rcpt_tos[0]] = links_of(email.message_from_bytes(received.data, policy=email.policy.default))
    return root, found


def test_old_links_unsubscribe_after_every_key_is_replaced_B1_B2_B5_B6(sent, monkeypatch) -> None:
    root, found = sent
    replace_every_key(root)
    client = web_client(root, monkeypatch)
    unsub, prefs = found["ana@example.net"]
    page = client.get(unsub)                                 # GET: a button, no change (B5)
    assert page.status_code == 200 and "<form method=\"post\"" in page.text
    assert status(root, "ana@example.net") is SubscriptionStatus.CONFIRMED
    assert client.post(unsub, data={}).status_code == 200     # the page's button
    assert status(root, "ana@example.net") is SubscriptionStatus.UNSUBSCRIBED
    one_click = client.post(found["bob@example.net"][0], data={"List-Unsubscribe": "One-Click"},
                            content_type="multipart/form-data")  # RFC 8058 one-click (B2)
    assert one_click.status_code == 200
    assert status(root, "bob@example.net") is SubscriptionStatus.UNSUBSCRIBED
    preferences = client.get(found["cy@example.net"][1])
    assert preferences.status_code == 200 and "News" in preferences.text
    assert status(root, "cy@example.net") is SubscriptionStatus.CONFIRMED


def test_old_links_work_after_a_restore_from_backup(sent, monkeypatch, tmp_path: Path) -> None:
    root, found = sent
    database = root / "subscribers" / "mailer.db"
    backup = tmp_path / "backup.db"
    with sqlite3.connect(database) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    replace_every_key(root)
    ok(mailer(root, "subscribers", "unsubscribe", "cy@example.net"))
    for leftover in database.parent.glob("mailer.db*"):
        leftover.unlink()
    shutil.copyfile(backup, database)                        # the restore: the old keys' fingerprints
    assert "mailer keys accept" in mailer(root, "lists").output
    ok(mailer(root, "keys", "accept", "--yes"))
    assert status(root, "cy@example.net") is SubscriptionStatus.CONFIRMED
    client = web_client(root, monkeypatch)
    response = client.post(found["cy@example.net"][0], data="List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")   # B1
    assert response.status_code == 200
    assert status(root, "cy@example.net") is SubscriptionStatus.UNSUBSCRIBED


def test_a_link_serves_one_purpose_one_list_and_one_person(db, db_settings) -> None:
    add_subscribers(db, "news", 2, settings=db_settings)
    with db.session() as session:
        (uid, secret), (other_uid, _) = session.execute(select(Subscriber.uid, Subscriber.link_secret)
                                                        .order_by(Subscriber.id)).all()
    token = make_link_token(Purpose.UNSUBSCRIBE, uid, secret, "news")
    data = check_link(db, db_settings, Purpose.UNSUBSCRIBE, token)
    assert data is not None and (data.subscriber_uid, data.list_slug, data.link_secret) == (uid, "news", secret)
    assert check_link(db, db_settings.replace(secret_keys=(), hash_key=""), Purpose.UNSUBSCRIBE, token)
    proof = token.rsplit(".", 1)[1]
    for forged in (f"{uid}.other.{proof}", f"{other_uid}.news.{proof}", f"{uid}.news.{'0' * 32}",
                   f"{uid}.news", "nonsense", f"{uid}.news.{proof}.x"):
        assert check_link(db, db_settings, Purpose.UNSUBSCRIBE, forged) is None, forged
    assert check_link(db, db_settings, Purpose.PREFERENCES, token) is None           # C3
    assert check_link(db, db_settings, Purpose.CONFIRM, token) is None
    assert secret not in links.unsubscribe_url(db_settings, uid, "news", secret)     # never shown


def test_key_signed_links_keep_verifying_while_a_key_is_listed(db, db_settings) -> None:
    add_subscribers(db, "news", 1, settings=db_settings)
    with db.session() as session:
        uid = session.scalar(select(Subscriber.uid))
    old = make_token(db_settings, Purpose.UNSUBSCRIBE, uid, "news")
    rotated = db_settings.replace(secret_keys=("newest", *db_settings.secret_keys))
    data = check_link(db, rotated, Purpose.UNSUBSCRIBE, old)
    assert data is not None and len(data.link_secret) == 32     # a fresh preferences link is permanent
    assert check_link(db, db_settings.replace(secret_keys=("replacement",)), Purpose.UNSUBSCRIBE, old) is None


def test_the_migration_gives_existing_subscribers_distinct_link_secrets(db_url: str) -> None:
    database = Database(db_url)
    try:
        database.upgrade("0004")
        with database.engine.begin() as conn:
            for i in range(3):
                conn.execute(text("INSERT INTO subscriber (uid, email, email_key, name, attributes, created_at, "
                                  "updated_at) VALUES (:uid, :e, :e, '', '{}', :t, :t)"),
                             {"uid": f"u{i}", "e": f"p{i}@example.net", "t": "2026-01-01 00:00:00"})
        database.upgrade()
        with database.engine.connect() as conn:
            secrets = conn.execute(text("SELECT link_secret FROM subscriber")).scalars().all()
        assert len(set(secrets)) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", s) for s in secrets)
        database.downgrade("0004")
        database.upgrade()
    finally:
        database.dispose()


# --- no real send with local links ---------------------------------------------------------------

@pytest.fixture
def local(tmp_path: Path) -> Path:
    """A group with the default base_url (http://127.0.0.1:8025), one reader and an issue."""
    root = tmp_path / "local"
    ok(mailer(root, "init"))
    ok(mailer(root, "lists", "add", "news", "News", "--single-opt-in"))
    ok(mailer(root, "subscribers", "add", READERS[0], "--list", "news", "--confirmed"))
    make_issue(root, "2026-12-local", {"01-news.md": "# News\n\nText.\n"})
    return root


def refused(result: Result) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "setting 'base_url'" in lines[0], lines
    assert "https://" in lines[0]


def sends(root: Path) -> int:
    db = Database(f"sqlite:///{root}/subscribers/mailer.db")
    try:
        with db.session() as session:
            return len(session.scalars(select(Send)).all())
    finally:
        db.dispose()


def test_a_send_through_smtp_with_local_links_is_refused(local: Path, smtp_server: SMTPServer) -> None:  # noqa: F811
    smtp = {"MAILER_SMTP_HOST": smtp_server.host, "MAILER_SMTP_PORT": str(smtp_server.port),
            "MAILER_SMTP_SECURITY": "none"}
    refused(mailer(local, "send", "issues/2026-12-local", "--yes", "--backend", "smtp", **smtp))
    refused(mailer(local, "send", "issues/2026-12-local", "--to", "me@example.org", "--backend", "smtp", **smtp))
    refused(mailer(local, "send", "issues/2026-12-local", "--yes", "--backend", "tests.test_backends_file:EchoBackend"))
    refused(mailer(local, "worker", "--until-idle", "--backend", "smtp", **smtp))
    refused(mailer(local, "schedule", "issues/2026-12-local", "--at", "2099-01-01 09:00", MAILER_BACKEND="smtp"))
    refused(mailer(local, "scheduler", "--once", MAILER_BACKEND="smtp"))
    assert smtp_server.messages == [] and sends(local) == 0
    ok(mailer(local, "send", "issues/2026-12-local", "--yes", "--backend", "smtp", MAILER_BASE_URL=BASE, **smtp))
    assert smtp_server.recipients() == [READERS[0]]


def test_the_file_backend_may_send_local_links_and_compose_warns(local: Path) -> None:
    for command in ("compose", "preview"):
        output = ok(mailer(local, command, "issues/2026-12-local"))
        assert "warning: links in mails point to http://127.0.0.1:8025 (setting 'base_url')" in output
    assert "warning: links" not in ok(mailer(local, "compose", "issues/2026-12-local", MAILER_BASE_URL=BASE))
    ok(mailer(local, "send", "issues/2026-12-local", "--yes"))          # backend file: allowed
    assert len(list((local / "outbox").glob("*.eml"))) == 1


def test_an_erased_person_s_link_answers_like_anyone_s_and_a_forged_one_does_not_B4(db, db_settings) -> None:
    from mailer.people.erasure import erase_person

    add_subscribers(db, "news", 1, settings=db_settings)
    with db.session() as session:
        person = session.scalar(select(Subscriber))
        token = make_link_token(Purpose.UNSUBSCRIBE, person.uid, person.link_secret, "news")
        erase_person(session, db_settings, person)
    data = check_link(db, db_settings, Purpose.UNSUBSCRIBE, token)
    assert data is not None and data.subscriber_uid == token.split(".")[0]
    assert check_link(db, db_settings, Purpose.UNSUBSCRIBE, f"{'f' * 32}.news.{'0' * 32}") is None


def test_the_link_secret_is_never_shown_in_a_person_s_data(db, db_settings) -> None:
    from mailer.people.dataexport import person_data

    add_subscribers(db, "news", 1, settings=db_settings)
    with db.session() as session:
        person = session.scalar(select(Subscriber))
        shown = str(person_data(session, db_settings, person))
    assert person.link_secret not in shown and person.email in shown
