"""What an SMTP reply or a DSN status means: the one classifier (STANDARDS E4, F1).

Owns the parsing of RFC 3463 enhanced status codes and the table that turns a
reply code plus enhanced code into a `Reply` class. The SMTP backend, the
delivery policy (mailer.sending.policy) and the bounce-report parser
(mailer.people.bounces) all ask this module; none of them reads codes itself.

- 2xx: sent. 4xx: temporary.
- 5.1.x (addressing) and 5.2.1 (mailbox disabled): a hard bounce, the address
  is suppressed everywhere.
- every other 5.2.x (mailbox status: 5.2.0 other, 5.2.2 mailbox full, 5.2.3
  message too large, 5.2.4 list expansion): that message fails and a soft
  bounce is recorded (it counts toward `bounce_soft_limit`), so the address is
  not retried for ever. The one 5.2.x policy: the send loop and the bounce
  reports both ask `classify_status`.
- 5.4.x (routing), a bare 550/551/553 and a bare 552 to RCPT: permanent for
  this message, nobody suppressed.
- 5.7.x (authentication, DMARC, refused as spam), a refused MAIL FROM and any
  other sender-side 5xx: policy, the send pauses and the recipient is not blamed.
"""

from __future__ import annotations

import enum
import re

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# stages of one SMTP transaction: BODY while the message data is written (the final dot not yet
# sent), EOD the reply after the data (from then on the server may have the message)
MAIL, RCPT, DATA, BODY, EOD = "MAIL", "RCPT", "DATA", "BODY", "EOD"

_HARD = ("5.2.1",)                     # mailbox disabled: as final as an unknown user


class Reply(enum.Enum):
    """The class of one reply for the recipient of the transaction."""

    SENT = "sent"
    TEMPORARY = "temporary"       # retry later
    HARD_BOUNCE = "hard bounce"   # permanent, about the recipient: suppress everywhere
    SOFT_BOUNCE = "soft bounce"   # permanent for this message; counts toward bounce_soft_limit
    PERMANENT = "permanent"       # permanent for this message; nobody suppressed
    POLICY = "policy"             # about the sender or the message: pause the send


def enhanced_status(text: str, *, anywhere: bool = False) -> str:
    """The enhanced status (``"5.1.1"``) at the start of *text* (anywhere in it with *anywhere*), or ``""``."""
    match = _ENHANCED.search(text) if anywhere else _ENHANCED.match(text.lstrip())
    return ".".join(match.groups()) if match else ""


def classify_status(status: str) -> Reply:
    """The class of an enhanced status alone (``5.2.2`` -> SOFT_BOUNCE); ``""`` is PERMANENT."""
    kind, subject = status[:1], status.split(".")[1] if status.count(".") == 2 else ""
    if kind == "2":
        return Reply.SENT
    if kind == "4":
        return Reply.TEMPORARY
    if subject == "1" or status in _HARD:
        return Reply.HARD_BOUNCE
    if subject == "2":                 # mailbox full, too large, list expansion, other mailbox status
        return Reply.SOFT_BOUNCE
    if subject in ("4", ""):
        return Reply.PERMANENT
    return Reply.POLICY           # 5.7.x, and 5.3.x system, 5.5.x protocol, 5.6.x content: ours to fix


def classify(code: int, status: str, stage: str = RCPT) -> Reply:
    """The class of reply *code* with enhanced *status* (may be ``""``) at *stage* of the transaction."""
    if 200 <= code < 300:
        return Reply.SENT
    if 400 <= code < 500:
        return Reply.TEMPORARY
    if stage == MAIL:
        return Reply.POLICY           # the sender was refused: not the recipient's fault
    if status:
        return classify_status("5" + status[1:])   # a 5xx reply is permanent whatever its status class says
    if code in (550, 551, 553) or (code == 552 and stage == RCPT):
        return Reply.PERMANENT
    return Reply.POLICY
