"""What one run of a send did, and the send's standing afterwards (status from what is left).

May import the ledger and the floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from mailer.db import Database
from mailer.models import DeliveryStatus, Send, SendStatus
from mailer.sending import ledger


@dataclass
class SendSummary:
    """What one run did, plus the send's standing afterwards."""

    send_id: int
    total: int = 0                 # rows in the ledger
    sent: int = 0                  # counts for this run
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    bounced: int = 0
    unknown: int = 0               # rows whose outcome is not known: in flight from a dead process, or no reply after the data
    status: SendStatus = SendStatus.SENDING
    reason: str = ""
    counts: dict[DeliveryStatus, int] = field(default_factory=dict)
    next_retry_at: datetime | None = None

    @property
    def processed(self) -> int:
        return self.sent + self.deferred + self.failed + self.skipped


# called after each batch and, from the backend's threads, at most every 0.2 s in between
Progress = Callable[[SendSummary], None]


def conclude(db: Database, summary: SendSummary, pause_reason: str) -> SendSummary:
    """Set the send's status from what is left in its ledger, and fill the summary."""
    send_id = summary.send_id
    if pause_reason:
        ledger.set_send_status(db, send_id, SendStatus.PAUSED, pause_reason, only_from=SendStatus.SENDING)
    with db.session() as session:
        counts = ledger.counts(session, send_id)
        left = counts[DeliveryStatus.QUEUED] + counts[DeliveryStatus.DEFERRED] + counts[DeliveryStatus.SENDING]
        if not left and not pause_reason:
            ledger.set_send_status(db, send_id, SendStatus.DONE, "", only_from=SendStatus.SENDING)
        summary.next_retry_at = ledger.next_retry_at(session, send_id)
    with db.session() as session:
        send = session.get(Send, send_id)
        summary.status, summary.reason = send.status, send.status_reason
    summary.counts, summary.total = counts, sum(counts.values())
    return summary

