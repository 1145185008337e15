"""A real SMTP server for tests: aiosmtpd on a free loopback port, with failures injected on demand.

Use the fixtures (import them into a test module, or list this module in
``pytest_plugins``)::

    from tests.smtpserver import smtp_server, smtp_server_factory, tls_cert  # noqa: F401

    def test_something(smtp_server, settings):
        settings = smtp_server.settings(settings)           # smtp.host/port/security=none
        smtp_server.fail("RCPT", "550 5.1.1 <bob@x.org>: user unknown", address="bob@x.org")
        smtp_server.fail("DATA", "421 4.3.2 shutting down", times=1)   # then closes the connection
        smtp_server.drop("EOD", times=1)                    # drop the connection after the data
        smtp_server.delay("RCPT", 5.0, address="slow@x.org")  # a slow reply
        ... send ...
        assert [m.rcpt_tos for m in smtp_server.messages] == [["alice@x.org"]]
        assert smtp_server.connections == 1 and smtp_server.peak_connections <= 2

Stages: ``CONNECT`` (the greeting), ``MAIL``, ``RCPT``, ``DATA`` (the reply to
the DATA command, before 354), ``EOD`` (the reply after the message data).
A rule matches every time (``times=None``) or *times* times; with *address*
it matches only that envelope sender (MAIL) or recipient (RCPT, DATA, EOD).
A reply starting with 421 closes the connection after it, as servers do.
The server advertises PIPELINING (RFC 2920) unless ``pipelining=False``, and SMTPUTF8
(RFC 6531) with ``smtputf8=True``.
`messages` holds what was accepted: envelope and the exact bytes received.
The server runs in its own thread; `stop()` (done by the fixtures) stops it.
For a server in another process use `SMTPServer` directly (start/stop).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from mailer.config import Settings
from tests.helpers import free_port

STAGES = ("CONNECT", "MAIL", "RCPT", "DATA", "EOD")
_ADDRESS = re.compile(r"<([^>]*)>")


@dataclass
class Rule:
    """One injected behaviour: a reply, a dropped connection and/or a delay at a stage."""

    stage: str
    reply: str | None = None
    drop: bool = False
    delay: float = 0.0
    address: str | None = None
    times: int | None = None
    hits: int = 0

    def matches(self, stage: str, addresses: list[str]) -> bool:
        if stage != self.stage or (self.times is not None and self.hits >= self.times):
            return False
        return self.address is None or self.address.lower() in (a.lower() for a in addresses)


@dataclass
class Received:
    """A message the server accepted (250 after end of data)."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    connection: int
    tls: bool


@dataclass
class _State:
    rules: list[Rule] = field(default_factory=list)
    messages: list[Received] = field(default_factory=list)
    pipelining: bool = True
    connections: int = 0
    active: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, stage: str, addresses: list[str]) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(stage, addresses):
                    rule.hits += 1
                    return rule
        return None


class _InjectingSMTP(SMTP):
    """aiosmtpd's SMTP with the rules of `_State` applied before each command's own handling."""

    def __init__(self, handler: Any, state: _State, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._state = state
        self._conn_no = 0

    async def _apply(self, stage: str, addresses: list[str]) -> bool:
        """Apply a matching rule; True when it answered (or dropped) instead of the server."""
        rule = self._state.take(stage, addresses)
        if rule is None:
            return False
        if rule.delay:
            await asyncio.sleep(rule.delay)
        if rule.drop:
            self.transport.abort()
            return True
        if rule.reply is None:
            return False
        await self.push(rule.reply)
        if rule.reply.startswith("421"):
            self.transport.close()
        return True

    async def _handle_client(self) -> None:
        with self._state.lock:
            self._state.connections += 1
            self._state.active += 1
            self._state.peak = max(self._state.peak, self._state.active)
            self._conn_no = self._state.connections
        self.session.connection_no = self._conn_no  # type: ignore[attr-defined]
        try:
            if not await self._apply("CONNECT", []):
                await super()._handle_client()
        finally:
            with self._state.lock:
                self._state.active -= 1

    async def smtp_MAIL(self, arg: str | None) -> None:
        found = _ADDRESS.findall(arg or "")
        if self.session.host_name and await self._apply("MAIL", found[:1]):
            return
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if self.envelope.mail_from is not None and await self._apply("RCPT", _ADDRESS.findall(arg or "")[:1]):
            return
        await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg: str | None) -> None:
        if self.envelope.rcpt_tos and await self._apply("DATA", list(self.envelope.rcpt_tos)):
            return
        await super().smtp_DATA(arg)


class _Handler:
    """Records accepted messages; applies EOD rules."""

    def __init__(self, state: _State) -> None:
        self.state = state

    async def handle_EHLO(self, server: _InjectingSMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.state.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server: _InjectingSMTP, session: Session, envelope: Envelope) -> str:
        rule = self.state.take("EOD", list(envelope.rcpt_tos))
        if rule is not None:
            if rule.delay:
                await asyncio.sleep(rule.delay)
            if rule.drop:
                server.transport.abort()
                return "250 never seen"
            if rule.reply is not None:
                if rule.reply.startswith("421"):
                    asyncio.get_running_loop().call_soon(server.transport.close)
                return rule.reply
        with self.state.lock:
            self.state.messages.append(Received(
                mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
                data=bytes(envelope.original_content or b""),
                connection=getattr(session, "connection_no", 0), tls=server.transport.get_extra_info("ssl_object") is not None,
            ))
        return "250 2.0.0 OK queued"


class _Controller(Controller):
    def __init__(self, handler: _Handler, **kwargs: Any) -> None:
        self._inject_state = handler.state
        super().__init__(handler, **kwargs)

    def factory(self) -> SMTP:
        return _InjectingSMTP(self.handler, self._inject_state, **self.SMTP_kwargs)


class SMTPServer:
    """An aiosmtpd server on 127.0.0.1:<free port> with injectable failures (see module doc)."""

    def __init__(self, *, tls_cert: tuple[Path, Path] | None = None,
                 credentials: tuple[str, str] | None = None, implicit_tls: bool = False,
                 pipelining: bool = True, smtputf8: bool = False) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self._state = _State(pipelining=pipelining)
        kwargs: dict[str, Any] = {"hostname": self.host, "port": self.port, "ready_timeout": 10.0,
                                  "data_size_limit": 0, "enable_SMTPUTF8": smtputf8}
        context = None
        if tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls_cert[0]), str(tls_cert[1]))
        if implicit_tls:
            kwargs["ssl_context"] = context
        elif context is not None:
            kwargs["tls_context"] = context
        if credentials is not None:
            kwargs["authenticator"] = _authenticator(*credentials)
            kwargs["auth_require_tls"] = tls_cert is not None
        self.implicit_tls = implicit_tls
        self.starttls = tls_cert is not None and not implicit_tls
        self._controller = _Controller(_Handler(self._state), **kwargs)

    def start(self) -> "SMTPServer":
        self._controller.start()
        self.reset()  # forget the controller's own readiness probe
        return self

    def stop(self) -> None:
        self._controller.stop(no_assert=True)

    def __enter__(self) -> "SMTPServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- injection ---------------------------------------------------------------------------
    def fail(self, stage: str, reply: str, *, address: str | None = None, times: int | None = None) -> Rule:
        """Answer *reply* (e.g. ``"450 4.2.0 try later"``) at *stage* instead of the normal reply."""
        return self._add(Rule(stage, reply=reply, address=address, times=times))

    def drop(self, stage: str, *, address: str | None = None, times: int | None = None) -> Rule:
        """Close the connection at *stage* without a reply."""
        return self._add(Rule(stage, drop=True, address=address, times=times))

    def delay(self, stage: str, seconds: float, *, address: str | None = None,
              times: int | None = None) -> Rule:
        """Wait *seconds* at *stage* before answering normally (a slow server)."""
        return self._add(Rule(stage, delay=seconds, address=address, times=times))

    def _add(self, rule: Rule) -> Rule:
        if rule.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}")
        with self._state.lock:
            self._state.rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        with self._state.lock:
            self._state.rules.clear()

    def reset(self) -> None:
        """Forget rules, messages and connection counts."""
        with self._state.lock:
            self._state.rules.clear()
            self._state.messages.clear()
            self._state.connections = 0
            self._state.peak = self._state.active

    # --- observations ------------------------------------------------------------------------
    @property
    def messages(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.messages)

    @property
    def connections(self) -> int:
        """TCP connections accepted since start (or reset)."""
        return self._state.connections

    @property
    def peak_connections(self) -> int:
        """The most connections open at one time."""
        return self._state.peak

    def recipients(self) -> list[str]:
        return [r for m in self.messages for r in m.rcpt_tos]

    def settings(self, base: Settings, **changes: Any) -> Settings:
        """*base* pointed at this server (security none, or starttls/tls when it has TLS)."""
        security = "tls" if self.implicit_tls else ("starttls" if self.starttls else "none")
        values: dict[str, Any] = {"smtp_host": self.host, "smtp_port": self.port,
                                  "smtp_security": security, "smtp_timeout": 5.0}
        values.update(changes)
        return base.replace(**values)


def _authenticator(username: str, password: str) -> Callable[..., AuthResult]:
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = (isinstance(data, LoginPassword) and data.login.decode() == username
              and data.password.decode() == password)
        return AuthResult(success=ok, handled=False)
    return check


def make_cert(folder: Path, common_name: str = "localhost",
              alt_names: str = "DNS:localhost,IP:127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate (default: for localhost and 127.0.0.1), made by the openssl CLI: (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", f"/CN={common_name}",
         "-addext", f"subjectAltName={alt_names}"],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(cert.pem, key.pem): self-signed for localhost / 127.0.0.1."""
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """A plain SMTP server (no TLS, no auth) on a free port; stopped after the test."""
    with SMTPServer() as server:
        yield server


@pytest.fixture
def smtp_server_factory() -> Iterator[Callable[..., SMTPServer]]:
    """Start servers with options (tls_cert=, credentials=, implicit_tls=, pipelining=); all stopped after the test."""
    started: list[SMTPServer] = []

    def start(**kwargs: Any) -> SMTPServer:
        server = SMTPServer(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
