"""Opening an SMTP session: verified TLS (D4), STARTTLS before credentials, a timeout on the socket (E2).

`open_session` returns a ready smtplib session or raises DeliveryError as one line naming
host:port and what failed; `ServerBusy` when the greeting was 421 (E3). Transactions on the
session are mailer.backends.smtpconn's.
"""

from __future__ import annotations

import smtplib
import socket
import ssl

from mailer.config import Settings
from mailer.errors import ConfigError, DeliveryError


class ConnectionUnavailable(DeliveryError):
    """No session could be opened for a reason that may pass (refused, reset, timed out, busy)."""


class ServerBusy(ConnectionUnavailable):
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


def open_session(settings: Settings) -> smtplib.SMTP:
    """Connect, EHLO, STARTTLS and log in as the settings say, or raise DeliveryError naming host:port."""
    s = settings
    where = f"{s.smtp_host}:{s.smtp_port}"
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
                raise DeliveryError(f"SMTP {where}: the server does not offer STARTTLS; "
                                    "refusing to send the password unencrypted")
        if s.smtp_username:
            smtp.login(s.smtp_username, s.smtp_password)
    except BaseException as exc:
        close_quietly(smtp)
        if isinstance(exc, DeliveryError):
            raise
        if isinstance(exc, smtplib.SMTPConnectError) and exc.smtp_code == 421:
            raise ServerBusy(f"SMTP {where}: {reason(s, exc)}") from None
        if _passing(exc):
            raise ConnectionUnavailable(f"SMTP {where}: {reason(s, exc)}") from None
        if isinstance(exc, Exception):
            raise DeliveryError(f"SMTP {where}: {reason(s, exc)}") from None
        raise
    return smtp


def _passing(exc: BaseException) -> bool:
    """A failure to open that may pass by itself: refused, reset, timed out, dropped (not TLS, login or DNS)."""
    if isinstance(exc, (ssl.SSLError, socket.gaierror, smtplib.SMTPAuthenticationError)):
        return False
    return isinstance(exc, (ConnectionError, TimeoutError, smtplib.SMTPServerDisconnected))


def reason(settings: Settings, exc: BaseException) -> str:
    """What failed while opening a session, in words (the certificate, the password, the host)."""
    s = settings
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {exc.verify_message} (see setting 'smtp.ca_file')"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"authentication as {s.smtp_username!r} failed: {exc.smtp_code} {reply_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"the server does not support this: {exc}"
    if isinstance(exc, smtplib.SMTPConnectError):
        return f"the server refused the session: {exc.smtp_code} {reply_text(exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the server answered {exc.smtp_code} {reply_text(exc.smtp_error)}"
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


def reply_text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def close_quietly(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.close()
    except OSError:
        pass
