"""One SMTP session: connect (verified TLS, auth, timeouts) and run one transaction per message.

Each message is one transaction ``MAIL FROM:<bounce> / RCPT TO:<subscriber> /
DATA`` with the envelope given explicitly (STANDARDS A14, A15); pipelined
where the server offers it. A refused reply becomes a Result classified by
mailer.backends.replies (E4). A 421 or a dropped connection closes the socket
for real and says whether the message may be retried at once (E3). Every
socket has ``smtp.timeout`` (E2). TLS uses ``ssl.create_default_context()``:
certificates and host names are verified (D4); with credentials STARTTLS is
required. Parallel connections and batches are mailer.backends.smtp's.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl

from mailer.backends.base import OutgoingMessage, DeliveryOutcome, Result
from mailer.backends.replies import DATA, EOD, MAIL, RCPT, Reply, classify, enhanced_status
from mailer.config import Settings
from mailer.errors import ConfigError, DeliveryError

# a Reply class as the backend reports it: the policy tells hard from soft bounces by the status
OUTCOME = {Reply.SENT: DeliveryOutcome.SENT, Reply.TEMPORARY: DeliveryOutcome.TEMPORARY, Reply.POLICY: DeliveryOutcome.POLICY,
           Reply.HARD_BOUNCE: DeliveryOutcome.PERMANENT, Reply.SOFT_BOUNCE: DeliveryOutcome.PERMANENT,
           Reply.PERMANENT: DeliveryOutcome.PERMANENT}


class ServerBusy(DeliveryError):
    """The server answered 421 to the connection itself: try again in a moment (E3)."""


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
                    return Result(message.key, DeliveryOutcome.PERMANENT, 0,
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
            return Result(message.key, DeliveryOutcome.TEMPORARY, 0, f"{what} ({stage})"), retry
        self.delivered += 1
        text = _text(reply)
        return Result(message.key, DeliveryOutcome.SENT, code, text, enhanced_status(text)), False

    def _refused(self, message: OutgoingMessage, code: int, reply: bytes | str,
                 stage: str) -> tuple[Result, bool]:
        text = _text(reply)
        status = enhanced_status(text)
        outcome = OUTCOME[classify(code, status, stage)]
        if code == 421:
            self.drop()      # smtplib would leave the socket open after a 421 on DATA
        elif stage != EOD:
            try:
                assert self.smtp is not None
                self.smtp.rset()
            except (smtplib.SMTPException, OSError):
                self.drop()
        result = Result(message.key, outcome, code, f"{text} ({stage})", status)
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
