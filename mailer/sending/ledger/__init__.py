"""The delivery ledger: the one writer of send and delivery status.

  sends     create a send; every change of Send.status (claim_send, transition_send)
  once      never twice: each send's claim on its lists, unique in the database (AlreadySent)
  audience  who a send goes to; freezing that into queued delivery rows
  claims    claim a batch, mark rows sending, record outcomes, release, requeue
  reads     counts, next retry, what is due, who holds claims (writes nothing)

Callers use the names below (``from mailer.sending import ledger``). The
ledger may import the floor and people; nothing else in mailer.sending.
"""

from mailer.sending.ledger.audience import audience_count, audience_sample, freeze_audience
from mailer.sending.ledger.claims import (
    Row,
    Writer,
    claim_batch,
    claimed_rows,
    mark_unknown,
    release,
    release_holder,
    requeue,
    requeue_failed,
    requeue_unknown,
    retryable_failed,
)
from mailer.sending.ledger.reads import (
    as_utc,
    claim_holders,
    counts,
    counts_per_list,
    has_due,
    next_retry_at,
    problem_rows,
    sending_sends,
    suppressed_hashes,
)
from mailer.sending.ledger.once import AlreadySent
from mailer.sending.ledger.sends import claim_send, create_send, set_send_status, transition_send

__all__ = [
    "AlreadySent", "Row", "Writer", "as_utc", "audience_count", "audience_sample", "claim_batch", "claim_holders", "claim_send",
    "claimed_rows", "counts", "counts_per_list", "create_send", "freeze_audience", "has_due", "mark_unknown", "next_retry_at",
    "problem_rows", "release", "release_holder", "requeue", "requeue_failed", "requeue_unknown", "retryable_failed", "sending_sends",
    "set_send_status", "suppressed_hashes", "transition_send",
]
