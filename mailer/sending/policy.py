"""The failure policy: what one backend Result means for its ledger row (STANDARDS E4).

- 250: sent.
- 4xx, 421 after the backend's own reconnect, a dropped connection, a timeout:
  deferred, retried after `retry_base_seconds` doubling each attempt, failed
  once the first attempt is older than `retry_max_age_hours`.
- 5.1.x: failed and a hard bounce (the address gets suppressed everywhere).
- other 5xx about the recipient: failed, the reply kept.
- 5.7.x policy refusals: the row goes back to the queue and the send pauses;
  the recipient is not blamed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailer import retry
from mailer.backends.base import Outcome, Result
from mailer.config import Settings
from mailer.models import DeliveryStatus

_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True)
class Decision:
    status: DeliveryStatus
    reply: str
    next_attempt_at: datetime | None = None
    hard_bounce: bool = False
    pause: str = ""            # why the whole send must pause (policy errors)


def enhanced_status(result: Result) -> str:
    """The enhanced status code (``5.1.1``) of a result, from the backend or the reply text."""
    if result.status:
        return result.status
    match = _ENHANCED.search(result.reply or "")
    return match.group(1) if match else ""


def backoff(settings: Settings, attempts: int) -> timedelta:
    """Delay before attempt ``attempts + 1`` of a delivery (see `mailer.retry.backoff`)."""
    return retry.backoff(settings.retry_base_seconds, attempts)


def decide(settings: Settings, result: Result, attempts: int, first_attempt_at: datetime | None,
           now: datetime) -> Decision:
    """The row's next status after *result*; *attempts* counts the attempt that produced it."""
    reply = result.reply
    if result.outcome is Outcome.SENT:
        return Decision(DeliveryStatus.SENT, reply)
    status = enhanced_status(result)
    if result.outcome is Outcome.POLICY:
        why = (f"the server refused a message by policy ({result.code} {status} {reply.strip()[:200]}); "
               "not the recipient's fault: fix and resume")
        return Decision(DeliveryStatus.QUEUED, reply, pause=" ".join(why.split()))
    if result.outcome is Outcome.TEMPORARY:
        if now - (first_attempt_at or now) >= timedelta(hours=settings.retry_max_age_hours):
            return Decision(DeliveryStatus.FAILED, f"gave up after {settings.retry_max_age_hours:g} h: {reply}")
        return Decision(DeliveryStatus.DEFERRED, reply, next_attempt_at=now + backoff(settings, attempts))
    return Decision(DeliveryStatus.FAILED, reply, hard_bounce=status.startswith("5.1."))
