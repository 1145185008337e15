"""POP3 and IMAP mailboxes (`mailer.people.mailbox.Mailbox`) over TLS that is always verified.

``imaps://`` and ``pop3s://`` speak TLS from the start; ``imap://`` and ``pop3://`` must upgrade
with STARTTLS/STLS (a server that cannot is refused: the password never goes in clear). Any
failure (unreachable, refused login, untrusted certificate, a command answered NO) is one
MailboxError line naming the mailbox without its password. The standard library and the floor only.
"""

from __future__ import annotations

import imaplib
import poplib
import re
import ssl
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit

from mailer.errors import MailboxError
from mailer.people.mailbox import Letter, Mailbox, message_id_of
from mailer.settingrules import MAILBOX_SCHEMES

TIMEOUT = 30.0


@dataclass(frozen=True)
class Account:
    """A remote mailbox: ``imaps://user@host:993/INBOX``, ``pop3s://user@host`` (or STARTTLS on imap://, pop3://)."""

    scheme: str
    user: str
    host: str
    port: int
    folder: str

    @classmethod
    def parse(cls, url: str) -> "Account":
        parts = urlsplit(url)
        folder = unquote(parts.path.strip("/")) or "INBOX"
        return cls(parts.scheme, unquote(parts.username or ""), parts.hostname or "",
                   parts.port or MAILBOX_SCHEMES[parts.scheme], folder)

    @property
    def label(self) -> str:
        where = f"{self.scheme}://{self.user}@{self.host}:{self.port}"
        return where + (f"/{self.folder}" if self.scheme.startswith("imap") else "")


def _tls(ca_file: str, section: str = "bounces") -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise MailboxError(f"{ca_file}: cannot load CA certificates (--ca-file, {section}.ca_file): {detail}") from None


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value: object) -> str:
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:200]


class Remote(Mailbox):
    """What IMAP and POP3 share: the account, the password, TLS, and one-line errors.

    *section* names the settings the errors point to: ``bounces`` or ``submissions``."""

    def __init__(self, account: Account, password: str, ca_file: str, section: str = "bounces") -> None:
        if not password:
            secret = f"MAILER_{section.upper()}_PASSWORD"
            raise MailboxError(f"{account.label}: no password: set {secret} (or {secret}_FILE)")
        self.account, self.password, self.ca_file, self.label = account, password, ca_file, account.label
        self.section = section

    def fail(self, what: str, exc: BaseException) -> MailboxError:
        if isinstance(exc, ssl.SSLCertVerificationError):
            detail = f"TLS certificate not trusted ({exc.verify_message}); see {self.section}.ca_file"
        elif isinstance(exc, OSError):
            detail = exc.strerror or str(exc) or type(exc).__name__
        else:
            detail = _text(exc.args[0] if exc.args else exc)
        return MailboxError(f"{self.label}: {what}: {detail}")


class Imap(Remote):
    """An IMAP folder: processed reports are flagged \\Seen, and moved to *done_folder* when given."""

    def __init__(self, account: Account, password: str, ca_file: str, done_folder: str = "",
                 section: str = "bounces") -> None:
        super().__init__(account, password, ca_file, section)
        if done_folder == account.folder:
            raise MailboxError(f"{account.label}: {section}.done_folder must be another folder than the one read")
        self.done_folder, self.created = done_folder, False
        self.moved: list[str] = []     # copied to done_folder, to expunge (servers without MOVE)

    def open(self) -> None:
        a, context = self.account, _tls(self.ca_file, self.section)
        try:
            if a.scheme == "imaps":
                self.conn = imaplib.IMAP4_SSL(a.host, a.port, ssl_context=context, timeout=TIMEOUT)
            else:
                self.conn = imaplib.IMAP4(a.host, a.port, timeout=TIMEOUT)
                self.conn.starttls(context)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self.fail("cannot connect", exc) from None
        try:
            self.conn.login(a.user, self.password)
        except imaplib.IMAP4.error as exc:
            self.conn.shutdown()
            raise self.fail("login refused", exc) from None
        except OSError as exc:
            raise self.fail("login failed", exc) from None

    def _call(self, what: str, command: str, *args: str) -> list[Any]:
        """One IMAP command (UID ... for the per-message ones); MailboxError unless it answers OK."""
        try:
            if command in ("SEARCH", "FETCH", "STORE", "COPY", "MOVE", "EXPUNGE"):
                kind, data = self.conn.uid(command, *args)
            else:
                kind, data = getattr(self.conn, command)(*args)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise self.fail(what, exc) from None
        if kind != "OK":
            raise MailboxError(f"{self.label}: {what}: {_text(data)}")
        return data

    def letters(self) -> Iterator[Letter]:
        self._call(f"cannot open folder {self.account.folder!r}", "select", _quote(self.account.folder))
        [found] = self._call("search failed", "SEARCH", "UNDELETED")
        uids = found.decode().split()
        if not uids:
            return
        headers = self._call("fetch failed", "FETCH", ",".join(uids),
                             "(UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        for uid, message_id in _imap_header_ids(headers):
            yield Letter(f"{self.label} uid {uid}", message_id, uid, fetch=lambda uid=uid: self._body(uid))

    def _body(self, uid: str) -> bytes:
        for item in self._call("fetch failed", "FETCH", uid, "(BODY.PEEK[])"):
            if isinstance(item, tuple):
                return item[1]
        raise MailboxError(f"{self.label}: uid {uid} is gone")

    def done(self, letter: Letter) -> None:
        uid = letter.handle
        self._call("cannot flag \\Seen", "STORE", uid, "+FLAGS.SILENT", "(\\Seen)")
        folder = self.done_folder
        if not folder:
            return
        if not self.created:
            try:
                self.conn.create(_quote(folder))    # NO when it exists: fine
            except (OSError, imaplib.IMAP4.error) as exc:
                raise self.fail(f"cannot create folder {folder!r}", exc) from None
            self.created = True
        if "MOVE" in self._capabilities():
            self._call(f"cannot move to {folder!r}", "MOVE", uid, _quote(folder))
        else:
            self._call(f"cannot copy to {folder!r}", "COPY", uid, _quote(folder))
            self._call("cannot flag \\Deleted", "STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
            self.moved.append(uid)

    def _capabilities(self) -> tuple[str, ...]:
        if not hasattr(self, "_caps"):
            [line] = self._call("capability failed", "capability")
            self._caps = tuple(line.decode().upper().split())
        return self._caps

    def close(self, commit: bool) -> None:
        try:
            if commit and self.moved:
                if "UIDPLUS" in self._capabilities():
                    self._call("expunge failed", "EXPUNGE", ",".join(self.moved))
                else:
                    self._call("expunge failed", "expunge")
            self.conn.logout()
        except (OSError, imaplib.IMAP4.error):
            self.conn.shutdown()


_UID = re.compile(rb"UID (\d+)")


def _imap_header_ids(response: list[Any]) -> Iterator[tuple[str, str]]:
    """(uid, Message-ID) pairs of a ``UID FETCH (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])`` answer."""
    for item in response:
        if isinstance(item, tuple):
            match = _UID.search(item[0])
            if match:
                yield match.group(1).decode(), message_id_of(item[1])


class Pop3(Remote):
    """A POP3 mailbox: processed reports are deleted, which the server does at QUIT."""

    def open(self) -> None:
        a, context = self.account, _tls(self.ca_file, self.section)
        try:
            if a.scheme == "pop3s":
                self.conn = poplib.POP3_SSL(a.host, a.port, context=context, timeout=TIMEOUT)
            else:
                self.conn = poplib.POP3(a.host, a.port, timeout=TIMEOUT)
                self.conn.stls(context)
        except (OSError, poplib.error_proto) as exc:
            raise self.fail("cannot connect", exc) from None
        try:
            self.conn.user(a.user)
            self.conn.pass_(self.password)
        except poplib.error_proto as exc:
            self.conn.close()
            raise self.fail("login refused", exc) from None
        except OSError as exc:
            raise self.fail("login failed", exc) from None

    def _call(self, what: str, method: str, *args: Any) -> Any:
        try:
            return getattr(self.conn, method)(*args)
        except (OSError, poplib.error_proto) as exc:
            raise self.fail(what, exc) from None

    def letters(self) -> Iterator[Letter]:
        _, listing, _ = self._call("cannot list messages", "uidl")
        for line in listing:
            number = line.split()[0].decode()
            letter = Letter(f"{self.label} message {number}", "", number, fetch=lambda n=number: self._retr(n))
            try:
                head = self.conn.top(number, 0)[1]     # the headers only (TOP is optional in POP3)
            except poplib.error_proto:
                head = letter.read().split(b"\r\n\r\n", 1)[0].splitlines()
            except OSError as exc:
                raise self.fail(f"cannot read message {number}", exc) from None
            letter.message_id = message_id_of(b"\r\n".join(head) + b"\r\n\r\n")
            yield letter

    def _retr(self, number: str) -> bytes:
        return b"\r\n".join(self._call(f"cannot read message {number}", "retr", number)[1]) + b"\r\n"

    def done(self, letter: Letter) -> None:
        self._call(f"cannot delete message {letter.handle}", "dele", letter.handle)

    def close(self, commit: bool) -> None:
        try:
            if commit:
                self.conn.quit()          # deletions happen here, and only here (RFC 1939)
            else:
                self.conn.close()
        except (OSError, poplib.error_proto) as exc:
            raise self.fail("QUIT failed (nothing deleted; the next run finishes)", exc) from None
