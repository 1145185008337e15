"""The bounce mailbox: `mailer bounces` on a real Dovecot (IMAP, POP3 over TLS), a Maildir, an mbox.

Each test gets its own Dovecot account and delivers reports into its Maildir as a delivery
agent would. What is checked: every report is applied once, a second run applies nothing,
processed reports are put away (flagged, moved, deleted), mails that are not reports stay,
and a mailbox that cannot be reached or logged into is one line with exit code 3.
"""

from __future__ import annotations

import imaplib
import poplib
import ssl
import threading
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from mailer.cli import cli
from mailer.config import load_settings
from mailer.errors import ConfigError
from mailer.models import (BounceEvent, ConsentSource, Delivery, DeliveryStatus, MailingList, ProcessedMail,
                           Send, SendStatus, Subscription, SubscriptionStatus)
from mailer.people.subscriptions import ConsentInfo, normalize_email, subscribe
from mailer.sending.worker import run_worker
from tests import dovecot
from tests.helpers import MID, arf, dsn, free_port, wait_for

NOT_A_REPORT = (b"From: friend@example.net\r\nTo: bounces@example.org\r\nMessage-ID: <hello-1@example.net>\r\n"
                b"Subject: a question about the newsletter\r\n\r\nCan I write for you?\r\n")


@pytest.fixture(scope="module")
def server() -> Iterator[dovecot.DovecotServer]:
    if not dovecot.available():
        pytest.skip("dovecot-imapd and dovecot-pop3d are not installed")
    running = dovecot.DovecotServer().start()
    yield running
    running.stop()


@pytest.fixture
def account(server: dovecot.DovecotServer) -> dovecot.Account:
    return server.add_account()


@pytest.fixture
def people(db, settings):  # type: ignore[no-untyped-def]
    """Ana and Bob on `news`, each with a delivered message; returns their delivery ids by name."""
    ids = {}
    with db.session() as s:
        news = MailingList(slug="news", name="News")
        s.add(news)
        s.flush()
        send = Send(issue_slug="dec", issue_path="issues/dec", subject="December", html="", text="",
                    content_hash="x", list_slugs=["news"], status=SendStatus.DONE)
        s.add(send)
        s.flush()
        for name in ("ana", "bob"):
            sub, _ = subscribe(s, settings, news, normalize_email(f"{name}@example.org"),
                               consent=ConsentInfo(ConsentSource.ADMIN), confirmed=True)
            delivery = Delivery(send_id=send.id, subscriber_id=sub.subscriber_id, list_id=news.id,
                                email=f"{name}@example.org", status=DeliveryStatus.SENT,
                                message_id=MID if name == "ana" else f"<{name}@example.org>")
            s.add(delivery)
            s.flush()
            ids[name] = delivery.id
    return ids


def reports(ids: dict[str, int]) -> dict[str, bytes]:
    """A hard bounce for Ana, a soft one for Bob, and a mail that is not a report."""
    return {
        "1.hard": dsn("failed", "5.1.1", f"bounces+{ids['ana']}@example.org", report_id="<dsn-1@mx.example.net>"),
        "2.soft": dsn("failed", "5.2.2", f"bounces+{ids['bob']}@example.org", recipient="bob@example.org",
                      report_id="<dsn-2@mx.example.net>"),
        "3.other": NOT_A_REPORT,
    }


def run(project: Path, db, *args: str, password: str = "", ca_file: str = ""):  # type: ignore[no-untyped-def]
    env = {"MAILER_DATABASE_URL": db.url, "MAILER_HASH_KEY": "test-hash-key"}
    if password:
        env["MAILER_BOUNCES_PASSWORD"] = password
    if ca_file:
        env["MAILER_BOUNCES_CA_FILE"] = ca_file
    return CliRunner().invoke(cli, ["--root", str(project), "bounces", *args], env=env)


def counts(db) -> tuple[int, int, dict[str, str]]:  # type: ignore[no-untyped-def]
    """(bounce events, processed mails, each subscriber's status)."""
    with db.session() as s:
        events = s.scalar(select(func.count()).select_from(BounceEvent))
        processed = s.scalar(select(func.count()).select_from(ProcessedMail))
        statuses = {sub.subscriber.email: sub.status.value for sub in s.scalars(select(Subscription))}
        return events, processed, statuses


FIRST = {"ana@example.org": SubscriptionStatus.UNSUBSCRIBED.value, "bob@example.org": "confirmed"}


def imap_flags(server: dovecot.DovecotServer, account: dovecot.Account, folder: str = "INBOX") -> dict[str, str]:
    """Message-ID -> flags of every mail in *folder*, read with the standard library's client."""
    conn = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port,
                             ssl_context=ssl.create_default_context(cafile=str(server.ca_file)))
    try:
        conn.login(account.name, account.password)
        conn.select(f'"{folder}"')
        _, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        found = {}
        for item in data:
            if isinstance(item, tuple):
                flags = item[0].decode().split("FLAGS (", 1)[1].split(")", 1)[0]
                found[item[1].decode().split(":", 1)[1].strip()] = flags
        return found
    finally:
        conn.logout()


def test_imap_applies_each_report_once_flags_them_and_leaves_other_mail(server, account, db, people, project):
    for name, data in reports(people).items():
        account.deliver(name, data)
    url = account.url("imaps")
    first = run(project, db, url, "--ca-file", str(server.ca_file), password=account.password)
    assert first.exit_code == 0, first.output
    assert "2 reports, 1 not reports (left in place), 0 already processed, 1 suppressed" in first.output
    assert "hard bounce 5.1.1 for ana@example.org: suppressed" in first.output
    assert "soft bounce 5.2.2 for bob@example.org: recorded" in first.output
    assert counts(db) == (2, 3, FIRST)
    flags = imap_flags(server, account)
    assert "\\Seen" in flags["<dsn-1@mx.example.net>"] and "\\Seen" in flags["<dsn-2@mx.example.net>"]
    assert "\\Seen" not in flags["<hello-1@example.net>"], "a mail that is not a report stays unread"

    second = run(project, db, url, password=account.password, ca_file=str(server.ca_file))
    assert second.exit_code == 0, second.output
    assert "0 reports, 0 not reports (left in place), 3 already processed, 0 suppressed" in second.output
    assert counts(db) == (2, 3, FIRST)


def test_imap_moves_processed_reports_to_the_done_folder(server, account, db, people, project, monkeypatch):
    for name, data in reports(people).items():
        account.deliver(name, data)
    monkeypatch.setenv("MAILER_BOUNCES_DONE_FOLDER", "Processed")
    first = run(project, db, account.url("imaps", "INBOX"), password=account.password, ca_file=str(server.ca_file))
    assert first.exit_code == 0, first.output
    assert set(imap_flags(server, account)) == {"<hello-1@example.net>"}
    moved = imap_flags(server, account, "Processed")
    assert set(moved) == {"<dsn-1@mx.example.net>", "<dsn-2@mx.example.net>"}
    assert all("\\Seen" in flags for flags in moved.values())
    second = run(project, db, account.url("imaps"), password=account.password, ca_file=str(server.ca_file))
    assert "0 reports, 0 not reports (left in place), 1 already processed" in second.output
    assert counts(db) == (2, 3, FIRST)


def test_imap_without_move_copies_flags_deleted_and_expunges(server, db, people, project, monkeypatch):
    """A server that announces neither MOVE nor UIDPLUS: COPY, \\Deleted, EXPUNGE, with the same result."""
    account = server.add_account(old_imap=True)
    for name, data in reports(people).items():
        account.deliver(name, data)
    monkeypatch.setenv("MAILER_BOUNCES_DONE_FOLDER", "Done")
    first = run(project, db, account.url("imaps"), password=account.password, ca_file=str(server.ca_file))
    assert first.exit_code == 0, first.output
    assert "2 reports, 1 not reports (left in place), 0 already processed" in first.output
    assert set(imap_flags(server, account)) == {"<hello-1@example.net>"}
    assert set(imap_flags(server, account, "Done")) == {"<dsn-1@mx.example.net>", "<dsn-2@mx.example.net>"}
    conn = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port,
                             ssl_context=ssl.create_default_context(cafile=str(server.ca_file)))
    conn.login(account.name, account.password)
    capabilities = conn.capability()[1][0].split()
    conn.logout()
    assert b"MOVE" not in capabilities and b"UIDPLUS" not in capabilities, "the fallback was not exercised"
    assert counts(db) == (2, 3, FIRST)


def test_pop3_applies_each_report_once_and_deletes_only_reports(server, account, db, people, project):
    for name, data in reports(people).items():
        account.deliver(name, data)
    url = account.url("pop3s")
    first = run(project, db, url, "--ca-file", str(server.ca_file), password=account.password)
    assert first.exit_code == 0, first.output
    assert "2 reports, 1 not reports (left in place), 0 already processed, 1 suppressed" in first.output
    assert counts(db) == (2, 3, FIRST)
    pop = poplib.POP3_SSL("127.0.0.1", server.pop3s_port,
                          context=ssl.create_default_context(cafile=str(server.ca_file)))
    pop.user(account.name)
    pop.pass_(account.password)
    _, listing, _ = pop.list()
    left = b"\r\n".join(pop.retr(1)[1])
    pop.quit()
    assert len(listing) == 1 and b"<hello-1@example.net>" in left
    second = run(project, db, url, "--ca-file", str(server.ca_file), password=account.password)
    assert "0 reports, 0 not reports (left in place), 1 already processed" in second.output
    assert counts(db) == (2, 3, FIRST)


@pytest.mark.parametrize("scheme", ["imap", "pop3"])
def test_starttls_mailboxes_and_a_password_file(server, account, db, people, project, tmp_path, scheme):
    """imap:// and pop3:// upgrade with STARTTLS (verified) before the login; the password may come from a file."""
    for name, data in reports(people).items():
        account.deliver(name, data)
    secret = tmp_path / "bounces-password"
    secret.write_text(account.password + "\n")
    result = CliRunner().invoke(cli, ["--root", str(project), "bounces", account.url(scheme), "--ca-file",
                                      str(server.ca_file)],
                                env={"MAILER_DATABASE_URL": db.url, "MAILER_HASH_KEY": "test-hash-key",
                                     "MAILER_BOUNCES_PASSWORD_FILE": str(secret)})
    assert result.exit_code == 0, result.output
    assert "2 reports, 1 not reports (left in place), 0 already processed, 1 suppressed" in result.output
    assert counts(db) == (2, 3, FIRST)
    assert "TLS" in server.log().split(f"user=<{account.name}>", 1)[1].splitlines()[0]


@pytest.mark.parametrize("scheme", ["imaps", "pop3s"])
def test_wrong_password_is_one_line_exit_3_and_nothing_changes(server, account, db, people, project, scheme):
    for name, data in reports(people).items():
        account.deliver(name, data)
    result = run(project, db, account.url(scheme), password="not-the-password", ca_file=str(server.ca_file))
    assert result.exit_code == 3, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: {account.url(scheme)}") and "login refused" in line, line
    assert "Traceback" not in result.output
    assert counts(db) == (0, 0, {"ana@example.org": "confirmed", "bob@example.org": "confirmed"})
    assert len(list((account.maildir / "new").iterdir())) == 3


def test_unreachable_untrusted_or_passwordless_mailbox_is_one_line_exit_3(server, account, db, project):
    nobody = f"imaps://{account.name}@127.0.0.1:{free_port()}/INBOX"
    cases = [
        (run(project, db, nobody, password="x"), "cannot connect"),
        (run(project, db, account.url("imaps"), password=account.password), "TLS certificate not trusted"),
        (run(project, db, account.url("pop3s"), password=account.password), "TLS certificate not trusted"),
        (run(project, db, account.url("imaps")), "no password: set MAILER_BOUNCES_PASSWORD"),
        (run(project, db, account.url("imaps"), "--ca-file", str(server.dir / "missing.pem"), password="x"),
         "missing.pem: cannot load CA certificates"),
        (run(project, db, account.url("imaps", "Nope"), password=account.password, ca_file=str(server.ca_file)),
         "cannot open folder 'Nope'"),
    ]
    for result, expected in cases:
        assert result.exit_code == 3, result.output
        [line] = result.output.strip().splitlines()
        assert line.startswith("error: ") and expected in line, line


def test_maildir_twice_moves_reports_to_cur_seen_and_applies_once(db, people, project, tmp_path):
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    for name, data in reports(people).items():
        (maildir / "new" / name).write_bytes(data)
    first = run(project, db, str(maildir))
    assert first.exit_code == 0, first.output
    assert "2 reports, 1 not reports (left in place), 0 already processed, 1 suppressed" in first.output
    assert sorted(p.name for p in (maildir / "cur").iterdir()) == ["1.hard:2,S", "2.soft:2,S"]
    assert [p.name for p in (maildir / "new").iterdir()] == ["3.other"]
    # a report whose move was lost (a crash after the commit) is recognised by its Message-ID
    (maildir / "new" / "1.hard").write_bytes(reports(people)["1.hard"])
    second = run(project, db, str(maildir))
    assert "0 reports, 0 not reports (left in place), 4 already processed, 0 suppressed" in second.output
    assert counts(db) == (2, 3, FIRST)
    assert [p.name for p in (maildir / "new").iterdir()] == ["3.other"]


def test_mbox_twice_applies_once_and_leaves_the_file_as_it_was(db, people, project, tmp_path):
    mbox = tmp_path / "bounces.mbox"
    mbox.write_bytes(b"".join(b"From MAILER-DAEMON Thu Dec  3 07:00:00 2026\n" + data.replace(b"\r\n", b"\n") + b"\n"
                              for data in reports(people).values()))
    before = mbox.read_bytes()
    first = run(project, db, str(mbox))
    assert first.exit_code == 0, first.output
    assert "2 reports, 1 not reports (left in place), 0 already processed, 1 suppressed" in first.output
    second = run(project, db, str(mbox))
    assert "0 reports, 0 not reports (left in place), 3 already processed" in second.output
    assert counts(db) == (2, 3, FIRST) and mbox.read_bytes() == before


def test_the_setting_is_used_without_a_path_and_stdin_still_works(db, people, project, tmp_path, monkeypatch):
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1").write_bytes(arf())
    none = run(project, db)
    assert none.exit_code == 3 and "no mailbox: give a PATH or URL, or set bounces.mailbox" in none.output
    monkeypatch.setenv("MAILER_BOUNCES_MAILBOX", str(maildir))
    result = run(project, db)
    assert result.exit_code == 0 and "complaint for ana@example.org: suppressed" in result.output, result.output
    piped = CliRunner().invoke(cli, ["--root", str(project), "bounces", "-"], input=arf(),
                               env={"MAILER_DATABASE_URL": db.url, "MAILER_HASH_KEY": "test-hash-key",
                                    "MAILER_BOUNCES_MAILBOX": ""})
    assert "0 reports, 0 not reports (left in place), 1 already processed" in piped.output, piped.output


def test_worker_polls_the_imap_mailbox_every_few_seconds(server, account, db, people, settings):
    """The worker's thread applies a report that arrives while it runs, without being asked."""
    config = settings.replace(database_url=db.url, bounces_mailbox=account.url("imaps"),
                              bounces_password=account.password, bounces_ca_file=str(server.ca_file),
                              bounces_poll_minutes=0.01)
    stop, lines = threading.Event(), []
    worker = threading.Thread(target=run_worker, args=(db, config),
                              kwargs={"poll": 0.2, "stop": stop, "log": lines.append})
    worker.start()
    try:
        account.deliver("1.hard", reports(people)["1.hard"])
        wait_for(lambda: counts(db)[0] == 1, timeout=30, what="the worker to apply the report")
        wait_for(lambda: "\\Seen" in imap_flags(server, account).get("<dsn-1@mx.example.net>", ""),
                 timeout=30, what="the report to be flagged")
    finally:
        stop.set()
        worker.join(30)
    assert counts(db) == (1, 1, FIRST)
    assert any("bounce mailbox: 1 reports" in line for line in lines), lines


def test_worker_until_idle_polls_once_and_a_bad_mailbox_is_a_logged_line(db, people, settings, tmp_path):
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1").write_bytes(reports(people)["1.hard"])
    lines: list[str] = []
    run_worker(db, settings.replace(database_url=db.url, bounces_mailbox=str(maildir)), until_idle=True,
               log=lines.append)
    assert counts(db)[0] == 1 and [p.name for p in (maildir / "cur").iterdir()] == ["1:2,S"]
    lines.clear()
    run_worker(db, settings.replace(database_url=db.url, bounces_mailbox=str(tmp_path / "gone")), until_idle=True,
               log=lines.append)
    assert any(line.startswith("bounce mailbox: ") and "no such file or folder" in line for line in lines), lines


@pytest.mark.parametrize("value, expected", [
    ("imaps://bounces:hunter2@mail.example.org/INBOX", "no password in the URL"),
    ("ftp://bounces@mail.example.org", "the scheme must be one of"),
    ("imaps://mail.example.org/INBOX", "must be scheme://user@host"),
    ("pop3s://bounces@mail.example.org/INBOX", "a POP3 mailbox has no folders"),
])
def test_a_bad_mailbox_setting_is_refused_naming_it(project, value, expected):
    with pytest.raises(ConfigError, match="bounces.mailbox") as caught:
        load_settings(project, environ={"MAILER_BOUNCES_MAILBOX": value})
    assert expected in str(caught.value) and "hunter2" not in str(caught.value)


def test_the_mailbox_password_may_live_in_the_secrets_file(project):
    """bounces.password is a secret like the others: secrets.toml (mode 0600), never mailer.toml."""
    secrets = project / "secrets.toml"
    secrets.write_text('secret_keys = ["k1"]\nhash_key = "h"\n[bounces]\npassword = "from-the-file"\n')
    secrets.chmod(0o600)
    assert load_settings(project, environ={}).bounces_password == "from-the-file"
    assert load_settings(project, environ={"MAILER_BOUNCES_PASSWORD": "env"}).bounces_password == "env"
    (project / "mailer.toml").write_text('[bounces]\npassword = "in-the-config"\n')
    with pytest.raises(ConfigError, match="bounces.password"):
        load_settings(project, environ={})
