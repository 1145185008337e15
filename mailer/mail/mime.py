"""Bytes-level MIME pieces: folded and encoded header lines, quoted-printable bodies, multipart.

Everything here works on values already cleaned by mailer.headers.clean_header
and produces CRLF line ends with lines far below 998 octets (STANDARDS A12).
"""

from __future__ import annotations

import binascii
import re
import secrets
import time
from datetime import datetime, timezone
from email.header import Header
from email.utils import format_datetime
from typing import Callable, Mapping

from mailer.headers import clean_header
from mailer.content.personalize import PATTERN, check, default_of, key_of

CRLF = b"\r\n"
MAX_LINE = 78
SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


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
        phrase = quote_phrase(display_name)
        line = f"{name}: {phrase} <{email}>"
        if len(line) <= MAX_LINE:
            return line.encode("utf-8") + CRLF
        return f"{name}: {phrase}\r\n <{email}>".encode("utf-8") + CRLF
    encoded = Header(display_name, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n <{email}>".encode("utf-8") + CRLF


def quote_phrase(text: str) -> str:
    if not SPECIALS.search(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def qp_body(text: str) -> bytes:
    """UTF-8, CRLF line ends, quoted-printable (lines <= 76 octets; A12), ending in CRLF; dot-safe."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    data = text.replace("\n", "\r\n").encode("utf-8")
    if not data.endswith(CRLF):
        data += CRLF
    # b2a_qp keeps the CRLF line ends it finds and folds with "=\r\n"
    return dot_safe(binascii.b2a_qp(data, istext=True))


SOFT_BREAK = b"=\r\n"
# printable ASCII but "=", spaces only inside: quoted-printable leaves it as it is
_QP_PLAIN = re.compile(rb"(?:[!-<>-~][ !-<>-~]*)?[!-<>-~]|")


def _qp(data: bytes) -> bytes:
    """b2a_qp with CRLF everywhere (it picks LF for soft breaks when the data holds no CRLF),
    starting at a line start, with no line starting with "." (see dot_safe)."""
    if len(data) <= 76 and _QP_PLAIN.fullmatch(data):
        return dot_safe(data)   # the common case for a value: nothing to encode, no line to break
    out = binascii.b2a_qp(data, istext=True)
    if b"\n" in out and (b"\r\n" not in out or b"=\n" in out):
        out = out.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return dot_safe(out)


def dot_safe(encoded: bytes) -> bytes:
    """Quoted-printable *encoded* (starting at a line start) with no line that starts with ".".

    Such a dot becomes ``=2E``, the same text once decoded, so the message needs no
    SMTP dot-stuffing (RFC 5321 4.5.2): the backend skips a scan of every message. A
    line that grows past 76 octets is folded with a soft break, never inside an escape.
    """
    if not (encoded[:1] == b"." or b"\n." in encoded):
        return encoded
    out = []
    for line in encoded.split(b"\r\n"):
        while line[:1] == b".":
            line = b"=2E" + line[1:]
            if len(line) <= 76:
                break
            cut = 75
            if line[cut - 1:cut] == b"=":
                cut -= 1
            elif line[cut - 2:cut - 1] == b"=":
                cut -= 2
            out.append(line[:cut] + b"=")
            line = line[cut:]
        out.append(line)
    return b"\r\n".join(out)


class QPTemplate:
    """A body quoted-printable encoded ONCE; per recipient only the values are encoded.

    Each placeholder sits between soft line breaks, so a filled value never
    lengthens a line of the static text (lines stay <= 76 octets, A12) and
    decoding gives exactly the filled text.
    """

    def __init__(self, template: str, escape: Callable[[str], str]) -> None:
        check(template)          # one clear error for an unknown placeholder
        text = template.replace("\r\n", "\n").replace("\r", "\n")
        if not text.endswith("\n"):
            text += "\n"
        found = list(PATTERN.finditer(text))
        ends = [0, *(pos for m in found for pos in (m.start(), m.end())), len(text)]
        statics = [text[ends[i]:ends[i + 1]] for i in range(0, len(ends), 2)]
        # (key, default) per placeholder; a reader without the value gets the default
        self.keys = tuple((key_of(m.group(1)), default_of(m.group(2))) for m in found)
        self._escape = escape
        encoded = [_qp(part.replace("\n", "\r\n").encode("utf-8")) for part in statics]
        self._static = [e + SOFT_BREAK for e in encoded[:-1]] + encoded[-1:]

    def fill(self, values: Mapping[str, str]) -> bytes:
        """The encoded body for one recipient's *values*."""
        done: dict[tuple[str, str], bytes] = {}
        out = [self._static[0]]
        for i, key in enumerate(self.keys, 1):
            chunk = done.get(key)
            if chunk is None:
                value = self._escape(values.get(key[0]) or key[1]).replace("\r", " ").replace("\n", " ")
                chunk = done[key] = _qp(value.encode("utf-8")) + SOFT_BREAK
            out.append(chunk)
            out.append(self._static[i])
        return b"".join(out)


_last_date: tuple[int, str] = (0, "")


def date_header_value(now: datetime | None) -> str:
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


def new_boundary() -> str:
    # "=_" never occurs in quoted-printable output, so the boundary cannot collide
    return f"=_mailer_{secrets.token_hex(12)}"


def multipart(boundary: str, text_qp: bytes, html_qp: bytes | None) -> bytes:
    b = boundary.encode("ascii")
    part = b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    if html_qp is None:
        return text_qp
    return b"".join((
        b"--", b, CRLF, part % b"plain", text_qp,
        CRLF, b"--", b, CRLF, part % b"html", html_qp,
        CRLF, b"--", b, b"--", CRLF,
    ))


def content_headers(boundary: str | None) -> bytes:
    if boundary is None:
        return (b'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="utf-8"\r\n'
                b"Content-Transfer-Encoding: quoted-printable\r\n")
    return (b"MIME-Version: 1.0\r\n"
            b'Content-Type: multipart/alternative;\r\n boundary="' + boundary.encode("ascii") + b'"\r\n')
