"""`mailer report`: figures per send and list without tracking (SQLite and PostgreSQL).

A real send through the memory backend with scripted refusals, bounce and complaint reports
applied with `mailer bounces`, unsubscribes through the mailed links on the Flask app: the
report counts exactly what happened to this send, and nothing it cannot tie to it.
"""

from __future__ import annotations

import email
import json
import re
import traceback
from email.message import Message
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailer.backends.base import DeliveryOutcome
from mailer.backends.memory import MemoryBackend
from mailer.cli import cli
from mailer.db import Database
from mailer.mail.links import unsubscribe_url
from mailer.models import Send, Subscriber, SubscriptionStatus
from mailer.web import create_app
from tests.helpers import TEST_ENV, add_subscribers, arf, dsn

BASE = "https://news.example.org"


@pytest.fixture
def env(project: Path, db: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    """Lists news (user0..7@example.net) and bulletin (member0..3@example.org), memory backend."""
    for key, value in {**TEST_ENV, "MAILER_BACKEND": "memory", "MAILER_DATABASE_URL": db.url}.items():
        monkeypatch.setenv(key, value)
    add_subscribers(db, "news", 8)
    add_subscribers(db, "bulletin", 4, domain="example.org", prefix="member")
    MemoryBackend.reset()
    yield db
    MemoryBackend.reset()


def mailer(project: Path, *args: str):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, ["--root", str(project), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), "".join(traceback.format_exception(*result.exc_info))
    return result


def mail_to(address: str) -> tuple[str, Message]:
    """The envelope sender (VERP) and parsed message sent to *address*."""
    [sent] = [m for m in MemoryBackend.outbox if m.recipient == address]
    return sent.envelope_from, email.message_from_bytes(sent.data)


def header_link(msg: Message) -> str:
    return re.search(r"<(https://[^>]+)>", msg["List-Unsubscribe"]).group(1)


def body_link(msg: Message) -> str:
    text = next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    return next(u for u in re.findall(r"https://\S+", text) if "/u/" in u)


def status_of(db: Database, address: str, slug: str) -> SubscriptionStatus:
    with db.session() as session:
        sub = session.query(Subscriber).filter_by(email_key=address).one()
        return next(s.status for s in sub.subscriptions if s.mailing_list.slug == slug)


def test_report_counts_deliveries_bounces_complaints_and_unsubscribes_per_list(project, env, settings, tmp_path):
    db = env
    MemoryBackend.outcomes.update({
        "user1@example.net": (DeliveryOutcome.PERMANENT, 550, "5.1.1 <user1@example.net> unknown"),
        "user2@example.net": (DeliveryOutcome.TEMPORARY, 451, "4.3.0 try again later"),
        "member0@example.org": (DeliveryOutcome.PERMANENT, 552, "5.2.2 mailbox full"),
    })
    r = mailer(project, "send", "issues/example", "--list", "news", "--list", "bulletin", "--yes")
    assert r.exit_code == 0, r.output
    with db.session() as session:
        send_uid = session.query(Send).one().uid

    # reports: a hard bounce and a delay tied by VERP, a complaint tied by VERP, and a hard bounce
    # that names only the address (no VERP, unknown Message-ID): suppressed, but not this send's
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "1.eml").write_bytes(dsn("failed", "5.1.1", mail_to("user3@example.net")[0],
                                        recipient="user3@example.net"))
    (reports / "2.eml").write_bytes(dsn("delayed", "4.4.7", mail_to("user4@example.net")[0],
                                        recipient="user4@example.net"))
    (reports / "3.eml").write_bytes(arf("abuse", to=mail_to("member1@example.org")[0]))
    (reports / "4.eml").write_bytes(dsn("failed", "5.1.1", "bounces@example.org", recipient="user5@example.net"))
    r = mailer(project, "bounces", str(reports))
    assert r.exit_code == 0, r.output

    # unsubscribes: one-click POST on the List-Unsubscribe link, the page's button on the body link,
    # an old-style link without the send, and links with a forged or malformed send uid
    client = create_app(settings.replace(database_url=db.url, backend="memory"), db).test_client()
    one_click = header_link(mail_to("user0@example.net")[1])
    assert f"?send={send_uid}" in one_click
    for _ in range(2):   # a repeated one-click changes nothing more
        assert client.post(one_click[len(BASE):], data={"List-Unsubscribe": "One-Click"}).status_code == 200
    in_body = body_link(mail_to("member2@example.org")[1])[len(BASE):]
    page = client.get(in_body)
    assert page.status_code == 200 and f'action="{in_body}"' in page.text
    assert client.post(in_body, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with db.session() as session:
        user6, user7 = (session.query(Subscriber).filter_by(email_key=f"user{i}@example.net").one() for i in (6, 7))
        old = unsubscribe_url(settings, user6.uid, "news", user6.link_secret)
        forged = unsubscribe_url(settings, user7.uid, "news", user7.link_secret, "f" * 32)
    assert "?send=" not in old
    assert client.post(old[len(BASE):], data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert client.post(forged[len(BASE):], data={"List-Unsubscribe": "One-Click"}).status_code == 200
    junk = one_click.split("?")[0][len(BASE):] + "?send=%3Cscript%3E"
    assert client.get(junk).status_code == 200
    for address, slug in [("user0@example.net", "news"), ("member2@example.org", "bulletin"),
                          ("user6@example.net", "news"), ("user7@example.net", "news")]:
        assert status_of(db, address, slug) is SubscriptionStatus.UNSUBSCRIBED, address

    r = mailer(project, "report", "issues/example", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["issue"] == "example" and data["tracking"] == "none"
    [send] = data["sends"]
    assert send["uid"] == send_uid
    by_list = {row["list"]: row for row in send["lists"]}
    figures = ("total", "sent", "deferred", "failed", "unknown", "bounced_hard", "bounced_soft", "complaints",
               "unsubscribes")
    assert [row["list"] for row in send["lists"]] == ["news", "bulletin"]
    assert {k: by_list["news"][k] for k in figures} == dict(
        total=8, sent=5, deferred=1, failed=2, unknown=0, bounced_hard=2, bounced_soft=1, complaints=0,
        unsubscribes=1)
    assert {k: by_list["bulletin"][k] for k in figures} == dict(
        total=4, sent=3, deferred=0, failed=1, unknown=0, bounced_hard=0, bounced_soft=1, complaints=1,
        unsubscribes=1)
    assert {k: send["totals"][k] for k in figures} == dict(
        total=12, sent=8, deferred=1, failed=3, unknown=0, bounced_hard=2, bounced_soft=2, complaints=1,
        unsubscribes=2)

    r = mailer(project, "report", "issues/example")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"send #1 ({send_uid}): sending")
    assert re.search(r"^\s+news\s+8\s+5\s+1\s+2\s+0\s+2\s+1\s+0\s+1$", r.stdout, re.M), r.stdout
    assert re.search(r"^\s+bulletin\s+4\s+3\s+0\s+1\s+0\s+0\s+1\s+1\s+1$", r.stdout, re.M), r.stdout
    assert re.search(r"^\s+all\s+12\s+8\s+1\s+3\s+0\s+2\s+2\s+1\s+2$", r.stdout, re.M), r.stdout
    assert "No opens or clicks are tracked" in r.stdout


def test_report_of_an_issue_never_sent_is_one_line_and_fails(project, env):
    r = mailer(project, "report", "issues/example")
    assert r.exit_code == 1
    assert r.stderr == "error: example: not sent yet, no figures\n" and r.stdout == ""
    r = mailer(project, "report", "issues/example", "--json")
    assert r.exit_code == 1 and r.stdout == ""
