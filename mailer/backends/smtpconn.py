"""One SMTP connection: one transaction per message, per-recipient outcomes (STANDARDS E3, E4).

Each message is one transaction ``MAIL FROM:<bounce> / RCPT TO:<subscriber> /
DATA`` with the envelope given explicitly (A14, A15), pipelined where the
server offers it. A refused reply becomes a Result classified by
mailer.backends.replies (E4). A 421 or a dropped connection closes the socket
for real and says whether the message may be retried at once (E3). Opening the
session (TLS, login, timeouts) is mailer.backends.smtpopen's; parallel
connections and batches are mailer.backends.smtp's.
"""

from __future__ import annotations

import re
import smtplib

from mailer.backends.base import DeliveryOutcome, OutgoingMessage, Result
from mailer.backends.replies import BODY, DATA, EOD, MAIL, RCPT, Reply, classify, enhanced_status
from mailer.backends.smtpopen import close_quietly, open_session, reply_text
from mailer.config import Settings

# a Reply class as the backend reports it: the policy tells hard from soft bounces by the status
OUTCOME = {Reply.SENT: DeliveryOutcome.SENT, Reply.TEMPORARY: DeliveryOutcome.TEMPORARY,
           Reply.POLICY: DeliveryOutcome.POLICY, Reply.HARD_BOUNCE: DeliveryOutcome.PERMANENT,
           Reply.SOFT_BOUNCE: DeliveryOutcome.PERMANENT, Reply.PERMANENT: DeliveryOutcome.PERMANENT}
# a refusal before the data: (code, reply, stage)
Refusal = tuple[int, bytes, str]


class Connection:
    """One SMTP session: connect (TLS, auth), deliver messages one by one, drop for real."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None
        self.delivered = 0       # messages sent on the current session
        self.stage = MAIL        # where the current transaction is: a lost connection is judged by it

    def connect(self) -> None:
        """Open a session or raise DeliveryError naming host:port and what failed."""
        self.smtp = open_session(self.settings)
        self.delivered = 0

    def drop(self) -> None:
        """Close the socket without a QUIT (after 421, a timeout or a lost connection)."""
        close_quietly(self.smtp)
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
        self.stage = MAIL
        try:
            utf8 = not (message.envelope_from.isascii() and message.recipient.isascii())
            if utf8 and not smtp.has_extn("smtputf8"):
                return Result(message.key, DeliveryOutcome.PERMANENT, 0,
                              "the address is not ASCII and the server does not offer SMTPUTF8"), False
            refused = (self._pipelined(smtp, message, utf8) if smtp.has_extn("pipelining")
                       else self._stepwise(smtp, message, utf8))
            if refused is not None:
                return self._refused(message, *refused)
            self.stage = BODY
            smtp.send(message.data + b".\r\n" if message.dot_safe and message.data.endswith(b"\r\n")
                      else _dot_stuff(message.data))
            self.stage = EOD          # the final dot went out: from here on the server may have it
            code, reply = self._final_reply(smtp)
            if code != 250:
                return self._refused(message, code, reply, EOD)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            return self._lost(message, exc)
        self.delivered += 1
        said = reply_text(reply)
        return Result(message.key, DeliveryOutcome.SENT, code, said, enhanced_status(said)), False

    def _final_reply(self, smtp: smtplib.SMTP) -> tuple[int, bytes]:
        """The reply to the end of the data, waited for up to `smtp.data_timeout` (RFC 5321 4.5.3.2.6)."""
        sock = smtp.sock
        if sock is not None:
            sock.settimeout(self.settings.smtp_data_timeout)
        try:
            return smtp.getreply()
        finally:
            if smtp.sock is not None:
                smtp.sock.settimeout(self.settings.smtp_timeout)

    def _pipelined(self, smtp: smtplib.SMTP, message: OutgoingMessage, utf8: bool) -> Refusal | None:
        """RFC 2920: MAIL, RCPT and DATA in one write, then their three replies; the refusal if any."""
        extra = " SMTPUTF8" if utf8 else ""
        smtp.send(f"MAIL FROM:{_path(message.envelope_from)}{extra}\r\n"
                  f"RCPT TO:{_path(message.recipient)}\r\nDATA\r\n".encode("utf-8" if utf8 else "ascii"))
        replies = []
        for stage in (MAIL, RCPT, DATA):
            self.stage = stage
            code, reply = smtp.getreply()
            if code == 421:
                return code, reply, stage
            replies.append((code, reply))
        (mail_code, mail_reply), (rcpt_code, rcpt_reply), (code, reply) = replies
        if code == 354 and (mail_code != 250 or rcpt_code not in (250, 251)):
            smtp.send(b".\r\n")       # a server that said 354 anyway: end the empty message
            smtp.getreply()
            code, reply = 503, b"no valid recipient"
        if mail_code != 250:
            return mail_code, mail_reply, MAIL
        if rcpt_code not in (250, 251):
            return rcpt_code, rcpt_reply, RCPT
        return None if code == 354 else (code, reply, DATA)

    def _stepwise(self, smtp: smtplib.SMTP, message: OutgoingMessage, utf8: bool) -> Refusal | None:
        """MAIL, RCPT and DATA one reply at a time; the refusal if any."""
        code, reply = smtp.mail(message.envelope_from, ["SMTPUTF8"] if utf8 else [])
        if code != 250:
            return code, reply, MAIL
        self.stage = RCPT
        code, reply = smtp.rcpt(message.recipient)
        if code not in (250, 251):
            return code, reply, RCPT
        self.stage = DATA
        smtp.putcmd("data")
        code, reply = smtp.getreply()
        return None if code == 354 else (code, reply, DATA)

    def _lost(self, message: OutgoingMessage, exc: OSError | smtplib.SMTPException) -> tuple[Result, bool]:
        """A dropped connection, reset or timeout at self.stage.

        After the final dot (EOD) the server may have taken the message: unknown, never
        retried by itself. Before it, the server cannot have: temporary, and retried at
        once on a new connection unless it was a timeout.
        """
        self.drop()
        timed_out = isinstance(exc, TimeoutError) or "timed out" in str(exc)
        if self.stage == EOD:
            what = (f"no reply within {self.settings.smtp_data_timeout:g}s" if timed_out
                    else f"connection lost ({exc.__class__.__name__})")
            return Result(message.key, DeliveryOutcome.UNKNOWN, 0,
                          f"{what} after the message data; the server may have it ({EOD})"), False
        what = f"timed out after {self.settings.smtp_timeout:g}s" if timed_out else "connection lost"
        return Result(message.key, DeliveryOutcome.TEMPORARY, 0, f"{what} ({self.stage})"), not timed_out

    def _refused(self, message: OutgoingMessage, code: int, reply: bytes | str,
                 stage: str) -> tuple[Result, bool]:
        said = reply_text(reply)
        status = enhanced_status(said)
        outcome = OUTCOME[classify(code, status, stage)]
        if code == 421:
            self.drop()      # smtplib would leave the socket open after a 421 on DATA
        elif stage != EOD:
            try:
                assert self.smtp is not None
                self.smtp.rset()
            except (smtplib.SMTPException, OSError):
                self.drop()
        result = Result(message.key, outcome, code, f"{said} ({stage})", status)
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
