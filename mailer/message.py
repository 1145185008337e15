"""One recipient's message as bytes: headers and a multipart body, personalised by substitution.

A `MessageFactory` is built once per send. It cleans and encodes every header
that is the same for all recipients, splits the HTML and text at their
placeholders (mailer.personalize) and keeps the MIME skeleton as bytes.
`render()` then only fills the placeholders, quoted-printable encodes the two
bodies and writes the few per-recipient headers (To, Date, Message-ID,
List-Unsubscribe): no stdlib EmailMessage per recipient (STANDARDS A1-A16, D1).
"""

from __future__ import annotations

import binascii
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from email.header import Header
from typing import Callable, Mapping
from email.utils import format_datetime

from mailer import links
from mailer.backends.base import OutgoingMessage
from mailer.config import Settings
from mailer.dkim import Signer, signer_from_settings
from mailer.errors import ConfigError
from mailer.headers import clean_header
from mailer.personalize import KEYS, Personalizer, escape_html, keep, placeholder

CRLF = b"\r\n"
MAX_LINE = 78
_SAFE_KEY = re.compile(r"[^A-Za-z0-9._-]")
_LABEL = re.compile(r"[^a-z0-9-]+")
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
_BODY_TAG = re.compile(r"<body[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Recipient:
    """Who one message goes to, and what its links are bound to."""

    key: int | str          # the delivery (ledger) row id, or anything unique for test sends
    email: str
    name: str
    subscriber_uid: str     # Subscriber.uid (random public id) -> tokens
    list_slug: str
    list_name: str


def header_line(name: str, value: str) -> bytes:
    """``Name: value`` CRLF, RFC 2047-encoded and folded when not plain ASCII or too long.

    *value* must already be clean (mailer.headers.clean_header): one line.
    """
    line = f"{name}: {value}"
    if value.isascii() and len(line) <= MAX_LINE:
        return line.encode("ascii") + CRLF
    if value.isascii():
        return _fold_ascii(name, value)
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}".encode("ascii") + CRLF


def _fold_ascii(name: str, value: str) -> bytes:
    """Fold a long ASCII value at spaces; a word longer than a line stays whole (< 998)."""
    lines: list[str] = []
    current = f"{name}:"
    for word in value.split(" "):
        if len(current) + 1 + len(word) > MAX_LINE and current.strip() and current != f"{name}:":
            lines.append(current)
            current = ""
        current += " " + word
    lines.append(current)
    return "\r\n".join(lines).encode("ascii") + CRLF


def address_header(name: str, display_name: str, email: str) -> bytes:
    """``To: "Name" <email>`` with the name quoted or encoded as needed (D1: both cleaned).

    A non-ASCII address (RFC 6531) stays raw UTF-8; it only goes to servers offering SMTPUTF8.
    """
    display_name = clean_header(display_name, 200)
    email = clean_header(email, 254).replace(" ", "")
    if not display_name:
        return f"{name}: {email}".encode("utf-8") + CRLF
    if display_name.isascii():
        phrase = _quote_phrase(display_name)
        line = f"{name}: {phrase} <{email}>"
        if len(line) <= MAX_LINE:
            return line.encode("utf-8") + CRLF
        return f"{name}: {phrase}\r\n <{email}>".encode("utf-8") + CRLF
    encoded = Header(display_name, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n <{email}>".encode("utf-8") + CRLF


def _quote_phrase(text: str) -> str:
    if not _SPECIALS.search(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def qp_body(text: str) -> bytes:
    """UTF-8, CRLF line ends, quoted-printable (lines <= 76 octets; A12), ending in CRLF."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    data = text.replace("\n", "\r\n").encode("utf-8")
    if not data.endswith(CRLF):
        data += CRLF
    # b2a_qp keeps the CRLF line ends it finds and folds with "=\r\n"
    return binascii.b2a_qp(data, istext=True)


_PLACEHOLDERS = re.compile("|".join(re.escape(placeholder(k)) for k in KEYS))
SOFT_BREAK = b"=\r\n"
# printable ASCII but "=", spaces only inside: quoted-printable leaves it as it is
_QP_PLAIN = re.compile(rb"(?:[!-<>-~][ !-<>-~]*)?[!-<>-~]|")


def _qp(data: bytes) -> bytes:
    """b2a_qp with CRLF everywhere: it picks LF for soft breaks when the data holds no CRLF."""
    if len(data) <= 76 and _QP_PLAIN.fullmatch(data):
        return data   # the common case for a value: nothing to encode, no line to break
    out = binascii.b2a_qp(data, istext=True)
    if b"\n" in out and (b"\r\n" not in out or b"=\n" in out):
        out = out.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return out


class QPTemplate:
    """A body quoted-printable encoded ONCE; per recipient only the values are encoded.

    Each placeholder sits between soft line breaks, so a filled value never
    lengthens a line of the static text (lines stay <= 76 octets, A12) and
    decoding gives exactly the filled text.
    """

    def __init__(self, template: str, escape: Callable[[str], str]) -> None:
        Personalizer(template, escape)          # one clear error for an unknown placeholder
        text = template.replace("\r\n", "\n").replace("\r", "\n")
        if not text.endswith("\n"):
            text += "\n"
        statics = _PLACEHOLDERS.split(text)
        self.keys = tuple(m.group(0)[len("__mailer_"):-2] for m in _PLACEHOLDERS.finditer(text))
        self._escape = escape
        encoded = [_qp(part.replace("\n", "\r\n").encode("utf-8")) for part in statics]
        self._static = [e + SOFT_BREAK for e in encoded[:-1]] + encoded[-1:]

    def fill(self, values: Mapping[str, str]) -> bytes:
        """The encoded body for one recipient's *values*."""
        done: dict[str, bytes] = {}
        out = [self._static[0]]
        for i, key in enumerate(self.keys, 1):
            chunk = done.get(key)
            if chunk is None:
                value = self._escape(values.get(key, "")).replace("\r", " ").replace("\n", " ")
                chunk = done[key] = _qp(value.encode("utf-8")) + SOFT_BREAK
            out.append(chunk)
            out.append(self._static[i])
        return b"".join(out)


def message_id(settings: Settings) -> str:
    """``<random@sending_domain>`` (A2): no colon, never the host's FQDN."""
    return f"<{secrets.token_hex(16)}@{settings.sending_domain}>"


def verp_address(settings: Settings, key: int | str) -> str:
    """The envelope sender (A14): ``bounces+<key>@bounce-domain`` from settings.bounce_address."""
    local, _, domain = settings.bounce_address.rpartition("@")
    tag = _SAFE_KEY.sub("-", str(key))[:64]
    return f"{local}+{tag}@{domain}" if tag else settings.bounce_address


def list_id(settings: Settings, list_slug: str, list_name: str) -> str:
    """``List name <slug.list_id_domain>`` (A8): one identifier per list, <= 255 octets."""
    label = _LABEL.sub("-", list_slug.lower()).strip("-") or "list"
    ident = f"{label}.{settings.list_id_domain}"[:255]
    name = _quote_phrase(clean_header(list_name, 200))
    return f"{name} <{ident}>" if name else f"<{ident}>"


def feedback_id(settings: Settings, issue_slug: str, list_slug: str) -> str:
    """``issue:list:sender`` (A9): <= 4 fields, SenderId 5-15 chars, nothing per recipient."""
    sender = settings.feedback_id_sender
    if not 5 <= len(sender) <= 15 or not re.fullmatch(r"[A-Za-z0-9._-]+", sender):
        raise ConfigError("setting 'feedback_id_sender': must be 5-15 letters, digits, '.', '_' or '-'")
    parts = [re.sub(r"[^A-Za-z0-9._-]", "-", p)[:60] or "-" for p in (issue_slug, list_slug)]
    return ":".join([*parts, sender])


_last_date: tuple[int, str] = (0, "")


def _date(now: datetime | None) -> str:
    """RFC 5322 date of *now* (default: this second, UTC; A3), formatted once per second."""
    global _last_date
    if now is None:
        second = int(time.time())
        if _last_date[0] == second:
            return _last_date[1]
        text = format_datetime(datetime.fromtimestamp(second, timezone.utc))
        _last_date = (second, text)
        return text
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return format_datetime(now)


def _boundary() -> str:
    # "=_" never occurs in quoted-printable output, so the boundary cannot collide
    return f"=_mailer_{secrets.token_hex(12)}"


def _multipart(boundary: str, text_qp: bytes, html_qp: bytes | None) -> bytes:
    b = boundary.encode("ascii")
    part = b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    if html_qp is None:
        return text_qp
    return b"".join((
        b"--", b, CRLF, part % b"plain", text_qp,
        CRLF, b"--", b, CRLF, part % b"html", html_qp,
        CRLF, b"--", b, b"--", CRLF,
    ))


def _content_headers(boundary: str | None) -> bytes:
    if boundary is None:
        return (b'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="utf-8"\r\n'
                b"Content-Transfer-Encoding: quoted-printable\r\n")
    return (b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/alternative;\r\n boundary="' + boundary.encode("ascii") + b'"\r\n')


def _finish(settings: Settings, signer: Signer | None, key: int | str, to_email: str,
            mid: str, headers: bytes, body: bytes) -> OutgoingMessage:
    data = headers + CRLF + body
    if signer is not None:
        data = signer.sign(data)
    recipient = settings.dev_redirect or to_email
    return OutgoingMessage(key=key, envelope_from=verp_address(settings, key),
                           recipient=recipient, message_id=mid, data=data)


class MessageFactory:
    """Built ONCE per send; render() personalises one recipient by substitution into bytes."""

    def __init__(self, settings: Settings, *, subject: str, html: str, text: str,
                 issue_slug: str, preheader: str = "") -> None:
        self.settings = settings
        self.issue_slug = issue_slug
        if preheader and preheader not in html:
            html = _insert_preheader(html, preheader)
        self._html = QPTemplate(html, escape_html)
        self._text = QPTemplate(text, keep)
        self._boundary = _boundary()
        self._signer = signer_from_settings(settings)
        static = [
            address_header("From", settings.from_name, settings.from_email),
            header_line("Subject", clean_header(subject, 500)),
        ]
        if settings.reply_to:
            static.append(address_header("Reply-To", "", settings.reply_to))
        static.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        static.append(_content_headers(self._boundary))
        self._static = b"".join(static)
        self._per_list: dict[tuple[str, str], bytes] = {}
        self._archive_url = links.archive_url(settings, issue_slug)
        self._mailto = clean_header(settings.unsubscribe_mailto, 200).replace(" ", "")
        if settings.feedback_id_sender:
            feedback_id(settings, issue_slug, "")  # a wrong SenderId fails here, before any send

    def _list_headers(self, list_slug: str, list_name: str) -> bytes:
        cached = self._per_list.get((list_slug, list_name))
        if cached is None:
            cached = header_line("List-Id", list_id(self.settings, list_slug, list_name))
            if self.settings.feedback_id_sender:
                cached += header_line("Feedback-ID", feedback_id(self.settings, self.issue_slug, list_slug))
            self._per_list[(list_slug, list_name)] = cached
        return cached

    def values(self, recipient: Recipient) -> dict[str, str]:
        """The placeholder values of one recipient (links carry signed tokens, A5)."""
        s = self.settings
        return {
            "name": recipient.name,
            "email": recipient.email,
            "unsubscribe_url": links.unsubscribe_url(s, recipient.subscriber_uid, recipient.list_slug),
            "preferences_url": links.preferences_url(s, recipient.subscriber_uid, recipient.list_slug),
            "view_online_url": self._archive_url,
        }

    def render(self, recipient: Recipient, now: datetime | None = None) -> OutgoingMessage:
        """The finished bytes for *recipient*; Date is *now* (send time, A3)."""
        values = self.values(recipient)
        unsubscribe = f"<{values['unsubscribe_url']}>"
        if self._mailto:
            unsubscribe += f", <mailto:{self._mailto}?subject=unsubscribe>"
        mid = message_id(self.settings)
        headers = b"".join((
            f"Date: {_date(now)}\r\nMessage-ID: {mid}\r\n".encode("ascii"),
            address_header("To", recipient.name, recipient.email),
            self._static,
            self._list_headers(recipient.list_slug, recipient.list_name),
            header_line("List-Unsubscribe", clean_header(unsubscribe, 990)),
        ))
        body = _multipart(self._boundary, self._text.fill(values), self._html.fill(values))
        return _finish(self.settings, self._signer, recipient.key, recipient.email, mid, headers, body)


def _insert_preheader(html: str, preheader: str) -> str:
    """A hidden first line of the body: the inbox preview text."""
    snippet = ('<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
               f"{escape_html(preheader)}</div>")
    match = _BODY_TAG.search(html)
    if match is None:
        return snippet + html
    return html[:match.end()] + snippet + html[match.end():]


def transactional_message(settings: Settings, *, to: str, to_name: str, subject: str, text: str,
                          html: str | None = None, key: int | str = 0) -> OutgoingMessage:
    """Opt-in confirmation and similar: no List-Unsubscribe headers (STANDARDS A7), From =
    settings.transactional_from_email or from_email (I7)."""
    mid = message_id(settings)
    boundary = _boundary() if html is not None else None
    headers = [
        f"Date: {_date(None)}\r\nMessage-ID: {mid}\r\n".encode("ascii"),
        address_header("From", settings.from_name, settings.transactional_from_email or settings.from_email),
        address_header("To", to_name, to),
        header_line("Subject", clean_header(subject, 500)),
    ]
    if settings.reply_to:
        headers.append(address_header("Reply-To", "", settings.reply_to))
    headers.append(_content_headers(boundary))
    text_qp = qp_body(text)
    body = text_qp if boundary is None else _multipart(boundary, text_qp, qp_body(html or ""))
    return _finish(settings, signer_from_settings(settings), key, clean_header(to, 254),
                   mid, b"".join(headers), body)
