"""The in-memory backend, for tests: messages are kept in lists, nothing leaves the process."""

from __future__ import annotations

from typing import ClassVar

from mailer.backends.base import Backend, OutgoingMessage, DeliveryOutcome, Result


class MemoryBackend(Backend):
    """Keeps every message: in `MemoryBackend.outbox` (all instances) and `self.messages`.

    `MemoryBackend.outcomes` maps a recipient address to the Result fields
    ``(outcome, code, reply)`` to report instead of SENT (messages that are
    not SENT are not kept). Tests reset both with `MemoryBackend.reset()`.
    """

    name = "memory"
    outbox: ClassVar[list[OutgoingMessage]] = []
    outcomes: ClassVar[dict[str, tuple[DeliveryOutcome, int, str]]] = {}

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        self.messages: list[OutgoingMessage] = []
        self.opened = False

    @classmethod
    def reset(cls) -> None:
        cls.outbox.clear()
        cls.outcomes.clear()

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def send_one(self, message: OutgoingMessage) -> Result:
        scripted = self.outcomes.get(message.recipient)
        if scripted is not None and scripted[0] is not DeliveryOutcome.SENT:
            outcome, code, reply = scripted
            return Result(message.key, outcome, code, reply)
        self.messages.append(message)
        MemoryBackend.outbox.append(message)
        return Result(message.key, DeliveryOutcome.SENT, 250, "2.0.0 kept in memory")
