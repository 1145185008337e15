"""The send loop against a real SMTP server (aiosmtpd) with injected failures (STANDARDS E1, E3-E6, B7)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from email import message_from_bytes

import dkim

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from tests.helpers import add_subscribers, composed_issue, free_port
from mailer.sending import ledger
from mailer.backends.smtp import SMTPBackend
from mailer.db import Database
from mailer.models import BounceEvent, BounceKind, Delivery, DeliveryStatus, SendStatus, Subscriber, Suppression
from mailer.sending.rates import RateLimiter
from mailer.sending.loop import run_send
from tests.smtpserver import smtp_server  # noqa: F401


@pytest.fixture
def sqlite_db(settings):
    db = Database(settings.resolved_database_url)
    db.upgrade()
    yield db
    db.dispose()


def new_send(db, settings, n, **kw):
    emails = add_subscribers(db, "news", n, **kw)
    with db.session() as session:
        send_id = ledger.create_send(session, composed_issue(settings.root), ["news"]).id
    assert ledger.claim_send(db, send_id, SendStatus.DRAFT)
    return send_id, emails


def ledger_rows(db, send_id):
    with db.session() as session:
        return {d.email: d for d in session.scalars(select(Delivery).where(Delivery.send_id == send_id))}


def test_every_recipient_sent_or_classified_E3_E4_E5(sqlite_db, settings, smtp_server):
    """421 / drop -> reconnect + retry (E3); 450 and a timeout -> deferred; a drop after the data -> unknown,
    never resent (E5); 550 5.1.1 -> failed + suppressed;
    5.7.1 -> pause (E4); after resume and retry every row is sent exactly once or failed (E5)."""
    db = sqlite_db
    settings = smtp_server.settings(settings, smtp_connections=2, smtp_timeout=1.0, batch_size=8,
                                    retry_base_seconds=0.0)
    send_id, emails = new_send(db, settings, 40)
    at = {i: f"user{i}@example.net" for i in range(40)}
    smtp_server.fail("DATA", "421 4.3.2 shutting down", address=at[3], times=1)
    smtp_server.fail("EOD", "421 4.3.2 shutting down", address=at[4], times=1)
    smtp_server.fail("RCPT", "450 4.2.0 mailbox busy", address=at[5], times=1)
    smtp_server.fail("RCPT", "550 5.1.1 no such user", address=at[6])
    smtp_server.drop("MAIL", address=None, times=1)                       # a dropped connection, before data
    smtp_server.drop("EOD", address=at[8], times=1)                      # dropped after the data: unsure
    smtp_server.delay("RCPT", 0.3, address=at[9], times=1)               # slow, within the timeout
    smtp_server.delay("RCPT", 2.5, address=at[10], times=1)              # slower than smtp.timeout
    smtp_server.fail("EOD", "554 5.7.1 message refused: policy", address=at[20], times=1)

    with SMTPBackend(settings) as backend:
        first = run_send(db, settings, send_id, backend=backend)
    assert first.status is SendStatus.PAUSED and "5.7.1" in first.reason
    rows = ledger_rows(db, send_id)
    assert rows[at[5]].status is DeliveryStatus.DEFERRED and rows[at[5]].last_code == "450"
    assert rows[at[6]].status is DeliveryStatus.FAILED and "5.1.1" in rows[at[6]].last_reply
    assert rows[at[8]].status is DeliveryStatus.UNKNOWN and "may have it" in rows[at[8]].last_reply
    assert rows[at[10]].status is DeliveryStatus.DEFERRED and "timed out" in rows[at[10]].last_reply
    assert rows[at[20]].status is DeliveryStatus.QUEUED                 # policy: not the recipient's fault
    assert rows[at[3]].status is DeliveryStatus.SENT and rows[at[4]].status in (
        DeliveryStatus.SENT, DeliveryStatus.DEFERRED)
    with db.session() as session:
        scopes = session.scalars(select(Suppression.email)).all()
    assert scopes == [at[6]]                                               # only the 5.1.1 is suppressed

    assert ledger.claim_send(db, send_id, SendStatus.PAUSED)
    with SMTPBackend(settings) as backend:
        run_send(db, settings, send_id, backend=backend)                  # the rest, and the due retries
        for _ in range(3):
            if ledger_rows(db, send_id)[at[5]].status is DeliveryStatus.SENT and all(
                    d.status is not DeliveryStatus.DEFERRED for d in ledger_rows(db, send_id).values()):
                break
            run_send(db, settings, send_id, backend=backend)
    rows = ledger_rows(db, send_id)
    copies = Counter(smtp_server.recipients())
    for address, row in rows.items():
        if address == at[6]:
            assert row.status is DeliveryStatus.FAILED and copies[address] == 0
        elif address == at[8]:                                             # no reply after the data: never resent
            assert row.status is DeliveryStatus.UNKNOWN and copies[address] <= 1
        else:
            assert row.status is DeliveryStatus.SENT, (address, row.status, row.last_reply)
            assert copies[address] == 1, address                          # nothing lost, nothing doubled
    assert sum(copies.values()) == 38 + copies[at[8]]
    assert smtp_server.peak_connections <= 2                              # E6: max connections kept
    with db.session() as session:
        send_status = ledger.counts(session, send_id)
    assert send_status[DeliveryStatus.SENT] == 38 and send_status[DeliveryStatus.UNKNOWN] == 1


@pytest.mark.parametrize("soft_limit", [3, 1])
def test_refusals_by_class_hard_soft_permanent_E4_F2(sqlite_db, settings, smtp_server, soft_limit):
    """E4: 5.2.1 is a hard bounce (suppressed); 5.2.2 fails the message and records a soft bounce that
    counts toward bounce_soft_limit (F2); 5.4.4 and a bare 550 fail the message, nobody suppressed."""
    db = sqlite_db
    settings = smtp_server.settings(settings, bounce_soft_limit=soft_limit)
    send_id, _ = new_send(db, settings, 5)
    at = {i: f"user{i}@example.net" for i in range(5)}
    smtp_server.fail("RCPT", "550 5.2.1 mailbox disabled", address=at[1])
    smtp_server.fail("RCPT", "552 5.2.2 mailbox full", address=at[2])
    smtp_server.fail("RCPT", "550 5.4.4 no route to host", address=at[3])
    smtp_server.fail("RCPT", "550 no such user here", address=at[4])
    with SMTPBackend(settings) as backend:
        summary = run_send(db, settings, send_id, backend=backend)
    assert summary.status is SendStatus.DONE and (summary.sent, summary.failed, summary.bounced) == (1, 4, 1)
    rows = ledger_rows(db, send_id)
    assert [rows[at[i]].status for i in range(5)] == [DeliveryStatus.SENT] + [DeliveryStatus.FAILED] * 4
    with db.session() as session:
        events = session.execute(select(Subscriber.email, BounceEvent.kind, BounceEvent.status_code)
                                 .join(Subscriber, Subscriber.id == BounceEvent.subscriber_id)).all()
        suppressed = set(session.scalars(select(Suppression.email)))
    assert sorted(tuple(e) for e in events) == [(at[1], BounceKind.HARD, "5.2.1"), (at[2], BounceKind.SOFT, "5.2.2")]
    assert suppressed == ({at[1]} if soft_limit == 3 else {at[1], at[2]})


def test_dev_redirect_is_applied_once_before_dkim_signing_A10(sqlite_db, settings, smtp_server, tmp_path):
    """dev_redirect changes the envelope recipient only, before signing: every message reaches the redirect
    address with the subscriber still in To, and its DKIM signature verifies (dkim.verify) as received."""
    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout"], check=True, capture_output=True).stdout
    record = b"v=DKIM1; k=rsa; p=" + b"".join(line for line in pub.splitlines() if not line.startswith(b"-----"))

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"news2026._domainkey.example.org." else b""

    db = sqlite_db
    settings = smtp_server.settings(settings, dev_redirect="dev@example.org", dkim_selector="news2026",
                                    dkim_domain="example.org", dkim_private_key_file=str(key))
    send_id, _ = new_send(db, settings, 3)
    with SMTPBackend(settings) as backend:
        assert run_send(db, settings, send_id, backend=backend).sent == 3
    received = smtp_server.messages
    assert len(received) == 3 and all(m.rcpt_tos == ["dev@example.org"] for m in received)
    assert sorted(message_from_bytes(m.data)["To"].split("<")[-1] for m in received) == [
        f"user{i}@example.net>" for i in range(3)]
    assert all(dkim.verify(m.data, dnsfunc=dns) for m in received)


def test_connection_reuse_E1(sqlite_db, settings, smtp_server):
    """E1: 60 messages over 2 connections, not one per message."""
    settings = smtp_server.settings(settings, smtp_connections=2)
    send_id, emails = new_send(sqlite_db, settings, 60)
    with SMTPBackend(settings) as backend:
        summary = run_send(sqlite_db, settings, send_id, backend=backend)
    assert summary.status is SendStatus.DONE and summary.sent == 60
    assert sorted(smtp_server.recipients()) == sorted(emails)
    assert smtp_server.connections <= 2


def test_unsubscribe_mid_send_via_smtp_B7(sqlite_db, settings, smtp_server):
    """B7: unsubscribed while the send runs (after a few messages) -> no message of it afterwards."""
    from mailer.people.lists import get_list
    from mailer.people.subscriptions import find_subscriber, unsubscribe

    settings = smtp_server.settings(settings, batch_size=5)
    send_id, emails = new_send(sqlite_db, settings, 20)
    once = []

    def progress(summary):
        if summary.sent >= 3 and not once:
            once.append(summary.sent)
            with sqlite_db.session() as session:
                unsubscribe(session, settings, find_subscriber(session, "user15@example.net"),
                            get_list(session, "news"))

    with SMTPBackend(settings) as backend:
        run_send(sqlite_db, settings, send_id, backend=backend, progress=progress)
    assert once and once[0] < 15
    assert "user15@example.net" not in smtp_server.recipients()
    assert len(smtp_server.recipients()) == 19
    assert ledger_rows(sqlite_db, send_id)["user15@example.net"].status is DeliveryStatus.SKIPPED


class _Stamps:
    """An aiosmtpd handler that keeps (arrival time, recipient) of every accepted message."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, str]] = []

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.stamps.append((time.time(), envelope.rcpt_tos[0]))
        return "250 2.0.0 OK"


def most_in_any_window(times: list[float], span: float = 1.0) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= span:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_rate_limits_never_exceeded_at_the_server_E6(sqlite_db, settings):
    """E6: per second overall and per recipient domain, measured by arrival times at a real server."""

    handler = _Stamps()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        settings = settings.replace(smtp_host="127.0.0.1", smtp_port=controller.port, smtp_security="none",
                                    smtp_connections=2, rate_per_second=8, rate_per_domain_per_second=3)
        send_id, _ = new_send(sqlite_db, settings, 5, domain="a.example")
        add_subscribers(sqlite_db, "news", 5, domain="b.example")
        with SMTPBackend(settings) as backend:
            summary = run_send(sqlite_db, settings, send_id, backend=backend)
    finally:
        controller.stop()
    assert summary.sent == 10 and len(handler.stamps) == 10
    times = [t for t, _ in handler.stamps]
    assert most_in_any_window(times) <= 8
    for domain in ("a.example", "b.example"):
        assert most_in_any_window([t for t, r in handler.stamps if r.endswith(domain)]) <= 3


def test_token_bucket_paces_per_hour_and_per_second():
    """E6 (unit): with a fake clock, the per-hour limit spaces messages 3600/rate seconds apart."""
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(per_hour=60, clock=lambda: now[0], sleep=sleep)
    stamps = []
    for _ in range(4):
        limiter.acquire("x.org")
        stamps.append(now[0])
        limiter.complete("x.org")
    assert stamps == [0.0, 60.0, 120.0, 180.0]
    per_second = RateLimiter(per_second=5, clock=lambda: now[0], sleep=sleep)
    start = now[0]
    got = []
    for _ in range(11):
        per_second.acquire()
        got.append(now[0] - start)
        per_second.complete()
    assert most_in_any_window(got) <= 5 and got[-1] >= 2.0 - 1e-9
    assert RateLimiter().unlimited and RateLimiter().acquire("x") is True


def test_stop_event_finishes_in_flight_and_parks(sqlite_db, settings, smtp_server):
    """SIGTERM semantics: stop set mid-send -> the loop returns, rows untouched stay queued, no claim left."""
    settings = smtp_server.settings(settings, batch_size=5)
    send_id, _ = new_send(sqlite_db, settings, 30)
    stop = threading.Event()

    stopped_at = []

    def progress(summary):
        if summary.sent >= 7 and not stopped_at:
            stopped_at.append(summary.sent)
            stop.set()

    with SMTPBackend(settings) as backend:
        summary = run_send(sqlite_db, settings, send_id, backend=backend, progress=progress, stop=stop)
    sent = summary.sent     # what was sent when stop was set, plus what the other connections had in flight
    assert stopped_at and stopped_at[0] <= sent < stopped_at[0] + settings.smtp_connections
    assert sent < 30 and summary.status is SendStatus.SENDING
    rows = ledger_rows(sqlite_db, send_id)
    assert Counter(d.status for d in rows.values()) == {DeliveryStatus.SENT: sent, DeliveryStatus.QUEUED: 30 - sent}
    assert all(d.claimed_by == "" for d in rows.values())
    assert len(smtp_server.recipients()) == sent


def test_date_is_stamped_at_send_time_not_queue_time_A3(sqlite_db, settings, smtp_server):
    """A3: a send queued hours ago carries a Date within minutes of the SMTP transaction."""
    from datetime import datetime, timedelta, timezone
    from email import message_from_bytes
    from email.utils import parsedate_to_datetime

    from sqlalchemy import update

    from mailer.models import Send

    settings = smtp_server.settings(settings)
    send_id, _ = new_send(sqlite_db, settings, 5)
    long_ago = datetime.now(timezone.utc) - timedelta(hours=6)
    with sqlite_db.engine.begin() as conn:
        conn.execute(update(Send).where(Send.id == send_id).values(created_at=long_ago))
    with SMTPBackend(settings) as backend:
        run_send(sqlite_db, settings, send_id, backend=backend)
    arrived = datetime.now(timezone.utc)
    dates = [parsedate_to_datetime(message_from_bytes(m.data)["Date"]) for m in smtp_server.messages]
    assert len(dates) == 5
    assert all(d.tzinfo is not None and abs(arrived - d) < timedelta(minutes=5) for d in dates)
