"""The subscribe rules: what subscribing does, decided once from the current state.

A pure function of the subscription's current status, whether the address is
suppressed, whether consent is on record (confirmed) and where the request came
from. `subscriptions.subscribe` (one person, ORM) and the bulk import (SQL, a
batch at a time) both apply it, so the two cannot drift apart. The floor only:
imports mailer.models.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mailer.models import ConsentSource, Reason, SubscriptionStatus

# sources that are a request of the person themselves (a new opt-in that may lift suppression)
PERSONAL_SOURCES = (ConsentSource.WEB, ConsentSource.API)


class Outcome(enum.Enum):
    """What `subscribe` did, for reports and for the web's single neutral answer."""

    CREATED_PENDING = "created_pending"
    CREATED_CONFIRMED = "created_confirmed"
    ALREADY_PENDING = "already_pending"
    ALREADY_CONFIRMED = "already_confirmed"
    NOW_PENDING = "now_pending"
    NOW_CONFIRMED = "now_confirmed"
    KEPT_UNSUBSCRIBED = "kept_unsubscribed"
    SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class Decision:
    """The outcome, and what to write: a new status (None: leave it), a consent row, an audit event."""

    outcome: Outcome
    status: SubscriptionStatus | None = None
    reason: Reason | None = None
    confirmed: bool = False          # the new status is confirmed: set confirmed_at (subscription, consent)
    record_consent: bool = False

    @property
    def changes(self) -> bool:
        return self.status is not None


def reason_for(source: ConsentSource) -> Reason:
    """The subscription's reason for a subscribe from *source*."""
    if source in PERSONAL_SOURCES:
        return Reason.SIGNUP
    return Reason.IMPORT if source is ConsentSource.IMPORT else Reason.ADMIN


def decide(current: SubscriptionStatus | None, *, confirmed: bool, suppressed: bool,
           source: ConsentSource) -> Decision:
    """What subscribing does to a subscription now *current* (None: there is none).

    - A suppressed address is never made confirmed (STANDARDS B8): an import or an
      admin add leaves it alone; a person's own sign-up makes it pending, so that a
      new confirmed opt-in can lift the suppression.
    - Confirmed stays confirmed. Pending becomes confirmed when consent is on record;
      otherwise it stays pending, and a repeated request records its consent again,
      except an import's (re-running an import changes nothing).
    - Unsubscribed is reopened by a sign-up or an admin add, never by an import: the
      person left, and a bulk file is not a new opt-in.
    """
    if suppressed and source not in PERSONAL_SOURCES:
        return Decision(Outcome.SUPPRESSED)
    make_confirmed = confirmed and not suppressed
    target = SubscriptionStatus.CONFIRMED if make_confirmed else SubscriptionStatus.PENDING
    reason = reason_for(source)
    if current is None:
        outcome = Outcome.CREATED_CONFIRMED if make_confirmed else Outcome.CREATED_PENDING
        return Decision(outcome, target, reason, make_confirmed, record_consent=True)
    if current is SubscriptionStatus.CONFIRMED:
        return Decision(Outcome.ALREADY_CONFIRMED)
    if current is SubscriptionStatus.PENDING and not make_confirmed:
        return Decision(Outcome.ALREADY_PENDING, record_consent=source is not ConsentSource.IMPORT)
    if current is SubscriptionStatus.UNSUBSCRIBED and source is ConsentSource.IMPORT:
        return Decision(Outcome.KEPT_UNSUBSCRIBED)
    outcome = Outcome.NOW_CONFIRMED if make_confirmed else Outcome.NOW_PENDING
    return Decision(outcome, target, reason, make_confirmed, record_consent=True)
