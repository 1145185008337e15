"""The SMTP backend: verified TLS, timeouts, reused and parallel connections, per-recipient outcomes.

Each message is one transaction ``MAIL FROM:<bounce> / RCPT TO:<subscriber> /
DATA`` with the envelope given explicitly (STANDARDS A14, A15). Replies are
classified per recipient (E4): 2xx sent, 4xx temporary, 5.1.x/5.2.x/5.4.x or
550/551/553 permanent, 5.7.x and other sender-side 5xx policy. A 421 or a
dropped connection closes the socket for real, reconnects, and retries the
message once when the server cannot have taken it (E3); otherwise it is
temporary, never a bounce. Every socket has ``smtp.timeout`` (E2). TLS uses
``ssl.create_default_context()``: certificates and host names are verified
(D4); with credentials STARTTLS is required.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

from mailer.backends.base import Backend, BatchResult, OutgoingMessage, Outcome, Result
from mailer.config import Settings
from mailer.errors import ConfigError, DeliveryError

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# stages of one transaction; EOD is the reply after the message data
MAIL, RCPT, DATA, EOD = "MAIL", "RCPT", "DATA", "EOD"


class ServerBusy(DeliveryError):
    """The server answered 421 to the connection itself: try again in a moment (E3)."""


def enhanced_status(reply: str) -> str:
    """The RFC 3463 status at the start of *reply* (``"5.1.1"``), or ``""``."""
    match = _ENHANCED.match(reply)
    return ".".join(match.groups()) if match else ""


def classify(code: int, reply: str, stage: str = RCPT) -> Outcome:
    """The outcome of an SMTP reply for the recipient of the transaction (STANDARDS E4)."""
    if 200 <= code < 300:
        return Outcome.SENT
    if 400 <= code < 500:
        return Outcome.TEMPORARY
    if stage == MAIL:
        return Outcome.POLICY          # the sender was refused: not the recipient's fault
    status = enhanced_status(reply)
    subject = status.split(".")[1] if status else ""
    if subject == "7":
        return Outcome.POLICY          # 5.7.x: authentication, DMARC, message refused as spam
    if subject in ("1", "2", "4"):
        return Outcome.PERMANENT       # addressing, mailbox, routing: a hard bounce
    if subject:
        return Outcome.POLICY          # 5.3.x system, 5.5.x protocol, 5.6.x content: ours to fix
    if code in (550, 551, 553) or (code == 552 and stage == RCPT):
        return Outcome.PERMANENT
    return Outcome.POLICY


def tls_context(settings: Settings) -> ssl.SSLContext:
    """A verifying context (D4), trusting only smtp.ca_file when it is set."""
    if not settings.smtp_ca_file:
        return ssl.create_default_context()
    path = settings.path(settings.smtp_ca_file)
    try:
        return ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"setting 'smtp.ca_file': cannot load {path}: {reason}") from None


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


class Connection:
    """One SMTP session: connect (TLS, auth), deliver messages one by one, drop for real."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.where = f"{settings.smtp_host}:{settings.smtp_port}"
        self.smtp: smtplib.SMTP | None = None
        self.delivered = 0       # messages sent on the current session

    def connect(self) -> None:
        """Open a session or raise DeliveryError naming host:port and what failed."""
        s = self.settings
        context = tls_context(s) if s.smtp_security != "none" else None
        if s.smtp_security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(timeout=s.smtp_timeout, context=context)
        else:
            smtp = smtplib.SMTP(timeout=s.smtp_timeout)
        smtp._host = s.smtp_host  # the name TLS verifies; smtplib sets it only when connecting in __init__
        try:
            code, greeting = smtp.connect(s.smtp_host, s.smtp_port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, greeting)
            smtp.ehlo()
            if s.smtp_security == "starttls":
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
                elif s.smtp_username:
                    raise DeliveryError(f"SMTP {self.where}: the server does not offer STARTTLS; "
                                        "refusing to send the password unencrypted")
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password)
        except BaseException as exc:
            _close(smtp)
            if isinstance(exc, DeliveryError):
                raise
            if isinstance(exc, smtplib.SMTPConnectError) and exc.smtp_code == 421:
                raise ServerBusy(f"SMTP {self.where}: {self._reason(exc)}") from None
            if isinstance(exc, Exception):
                raise DeliveryError(f"SMTP {self.where}: {self._reason(exc)}") from None
            raise
        self.smtp = smtp
        self.delivered = 0

    def _reason(self, exc: Exception) -> str:
        s = self.settings
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed: {exc.verify_message} (see setting 'smtp.ca_file')"
        if isinstance(exc, ssl.SSLError):
            return f"TLS handshake failed: {exc.reason or exc}"
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return f"authentication as {s.smtp_username!r} failed: {exc.smtp_code} {_text(exc.smtp_error)}"
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return f"the server does not support this: {exc}"
        if isinstance(exc, smtplib.SMTPConnectError):
            return f"the server refused the session: {exc.smtp_code} {_text(exc.smtp_error)}"
        if isinstance(exc, smtplib.SMTPResponseException):
            return f"the server answered {exc.smtp_code} {_text(exc.smtp_error)}"
        if isinstance(exc, TimeoutError) or (isinstance(exc, smtplib.SMTPServerDisconnected)
                                             and "timed out" in str(exc)):
            return f"timed out after {s.smtp_timeout:g}s"
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return "the server closed the connection before the session started"
        if isinstance(exc, socket.gaierror):
            return f"unknown host ({exc.strerror})"
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if isinstance(exc, OSError):
            return f"cannot connect: {exc.strerror or exc}"
        return f"cannot connect: {exc!r}"

    def drop(self) -> None:
        """Close the socket without a QUIT (after 421, a timeout or a lost connection)."""
        _close(self.smtp)
        self.smtp = None

    def quit(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
        self.drop()

    def deliver(self, message: OutgoingMessage) -> Result:
        """One transaction; reconnects first when needed (may raise DeliveryError then)."""
        result, retry = self._attempt(message)
        if retry:
            result, _ = self._attempt(message)
        return result

    def _attempt(self, message: OutgoingMessage) -> tuple[Result, bool]:
        """(result, whether retrying at once is safe: the server cannot have taken the message)."""
        if self.smtp is None:
            self.connect()
        smtp = self.smtp
        assert smtp is not None
        stage = MAIL
        try:
            options: list[str] = []
            if not (message.envelope_from.isascii() and message.recipient.isascii()):
                if not smtp.has_extn("smtputf8"):
                    return Result(message.key, Outcome.PERMANENT, 0,
                                  "the address is not ASCII and the server does not offer SMTPUTF8"), False
                options.append("SMTPUTF8")
            if smtp.has_extn("pipelining"):
                # RFC 2920: MAIL, RCPT and DATA in one write, then their three replies
                encoding = "utf-8" if options else "ascii"
                extra = " SMTPUTF8" if options else ""
                smtp.send(f"MAIL FROM:{_path(message.envelope_from)}{extra}\r\n"
                          f"RCPT TO:{_path(message.recipient)}\r\nDATA\r\n".encode(encoding))
                replies = []
                for stage in (MAIL, RCPT, DATA):
                    code, reply = smtp.getreply()
                    if code == 421:
                        return self._refused(message, code, reply, stage)
                    replies.append((code, reply))
                (mail_code, mail_reply), (rcpt_code, rcpt_reply), (code, reply) = replies
                if code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
                    smtp.send(b".\r\n")       # a server that said 354 anyway: end the empty message
                    smtp.getreply()
                    code, reply = 503, b"no valid recipient"
                if mail_code != 250:
                    return self._refused(message, mail_code, mail_reply, MAIL)
                if rcpt_code not in (250, 251):
                    return self._refused(message, rcpt_code, rcpt_reply, RCPT)
                if code != 354:
                    return self._refused(message, code, reply, DATA)
            else:
                code, reply = smtp.mail(message.envelope_from, options)
                if code != 250:
                    return self._refused(message, code, reply, MAIL)
                stage = RCPT
                code, reply = smtp.rcpt(message.recipient)
                if code not in (250, 251):
                    return self._refused(message, code, reply, RCPT)
                stage = DATA
                smtp.putcmd("data")
                code, reply = smtp.getreply()
                if code != 354:
                    return self._refused(message, code, reply, DATA)
            stage = EOD
            smtp.send(message.data + b".\r\n" if message.dot_safe and message.data.endswith(b"\r\n")
                      else _dot_stuff(message.data))
            code, reply = smtp.getreply()
            if code != 250:
                return self._refused(message, code, reply, EOD)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.drop()
            timed_out = isinstance(exc, TimeoutError) or "timed out" in str(exc)
            what = f"timed out after {self.settings.smtp_timeout:g}s" if timed_out else "connection lost"
            if stage == EOD:
                what += " after the message data; it may have been delivered"
            # before the data went out the server cannot have taken the message: retry at once
            retry = not timed_out and stage != EOD
            return Result(message.key, Outcome.TEMPORARY, 0, f"{what} ({stage})"), retry
        self.delivered += 1
        return Result(message.key, Outcome.SENT, code, _text(reply), enhanced_status(_text(reply))), False

    def _refused(self, message: OutgoingMessage, code: int, reply: bytes | str,
                 stage: str) -> tuple[Result, bool]:
        text = _text(reply)
        outcome = classify(code, text, stage)
        if code == 421:
            self.drop()      # smtplib would leave the socket open after a 421 on DATA
        elif stage != EOD:
            try:
                assert self.smtp is not None
                self.smtp.rset()
            except (smtplib.SMTPException, OSError):
                self.drop()
        result = Result(message.key, outcome, code, f"{text} ({stage})", enhanced_status(text))
        return result, code == 421


_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")


def _path(address: str) -> str:
    """``<address>`` for MAIL FROM / RCPT TO: a plain address as it is, anything else via smtplib.quoteaddr."""
    return f"<{address}>" if _PLAIN_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


def _dot_stuff(data: bytes) -> bytes:
    """The DATA payload: leading dots doubled, CRLF, then the end-of-data line (RFC 5321 4.5.2)."""
    data = data.replace(b"\r\n.", b"\r\n..")   # the data holds CRLF line ends only (A12)
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.close()
    except OSError:
        pass


class SMTPBackend(Backend):
    """Sends over `smtp.connections` parallel sessions, kept open across batches (E1)."""

    name = "smtp"
    OPEN_RETRY_SECONDS = 1.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.connections = [Connection(settings) for _ in range(max(1, settings.smtp_connections))]
        self._pool: ThreadPoolExecutor | None = None
        self._report_lock = threading.Lock()

    def open(self) -> None:
        """Connect the first session now, so a wrong host, password or certificate fails here.

        A 421 greeting (server busy) is retried twice, after OPEN_RETRY_SECONDS and twice that.
        """
        for attempt in range(3):
            if self.connections[0].smtp is not None:
                break
            try:
                self.connections[0].connect()
            except ServerBusy:
                if attempt == 2:
                    raise
                time.sleep(self.OPEN_RETRY_SECONDS * 2 ** attempt)
        if len(self.connections) > 1 and self._pool is None:
            self._pool = ThreadPoolExecutor(len(self.connections), thread_name_prefix="smtp")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for connection in self.connections:
            connection.quit()

    def send(self, batch: Iterable[OutgoingMessage],
             on_result: Callable[[Result], None] | None = None) -> BatchResult:
        """Send *batch* over the connections; every message gets a Result (see Backend.send).

        Each connection takes the next message as soon as it is free (no connection waits for
        another), so *batch* may be a generator that prepares each message when it is taken.
        A connection that cannot reconnect stops taking messages; the last one left reports
        each remaining message as temporary with the reason.
        """
        parallel = self._pool is not None and len(self.connections) > 1
        source = _Source(batch, len(self.connections) if parallel else 1)
        if not parallel:
            results = self._run(self.connections[0], source, on_result)
        else:
            futures = [self._pool.submit(self._run, conn, source, on_result) for conn in self.connections]
            results = [r for future in futures for r in future.result()]
        results.sort(key=lambda pair: pair[0])
        return BatchResult([result for _, result in results])

    def send_one(self, message: OutgoingMessage) -> Result:
        return self._run(self.connections[0], _Source([message], 1), None)[0][1]

    def _run(self, connection: Connection, source: "_Source",
             on_result: Callable[[Result], None] | None) -> list[tuple[int, Result]]:
        results: list[tuple[int, Result]] = []
        down = ""
        for index, message in source.take(lambda: down):
            if down:
                result = Result(message.key, Outcome.TEMPORARY, 0, down)
            else:
                try:
                    result = connection.deliver(message)
                except DeliveryError as exc:   # cannot reconnect: others go on, the last one drains
                    down = str(exc)
                    source.went_down()
                    result = Result(message.key, Outcome.TEMPORARY, 0, down)
                except Exception as exc:       # never let one message break the batch
                    connection.drop()
                    result = Result(message.key, Outcome.TEMPORARY, 0, f"unexpected error: {exc!r}")
            if on_result is not None:
                with self._report_lock:
                    on_result(result)
            else:                              # a stream reports through on_result only: nothing piles up
                results.append((index, result))
        return results


class _Source:
    """The messages of one send() call, handed out one at a time to whichever connection is free."""

    def __init__(self, batch: Iterable[OutgoingMessage], live: int) -> None:
        self.items = enumerate(batch)
        self.lock = threading.Lock()
        self.live = live      # connections still able to send (changed under self.lock)

    def went_down(self) -> None:
        with self.lock:
            self.live -= 1

    def take(self, down: Callable[[], str]) -> Iterator[tuple[int, OutgoingMessage]]:
        """Next (index, message) until the batch is done; a down connection stops unless it is the last."""
        while True:
            with self.lock:
                if down() and self.live > 0:
                    return
                item = next(self.items, None)
            if item is None:
                return
            yield item
