"""The failure policy: what one backend Result means for its ledger row (STANDARDS E4).

- 250: sent.
- a dropped connection, a reset or a timeout after the message data went out and
  before its reply: unknown (the server may have it), never resent by itself.
- 4xx, 421 after the backend's own reconnect, a dropped connection or a timeout
  before the end of the data: deferred, retried after `retry_base_seconds` doubling each attempt, failed
  once the first attempt is older than `retry_max_age_hours`.
- 5.1.x, 5.2.1: failed and a hard bounce (the address gets suppressed everywhere).
- every other 5.2.x (5.2.0, 5.2.2 full, 5.2.3, 5.2.4): failed and a soft bounce (counted
  toward `bounce_soft_limit`).
- other 5xx about the recipient: failed, the reply kept.
- 5.7.x policy refusals: the row goes back to the queue and the send pauses;
  the recipient is not blamed.

Which enhanced code is which is mailer.backends.replies'; the retry schedule is mailer.retry's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailer import retry
from mailer.backends.base import DeliveryOutcome, Result
from mailer.backends.replies import Reply, classify_status, enhanced_status
from mailer.config import Settings
from mailer.models import DeliveryStatus


@dataclass(frozen=True)
class Decision:
    status: DeliveryStatus
    reply: str
    next_attempt_at: datetime | None = None
    hard_bounce: bool = False
    soft_bounce: bool = False
    pause: str = ""            # why the whole send must pause (policy errors)


def result_status(result: Result) -> str:
    """The enhanced status code (``5.1.1``) of a result, from the backend or the reply text."""
    return result.status or enhanced_status(result.reply or "", anywhere=True)


def backoff(settings: Settings, attempts: int) -> timedelta:
    """Delay before attempt ``attempts + 1`` of a delivery (see `mailer.retry.backoff`)."""
    return retry.backoff(settings.retry_base_seconds, attempts)


def decide(settings: Settings, result: Result, attempts: int, first_attempt_at: datetime | None,
           now: datetime) -> Decision:
    """The row's next status after *result*; *attempts* counts the attempt that produced it."""
    reply = result.reply
    if result.outcome is DeliveryOutcome.SENT:
        return Decision(DeliveryStatus.SENT, reply)
    status = result_status(result)
    if result.outcome is DeliveryOutcome.POLICY:
        why = (f"the server refused a message by policy ({result.code} {status} {reply.strip()[:200]}); "
               "not the recipient's fault: fix and resume")
        return Decision(DeliveryStatus.QUEUED, reply, pause=" ".join(why.split()))
    if result.outcome is DeliveryOutcome.UNKNOWN:
        return Decision(DeliveryStatus.UNKNOWN, reply)
    if result.outcome is DeliveryOutcome.TEMPORARY:
        if now - (first_attempt_at or now) >= timedelta(hours=settings.retry_max_age_hours):
            return Decision(DeliveryStatus.FAILED, f"gave up after {settings.retry_max_age_hours:g} h: {reply}")
        return Decision(DeliveryStatus.DEFERRED, reply, next_attempt_at=now + backoff(settings, attempts))
    kind = classify_status(status) if status else Reply.PERMANENT
    return Decision(DeliveryStatus.FAILED, reply, hard_bounce=kind is Reply.HARD_BOUNCE,
                    soft_bounce=kind is Reply.SOFT_BOUNCE)
