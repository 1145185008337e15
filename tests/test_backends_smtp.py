"""The SMTP backend against a real aiosmtpd server with injected failures (STANDARDS A14, A15, D4, E1-E5)."""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from mailer.backends import load_backend
from mailer.backends.base import OutgoingMessage, DeliveryOutcome, Result
from mailer.backends.replies import Reply, classify, enhanced_status
from mailer.backends.smtp import SMTPBackend
from mailer.backends.smtpconn import OUTCOME
from mailer.config import Settings
from mailer.errors import DeliveryError
from mailer.mail.message import MessageFactory, Recipient
from tests.helpers import free_port, wait_for
from tests.smtpserver import SMTPServer, make_cert, smtp_server_factory, tls_cert  # noqa: F401


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def server(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A real aiosmtpd server, with and without PIPELINING (both client code paths)."""
    with SMTPServer(pipelining=request.param) as smtp:
        yield smtp


def messages(settings: Settings, *emails: str):  # type: ignore[no-untyped-def]
    factory = MessageFactory(settings, subject="Tips & tricks", issue_slug="2026-12",
                             html="<p>Hi __mailer_name__ <a href='__mailer_unsubscribe_url__'>unsubscribe</a></p>",
                             text="Hi __mailer_name__\nUnsubscribe: __mailer_unsubscribe_url__\n.leading dot\n")
    return [factory.render(Recipient(i + 1, e, e.split("@")[0], f"uid{i}", "news", "News"))
            for i, e in enumerate(emails)]


def outcomes(results: list[Result]) -> list[DeliveryOutcome]:
    return [r.outcome for r in results]


def test_envelope_is_bounce_address_and_subscriber_and_bytes_arrive_unchanged_A14_A15(server, settings):
    """A14: MAIL FROM is the VERP bounce address; A15: RCPT TO is exactly the subscriber."""
    s = server.settings(settings, smtp_connections=1)
    batch = messages(s, "alice@example.net", "bob@example.net")
    with load_backend(s, "smtp") as backend:
        result = backend.send(batch)
    assert outcomes(result.results) == [DeliveryOutcome.SENT, DeliveryOutcome.SENT]
    got = server.messages
    assert [(m.mail_from, m.rcpt_tos) for m in got] == [
        ("bounces+1@example.org", ["alice@example.net"]), ("bounces+2@example.org", ["bob@example.net"])]
    assert [m.data for m in got] == [m.data for m in batch]   # CRLF kept, nothing stuffed or lost
    text = message_from_bytes(got[0].data, policy=policy.SMTP).get_body(("plain",)).get_content()
    assert "\n.leading dot\r\n" in text     # sent as =2E: no line of the bytes starts with a dot
    assert all(b"\nBcc:" not in m.data for m in got)


def test_a_message_not_built_dot_safe_is_dot_stuffed_on_the_wire(server, settings):
    """RFC 5321 4.5.2: bytes from elsewhere (a plugin, a test send) with lines starting with "." arrive whole."""
    s = server.settings(settings, smtp_connections=1)
    data = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: dots\r\n\r\n"
            b".one\r\n..two\r\n.\r\nlast\r\n")
    message = OutgoingMessage(7, "bounces@example.org", "b@example.net", "<x@example.org>", data)
    with load_backend(s, "smtp") as backend:
        assert outcomes(backend.send([message]).results) == [DeliveryOutcome.SENT]
    assert [m.data for m in server.messages] == [data]


def test_connection_reused_across_batches_E1(server, settings):
    """E1: 3 batches over 1 connection: one TCP connection at the server."""
    s = server.settings(settings, smtp_connections=1)
    with SMTPBackend(s) as backend:
        for i in range(3):
            backend.send(messages(s, *[f"r{i}-{j}@example.net" for j in range(4)]))
    assert len(server.messages) == 12
    assert server.connections == 1


def test_parallel_connections_each_message_once_E1_E6(server, settings):
    """E1/E6: smtp.connections=3 uses 3 sessions, never more at once; every message arrives once."""
    s = server.settings(settings, smtp_connections=3)
    emails = [f"p{j}@example.net" for j in range(30)]
    with SMTPBackend(s) as backend:
        first = backend.send(messages(s, *emails[:15]))
        second = backend.send(messages(s, *emails[15:]))
    assert [r.key for r in first.results] == list(range(1, 16))      # in batch order
    assert all(r.outcome is DeliveryOutcome.SENT for r in first.results + second.results)
    assert sorted(server.recipients()) == sorted(emails)
    assert server.connections == 3
    assert server.peak_connections <= 3


def test_each_result_reported_before_the_next_message_E5(server, settings):
    """E5: on_result sees each 250 before the next message starts on that connection."""
    s = server.settings(settings, smtp_connections=1)
    seen: list[tuple[int | str, int]] = []
    with SMTPBackend(s) as backend:
        backend.send(messages(s, "a@example.net", "b@example.net", "c@example.net"),
                     on_result=lambda r: seen.append((r.key, len(server.messages))))
    assert seen == [(1, 1), (2, 2), (3, 3)]


def test_per_recipient_classification_E4(server, settings):
    """E4: 4xx temporary, 5.1.1 / 550 user unknown permanent, 5.7.1 policy; the batch goes on."""
    s = server.settings(settings, smtp_connections=1)
    server.fail("RCPT", "450 4.2.0 mailbox busy", address="busy@example.net")
    server.fail("RCPT", "550 5.1.1 <gone@example.net>: user unknown", address="gone@example.net")
    server.fail("RCPT", "550 user unknown", address="old@example.net")
    server.fail("EOD", "554 5.7.1 message refused: not RFC 5322 compliant", address="spam@example.net")
    emails = ["busy@example.net", "gone@example.net", "old@example.net", "spam@example.net", "ok@example.net"]
    with SMTPBackend(s) as backend:
        results = backend.send(messages(s, *emails)).results
    assert outcomes(results) == [DeliveryOutcome.TEMPORARY, DeliveryOutcome.PERMANENT, DeliveryOutcome.PERMANENT,
                                 DeliveryOutcome.POLICY, DeliveryOutcome.SENT]
    assert results[1].status == "5.1.1" and results[1].code == 550
    assert "user unknown" in results[1].reply
    assert results[3].status == "5.7.1"
    assert server.recipients() == ["ok@example.net"]
    assert server.connections == 1   # refusals reset the transaction, not the connection


@pytest.mark.parametrize("stage", ["MAIL", "RCPT", "DATA", "EOD"])
def test_421_drops_connection_reconnects_and_retries_not_a_bounce_E3(server, settings, stage):
    """E3: a 421 at MAIL, RCPT, DATA or end of data: socket closed, new session, message retried once."""
    s = server.settings(settings, smtp_connections=1)
    server.fail(stage, "421 4.3.2 service shutting down", times=1)
    with SMTPBackend(s) as backend:
        results = backend.send(messages(s, "a@example.net", "b@example.net")).results
        assert wait_for(lambda: server._state.active == 1)   # the old socket is really closed
    assert outcomes(results) == [DeliveryOutcome.SENT, DeliveryOutcome.SENT]
    assert server.recipients() == ["a@example.net", "b@example.net"]
    assert server.connections == 2


def test_421_then_421_on_reconnect_reopens_with_backoff_and_sends_E3(server, settings):
    """E3: 421 mid-transaction, then 421 on the reconnect: the connection is reopened after a backoff
    and the message goes once (the connection's trouble is not the recipient's)."""
    s = server.settings(settings, smtp_connections=1)
    with SMTPBackend(s) as backend:
        server.fail("RCPT", "421 4.7.0 too many connections", times=1)
        server.fail("CONNECT", "421 4.7.0 try again later", times=2)
        started = time.monotonic()
        first = backend.send(messages(s, "a@example.net")).results
        waited = time.monotonic() - started
        second = backend.send(messages(s, "b@example.net")).results
    assert first[0].outcome is DeliveryOutcome.SENT and second[0].outcome is DeliveryOutcome.SENT
    assert waited >= SMTPBackend.RECONNECT_BASE_SECONDS * 3       # 0.5 s, then 1 s: bounded backoff
    assert server.recipients() == ["a@example.net", "b@example.net"]


def test_no_connection_within_reconnect_seconds_stops_the_batch_E3(settings):
    """A server that stays away: each refused reopen waits, and after smtp.reconnect_seconds the batch
    stops with one line (DeliveryError) instead of charging the recipients."""
    server = SMTPServer().start()
    s = server.settings(settings, smtp_connections=1, smtp_reconnect_seconds=1.0)
    backend = SMTPBackend(s)
    backend.open()
    server.stop()
    try:
        with pytest.raises(DeliveryError, match=r"connection refused \(no connection for 1 s; smtp.reconnect_seconds\)"):
            backend.send(messages(s, "a@example.net", "b@example.net"))
    finally:
        backend.close()


def test_dropped_connection_after_data_is_unknown_and_never_retried_E5(server, settings):
    """E5: a connection lost after the data: that one unknown (the server may have it), never retried
    by the backend, no double; a drop before the data is retried at once; the batch goes on."""
    s = server.settings(settings, smtp_connections=1)
    server.drop("EOD", address="b@example.net", times=1)
    server.drop("RCPT", address="c@example.net", times=1)
    with SMTPBackend(s) as backend:
        results = backend.send(messages(s, "a@example.net", "b@example.net", "c@example.net", "d@example.net")).results
    assert outcomes(results) == [DeliveryOutcome.SENT, DeliveryOutcome.UNKNOWN, DeliveryOutcome.SENT, DeliveryOutcome.SENT]
    assert "the server may have it" in results[1].reply
    assert server.recipients() == ["a@example.net", "c@example.net", "d@example.net"]


def test_slow_reply_times_out_E2(server, settings):
    """E2: a server that does not answer: the socket times out after smtp.timeout, temporary; next one sent."""
    s = server.settings(settings, smtp_connections=1, smtp_timeout=0.5)
    server.delay("RCPT", 3.0, address="slow@example.net", times=1)
    with SMTPBackend(s) as backend:
        started = time.monotonic()
        results = backend.send(messages(s, "slow@example.net", "fast@example.net")).results
        elapsed = time.monotonic() - started
    assert outcomes(results) == [DeliveryOutcome.TEMPORARY, DeliveryOutcome.SENT]
    assert "timed out after 0.5s" in results[0].reply
    assert elapsed < 2.5
    assert server.recipients() == ["fast@example.net"]


def test_silent_greeting_times_out_at_open_E2(server, settings):
    """E2: no greeting: open() fails after smtp.timeout with one clear line."""
    s = server.settings(settings, smtp_timeout=0.5)
    server.delay("CONNECT", 3.0)
    with pytest.raises(DeliveryError, match=rf"^SMTP 127.0.0.1:{server.port}: timed out after 0.5s$"):
        SMTPBackend(s).open()


def test_unreachable_server_is_one_clear_line(settings):
    port = free_port()
    s = settings.replace(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", smtp_timeout=2.0)
    with pytest.raises(DeliveryError, match=rf"^SMTP 127.0.0.1:{port}: connection refused$"):
        SMTPBackend(s).open()


def test_starttls_self_signed_fails_verification_D4(smtp_server_factory, settings, tls_cert):
    """D4: STARTTLS verifies the certificate: a self-signed one is refused with a clear DeliveryError."""
    server = smtp_server_factory(tls_cert=tls_cert)
    s = server.settings(settings)
    assert s.smtp_security == "starttls"
    with pytest.raises(DeliveryError, match=r"TLS certificate verification failed: self[- ]signed"):
        SMTPBackend(s).open()
    assert server.messages == []


def test_starttls_trusted_with_ca_file_sends_encrypted_D4(smtp_server_factory, settings, tls_cert):
    """D4: with smtp.ca_file naming the certificate, STARTTLS verifies and the message goes over TLS."""
    server = smtp_server_factory(tls_cert=tls_cert)
    s = server.settings(settings, smtp_ca_file=str(tls_cert[0]))
    with SMTPBackend(s) as backend:
        results = backend.send(messages(s, "a@example.net")).results
    assert outcomes(results) == [DeliveryOutcome.SENT]
    assert [m.tls for m in server.messages] == [True]


def test_hostname_mismatch_is_refused_D4(smtp_server_factory, settings, tmp_path: Path):
    """D4: a trusted certificate for another host name is refused (check_hostname)."""
    cert = make_cert(tmp_path, common_name="mail.example.com", alt_names="DNS:mail.example.com")
    server = smtp_server_factory(tls_cert=cert)
    s = server.settings(settings, smtp_ca_file=str(cert[0]))
    with pytest.raises(DeliveryError, match="TLS certificate verification failed: .*(mismatch|match)"):
        SMTPBackend(s).open()


def test_implicit_tls_verified_D4(smtp_server_factory, settings, tls_cert):
    """D4: smtp.security=tls (port 465 style) verifies too; trusted via ca_file it sends."""
    server = smtp_server_factory(tls_cert=tls_cert, implicit_tls=True)
    with pytest.raises(DeliveryError, match="TLS certificate verification failed"):
        SMTPBackend(server.settings(settings)).open()
    s = server.settings(settings, smtp_ca_file=str(tls_cert[0]))
    with SMTPBackend(s) as backend:
        assert outcomes(backend.send(messages(s, "a@example.net")).results) == [DeliveryOutcome.SENT]
    assert [m.tls for m in server.messages] == [True]


def test_credentials_require_starttls_D4(server, settings):
    """D4: with a username configured and no STARTTLS offered, nothing is sent and the password stays home."""
    s = server.settings(settings, smtp_security="starttls", smtp_username="group", smtp_password="pw")
    with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        SMTPBackend(s).open()


def test_authentication_over_starttls(smtp_server_factory, settings, tls_cert):
    server = smtp_server_factory(tls_cert=tls_cert, credentials=("group", "right"))
    good = server.settings(settings, smtp_ca_file=str(tls_cert[0]), smtp_username="group", smtp_password="right")
    with SMTPBackend(good) as backend:
        assert outcomes(backend.send(messages(good, "a@example.net")).results) == [DeliveryOutcome.SENT]
    bad = good.replace(smtp_password="wrong")
    with pytest.raises(DeliveryError, match=rf"^SMTP 127.0.0.1:{server.port}: authentication as 'group' failed: 535"):
        SMTPBackend(bad).open()
    assert server.recipients() == ["a@example.net"]


@pytest.mark.parametrize("code, reply, stage, expected", [
    (250, "2.0.0 ok", "EOD", DeliveryOutcome.SENT),
    (450, "4.2.1 try later", "RCPT", DeliveryOutcome.TEMPORARY),
    (421, "4.3.2 bye", "EOD", DeliveryOutcome.TEMPORARY),
    (550, "5.1.1 user unknown", "RCPT", DeliveryOutcome.PERMANENT),
    (550, "5.1.1 user unknown", "EOD", DeliveryOutcome.PERMANENT),
    (552, "5.2.2 mailbox full", "RCPT", DeliveryOutcome.PERMANENT),
    (550, "5.7.26 unauthenticated mail", "EOD", DeliveryOutcome.POLICY),
    (554, "5.7.1 refused", "RCPT", DeliveryOutcome.POLICY),
    (550, "user unknown", "RCPT", DeliveryOutcome.PERMANENT),
    (554, "transaction failed", "EOD", DeliveryOutcome.POLICY),
    (553, "5.1.8 sender domain does not exist", "MAIL", DeliveryOutcome.POLICY),
    (500, "syntax error", "DATA", DeliveryOutcome.POLICY),
])
def test_classify_E4(code, reply, stage, expected):
    """E4: the reply classification table (5.7.x is never a recipient bounce)."""
    assert OUTCOME[classify(code, enhanced_status(reply), stage)] is expected


@pytest.mark.parametrize("code, reply, stage, expected", [
    (250, "2.0.0 ok", "EOD", Reply.SENT),
    (451, "4.3.0 try later", "RCPT", Reply.TEMPORARY),
    (452, "4.2.2 mailbox full for now", "RCPT", Reply.TEMPORARY),
    (550, "5.1.1 user unknown", "RCPT", Reply.HARD_BOUNCE),
    (550, "5.1.10 null MX", "RCPT", Reply.HARD_BOUNCE),
    (550, "5.2.1 mailbox disabled", "RCPT", Reply.HARD_BOUNCE),
    (552, "5.2.2 mailbox full", "RCPT", Reply.SOFT_BOUNCE),
    (552, "5.2.2 mailbox full", "EOD", Reply.SOFT_BOUNCE),
    (552, "5.2.3 message too large", "EOD", Reply.SOFT_BOUNCE),
    (550, "5.2.4 list expansion problem", "RCPT", Reply.SOFT_BOUNCE),
    (550, "5.2.0 mailbox unavailable", "RCPT", Reply.SOFT_BOUNCE),
    (550, "5.4.4 unable to route", "RCPT", Reply.PERMANENT),
    (550, "user unknown", "RCPT", Reply.PERMANENT),
    (551, "user not local", "RCPT", Reply.PERMANENT),
    (553, "mailbox name not allowed", "RCPT", Reply.PERMANENT),
    (552, "storage exceeded", "RCPT", Reply.PERMANENT),
    (552, "storage exceeded", "EOD", Reply.POLICY),
    (550, "5.7.26 unauthenticated mail", "EOD", Reply.POLICY),
    (550, "5.1.8 sender domain does not exist", "MAIL", Reply.POLICY),
    (554, "5.6.0 content rejected", "EOD", Reply.POLICY),
    (554, "transaction failed", "EOD", Reply.POLICY),
])
def test_reply_classes_E4(code, reply, stage, expected):
    """E4: each class of reply: 5.1.x and 5.2.1 hard bounces, every other 5.2.x soft, other recipient 5xx
    permanent, 5.7.x and sender-side refusals policy."""
    assert classify(code, enhanced_status(reply), stage) is expected


@pytest.mark.parametrize("text, anywhere, expected", [
    ("5.1.1 user unknown", False, "5.1.1"), ("  4.2.2 full", False, "4.2.2"), ("5.7.26 no", False, "5.7.26"),
    ("user 5.1.1 unknown", False, ""), ("user 5.1.1 unknown", True, "5.1.1"), ("5.1.1000 x", False, ""),
    ("smtp; 550 5.2.2 <a@b>: full", True, "5.2.2"), ("3.1.1 not a status", False, ""),
])
def test_enhanced_status_is_parsed_one_way_E4(text, anywhere, expected):
    """RFC 3463 class.subject.detail, parsed by one function for the backend, the policy and the DSN parser."""
    assert enhanced_status(text, anywhere=anywhere) == expected


def test_421_greeting_at_open_is_retried_E3(server, settings, monkeypatch):
    """E3: a 421 on connect: the connection is dropped and tried again; a server busy for good is one line."""
    monkeypatch.setattr(SMTPBackend, "OPEN_RETRY_SECONDS", 0.05)
    s = server.settings(settings, smtp_connections=1)
    server.fail("CONNECT", "421 4.7.0 too busy, try later", times=1)
    with SMTPBackend(s) as backend:
        assert outcomes(backend.send(messages(s, "a@example.net")).results) == [DeliveryOutcome.SENT]
    assert server.connections == 2
    server.fail("CONNECT", "421 4.7.0 too busy, try later")
    with pytest.raises(DeliveryError, match=r"the server refused the session: 421 4.7.0 too busy"):
        SMTPBackend(s).open()


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_a_non_ascii_address_goes_out_with_smtputf8_only_where_offered(settings, pipelining):
    """RFC 6531: an internationalised address is sent with SMTPUTF8 when the server offers it,
    and is a permanent failure (not a crash, nothing sent) when it does not."""
    with SMTPServer(pipelining=pipelining, smtputf8=True) as server:
        s = server.settings(settings, smtp_connections=1)
        batch = messages(s, "änä@example.org", "bo@example.net")
        with load_backend(s, "smtp") as backend:
            assert outcomes(backend.send(batch).results) == [DeliveryOutcome.SENT, DeliveryOutcome.SENT]
        assert [m.rcpt_tos for m in server.messages] == [["änä@example.org"], ["bo@example.net"]]
        assert server.messages[0].data == batch[0].data      # the To header in raw UTF-8, unchanged
        assert "\r\n <änä@example.org>\r\n".encode() in server.messages[0].data.partition(b"\r\n\r\n")[0]
    with SMTPServer(pipelining=pipelining) as server:
        s = server.settings(settings, smtp_connections=1)
        with load_backend(s, "smtp") as backend:
            results = backend.send(messages(s, "änä@example.org", "bo@example.net")).results
        assert outcomes(results) == [DeliveryOutcome.PERMANENT, DeliveryOutcome.SENT]
        assert "SMTPUTF8" in results[0].reply
        assert [m.rcpt_tos for m in server.messages] == [["bo@example.net"]]


def test_final_reply_waits_data_timeout_not_command_timeout_E2(server, settings):
    """E2, RFC 5321 4.5.3.2.6: the reply to the end of the data may take longer than a command's
    timeout (smtp.data_timeout); past that the outcome is unknown, never temporary."""
    s = server.settings(settings, smtp_connections=1, smtp_timeout=0.5, smtp_data_timeout=3.0)
    server.delay("EOD", 1.5, address="slow@example.net", times=1)
    server.delay("EOD", 5.0, address="stalled@example.net", times=1)
    with SMTPBackend(s) as backend:
        results = backend.send(messages(s, "slow@example.net", "stalled@example.net", "next@example.net")).results
    assert outcomes(results) == [DeliveryOutcome.SENT, DeliveryOutcome.UNKNOWN, DeliveryOutcome.SENT]
    assert "no reply within 3s after the message data" in results[1].reply
