"""The auto-reply telling a sender their report arrived, as RFC 3834 asks of an automatic responder.

No reply to a mail that is itself automatic (Auto-Submitted other than "no", an
X-Auto-Response-Suppress asking for none), from a list (List-Id or any List-* header,
Precedence bulk, list or junk) or from a mail system (a null or MAILER-DAEMON envelope sender),
so two responders never answer each other. The reply goes to the envelope sender (the same as
From, which intake required), carries ``Auto-Submitted: auto-replied``, In-Reply-To and
References, and leaves with a null envelope sender (``MAIL FROM:<>``) so nothing answers it
back. Every header value is cleaned by mailer.headers.clean_header (STANDARDS D1).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from email.message import EmailMessage

from mailer.backends import load_backend
from mailer.backends.base import DeliveryOutcome, OutgoingMessage
from mailer.config import Settings
from mailer.headers import clean_header
from mailer.mail.message import transactional_message
from mailer.submissions.senders import is_daemon, return_path

log = logging.getLogger("mailer.intake")
_MSGID = re.compile(r"<[^<>\s]+>")


def why_not(msg: EmailMessage) -> str:
    """Why *msg* must get no auto-reply, or "" when it may."""
    auto = str(msg.get("Auto-Submitted", "") or "").strip().lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {auto.split(';')[0].strip()[:40]}"
    suppress = str(msg.get("X-Auto-Response-Suppress", "") or "").lower()
    if any(word in suppress for word in ("all", "autoreply", "oof")):
        return "X-Auto-Response-Suppress"
    if any(name.lower().startswith("list-") for name in msg.keys()):
        return "from a mailing list"
    if str(msg.get("Precedence", "") or "").strip().lower() in ("bulk", "list", "junk"):
        return "Precedence: bulk"
    envelope = return_path(msg)
    if not envelope or is_daemon(envelope):
        return "from a mail system (null or daemon envelope sender)"
    return ""


def reply_message(settings: Settings, msg: EmailMessage, title: str, submission_id: int,
                  dropped: list[tuple[str, str]]) -> OutgoingMessage:
    """The auto-reply's bytes and envelope (null MAIL FROM) for a filed *msg*."""
    to = return_path(msg) or ""
    original = " ".join(_MSGID.findall(str(msg.get("Message-ID", "") or "")))[:998]
    references = " ".join([*_MSGID.findall(str(msg.get("References", "") or ""))[-10:], original]).strip()
    subject = title or "your report"
    lines = [f"Thank you: your report \"{subject}\" arrived (number {submission_id}).", "",
             "An editor will read it before it goes into the next newsletter.", ""]
    if dropped:
        lines += ["These attachments were not kept:", *[f"- {clean_header(n, 100)}: {why}" for n, why in dropped], ""]
    lines += ["-- ", settings.group_name, "(This reply was sent automatically.)", ""]
    message = transactional_message(
        settings, to=to, to_name="", subject=f"Auto: {subject}", text="\n".join(lines), key=f"intake-{submission_id}",
        extra_headers=(("Auto-Submitted", "auto-replied"), ("In-Reply-To", original), ("References", references),
                       ("X-Auto-Response-Suppress", "All")))
    return dataclasses.replace(message, envelope_from="")


def send_reply(settings: Settings, message: OutgoingMessage, backend_name: str | None = None) -> str:
    """Send *message* through the configured backend; "" when sent, else what went wrong."""
    from mailer.errors import MailerError

    try:
        with load_backend(settings, backend_name) as backend:
            result = backend.send([message]).results[0]
    except MailerError as exc:
        return str(exc)
    if result.outcome is DeliveryOutcome.SENT:
        return ""
    return f"{result.code} {result.reply}".strip() or result.outcome.value
