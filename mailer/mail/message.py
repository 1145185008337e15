"""One recipient's message as bytes: headers and a multipart body, personalised by substitution.

A `MessageFactory` is built once per send. It cleans and encodes every header
that is the same for all recipients, splits the HTML and text at their
placeholders (mailer.content.personalize) and keeps the MIME skeleton as bytes
(pieces from mailer.mail.mime).
`render()` then only fills the placeholders, quoted-printable encodes the two
bodies and writes the few per-recipient headers (To, Date, Message-ID,
List-Unsubscribe): no stdlib EmailMessage per recipient (STANDARDS A1-A16, D1).
`dev_redirect` is applied here and nowhere else: it changes the envelope
recipient only, so the signed bytes (To still naming the subscriber) are the
bytes that leave and the DKIM signature holds.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from mailer.mail import links
from mailer.backends.base import OutgoingMessage
from mailer.config import Settings
from mailer.mail.dkim import Signer, signer_from_settings
from mailer.errors import ConfigError
from mailer.headers import clean_header
from mailer.mail.mime import (CRLF, QPTemplate, address_header, content_headers, date_header_value, header_line,
                         multipart, new_boundary, qp_body, quote_phrase)
from mailer.content.personalize import ATTR, escape_html, greeting, keep
_SAFE_KEY = re.compile(r"[^A-Za-z0-9._-]")
_LABEL = re.compile(r"[^a-z0-9-]+")
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
    link_secret: str = ""   # Subscriber.link_secret -> permanent links; "" (samples, tests): signed tokens
    attributes: Mapping[str, Any] = field(default_factory=dict)   # personal('attr.NAME')


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
    name = quote_phrase(clean_header(list_name, 200))
    return f"{name} <{ident}>" if name else f"<{ident}>"


def feedback_id(settings: Settings, issue_slug: str, list_slug: str) -> str:
    """``issue:list:sender`` (A9): <= 4 fields, SenderId 5-15 chars, nothing per recipient."""
    sender = settings.feedback_id_sender
    if not 5 <= len(sender) <= 15 or not re.fullmatch(r"[A-Za-z0-9._-]+", sender):
        raise ConfigError("setting 'feedback_id_sender': must be 5-15 letters, digits, '.', '_' or '-'")
    parts = [re.sub(r"[^A-Za-z0-9._-]", "-", p)[:60] or "-" for p in (issue_slug, list_slug)]
    return ":".join([*parts, sender])


def _finish(settings: Settings, signer: Signer | None, key: int | str, to_email: str,
            mid: str, headers: bytes, body: bytes) -> OutgoingMessage:
    data = headers + CRLF + body
    if signer is not None:
        data = signer.sign(data)
    recipient = settings.dev_redirect or to_email      # the one dev_redirect: envelope only, never the bytes
    # headers never start a line with "." (folded lines start with a space) and the bodies are
    # mime.dot_safe quoted-printable: the SMTP backend needs no dot-stuffing scan
    return OutgoingMessage(key=key, envelope_from=verp_address(settings, key),
                           recipient=recipient, message_id=mid, data=data, dot_safe=True)


class MessageFactory:
    """Built ONCE per send; render() personalises one recipient by substitution into bytes."""

    def __init__(self, settings: Settings, *, subject: str, html: str, text: str,
                 issue_slug: str, preheader: str = "", send_uid: str = "") -> None:
        self.settings = settings
        self.issue_slug = issue_slug
        self.send_uid = send_uid   # Send.uid: the unsubscribe link names the send (mailer report)
        if preheader and preheader not in html:
            html = _insert_preheader(html, preheader)
        self._html = QPTemplate(html, escape_html)
        self._text = QPTemplate(text, keep)
        # the attributes the templates use, looked up per recipient (most issues use none)
        self._attributes = sorted({k for k, _ in self._html.keys + self._text.keys if k.startswith(ATTR)})
        self._boundary = new_boundary()
        self._signer = signer_from_settings(settings)
        static = [
            address_header("From", settings.from_name, settings.from_email),
            header_line("Subject", clean_header(subject, 500)),
        ]
        if settings.reply_to:
            static.append(address_header("Reply-To", "", settings.reply_to))
        static.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        static.append(content_headers(self._boundary))
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
        """The placeholder values of one recipient (links carry opaque purpose-bound proofs, A5)."""
        s = self.settings
        values = {
            "name": recipient.name,
            "email": recipient.email,
            "greeting": greeting(recipient.name, s.greeting, s.greeting_nameless),
            "unsubscribe_url": links.unsubscribe_url(s, recipient.subscriber_uid, recipient.list_slug,
                                                     recipient.link_secret, self.send_uid),
            "preferences_url": links.preferences_url(s, recipient.subscriber_uid, recipient.list_slug,
                                                     recipient.link_secret),
            "view_online_url": self._archive_url,
        }
        for key in self._attributes:
            value = recipient.attributes.get(key[len(ATTR):])
            values[key] = "" if value is None else str(value)
        return values

    def render(self, recipient: Recipient, now: datetime | None = None) -> OutgoingMessage:
        """The finished bytes for *recipient*; Date is *now* (send time, A3)."""
        values = self.values(recipient)
        unsubscribe = f"<{values['unsubscribe_url']}>"
        if self._mailto:
            unsubscribe += f", <mailto:{self._mailto}?subject=unsubscribe>"
        mid = message_id(self.settings)
        headers = b"".join((
            f"Date: {date_header_value(now)}\r\nMessage-ID: {mid}\r\n".encode("ascii"),
            address_header("To", recipient.name, recipient.email),
            self._static,
            self._list_headers(recipient.list_slug, recipient.list_name),
            header_line("List-Unsubscribe", clean_header(unsubscribe, 990)),
        ))
        body = multipart(self._boundary, self._text.fill(values), self._html.fill(values))
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
                          html: str | None = None, key: int | str = 0,
                          extra_headers: tuple[tuple[str, str], ...] = ()) -> OutgoingMessage:
    """Opt-in confirmation and similar: no List-Unsubscribe headers (STANDARDS A7), From =
    settings.transactional_from_email or from_email (I7). *extra_headers* (an auto-reply's
    Auto-Submitted, In-Reply-To...) are cleaned (D1) and signed with the rest."""
    mid = message_id(settings)
    boundary = new_boundary() if html is not None else None
    headers = [
        f"Date: {date_header_value(None)}\r\nMessage-ID: {mid}\r\n".encode("ascii"),
        address_header("From", settings.from_name, settings.transactional_from_email or settings.from_email),
        address_header("To", to_name, to),
        header_line("Subject", clean_header(subject, 500)),
    ]
    if settings.reply_to:
        headers.append(address_header("Reply-To", "", settings.reply_to))
    headers += [header_line(name, clean_header(value, 2000)) for name, value in extra_headers if value]
    headers.append(content_headers(boundary))
    text_qp = qp_body(text)
    body = text_qp if boundary is None else multipart(boundary, text_qp, qp_body(html or ""))
    return _finish(settings, signer_from_settings(settings), key, clean_header(to, 254),
                   mid, b"".join(headers), body)
