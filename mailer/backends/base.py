"""The delivery backend interface: open, send a batch, close.

A backend reports each message's outcome; it never raises for one
recipient's failure. It raises DeliveryError only when it cannot work at all
(server unreachable, credentials refused, TLS failure).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Callable, Iterable

from mailer.config import Settings


@dataclass(frozen=True)
class OutgoingMessage:
    """Finished bytes plus the envelope: what every backend sends.

    `data` is the whole message with CRLF line endings (STANDARDS A12);
    `envelope_from` is the bounce address (A14); `recipient` is the one
    envelope recipient (A15). `key` lets the caller match outcomes to its
    ledger rows (the delivery id).
    """

    key: int | str
    envelope_from: str
    recipient: str
    message_id: str
    data: bytes
    # True when no line of `data` starts with "." (mailer.mail.message builds them so): SMTP sends it unstuffed
    dot_safe: bool = False


class DeliveryOutcome(enum.Enum):
    SENT = "sent"
    TEMPORARY = "temporary"   # 4xx, dropped connection, 421: retry later
    PERMANENT = "permanent"   # 5xx about the recipient: bounce
    POLICY = "policy"         # 5.7.x about the sender or message: pause the send, don't blame the recipient
    UNKNOWN = "unknown"       # the data went out and no reply came: the server may have it; never resent by itself


@dataclass(frozen=True)
class Result:
    key: int | str
    outcome: DeliveryOutcome
    code: int = 0
    reply: str = ""
    # enhanced status code such as "5.1.1", when the server gave one
    status: str = ""


@dataclass
class BatchResult:
    results: list[Result] = field(default_factory=list)


class Backend:
    """Base class: subclasses implement `send_one` or override `send`."""

    name = "base"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def open(self) -> None:
        """Acquire what sending needs (a connection, a folder)."""

    def close(self) -> None:
        """Release it; safe to call twice."""

    def __enter__(self) -> "Backend":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, batch: Iterable[OutgoingMessage],
             on_result: Callable[[Result], None] | None = None) -> BatchResult:
        """Send each message; report every one of them.

        *batch* may be a generator that prepares each message as it is taken (the
        send loop marks the message's row ``sending`` then): take one only when it
        can go, and call *on_result* for every message taken.

        *on_result*, when given, is called with each Result as soon as it is
        known and before the next message on the same connection starts, so a
        caller can record a 250 before going on (STANDARDS E5). Backends with
        parallel connections call it from their threads, one call at a time.
        The returned BatchResult then holds nothing (a stream of any length must
        not pile up results); without *on_result* it holds every Result, in order.
        """
        results = []
        for message in batch:
            result = self.send_one(message)
            if on_result is not None:
                on_result(result)
            else:
                results.append(result)
        return BatchResult(results)

    def send_one(self, message: OutgoingMessage) -> Result:
        raise NotImplementedError
