"""Typed SQLAlchemy models, one module per concern, every name re-exported here.

`from mailer.models import X` is the way in (the alembic migrations use
`mailer.models.UTCDateTime`); the modules are:

- base:     the declarative base, `UTCDateTime`, uids, the enum column type
- people:   lists, subscribers, subscriptions, consent, suppression, bounces, audit
- sending:  sends (campaigns), deliveries (the ledger), schedules, leases
- signups:  web sign-up intake rows and the confirmation mail queue
- keys:     the fingerprints of the keys in force (mailer.keyring)
- desk:     the editor's desk: accounts, set-password links, sessions, its audit log
- submissions: reports mailed to the submission address (`mailer intake`)

The floor: imports SQLAlchemy only, nothing else of mailer's.
"""

from mailer.models.base import NAMING, Base, UTCDateTime, enum_type, link_secrets, new_link_secret, new_uid, sorted_uids, utcnow
from mailer.models.desk import DeskAudit, DeskChallenge, DeskSession, DeskSetting, DeskToken, DeskUser
from mailer.models.keys import KeyFingerprint
from mailer.models.people import (
    AuditEvent,
    BounceEvent,
    BounceKind,
    Consent,
    ConsentSource,
    ErasedLink,
    MailingList,
    OptIn,
    ProcessedMail,
    Reason,
    Subscriber,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from mailer.models.segments import Segment, SubscriberTag
from mailer.models.sending import (
    Delivery,
    DeliveryStatus,
    Lease,
    Schedule,
    ScheduleKind,
    ScheduleStatus,
    Send,
    SendList,
    SendStatus,
)
from mailer.models.signups import IntakeStatus, MailKind, QueuedMail, QueueStatus, SignupIntake
from mailer.models.submissions import Submission, SubmissionStatus

__all__ = [
    "NAMING", "Base", "UTCDateTime", "enum_type", "link_secrets", "new_link_secret", "new_uid", "sorted_uids", "utcnow",
    "KeyFingerprint",
    "DeskAudit", "DeskChallenge", "DeskSession", "DeskSetting", "DeskToken", "DeskUser",
    "AuditEvent", "BounceEvent", "BounceKind", "Consent", "ConsentSource", "ErasedLink", "MailingList", "OptIn",
    "ProcessedMail", "Reason", "Subscriber", "Subscription", "SubscriptionStatus", "Suppression", "SuppressionReason",
    "Delivery", "DeliveryStatus", "Lease", "Schedule", "ScheduleKind", "ScheduleStatus", "Send",
    "SendList", "SendStatus", "Segment", "SubscriberTag",
    "IntakeStatus", "MailKind", "QueuedMail", "QueueStatus", "SignupIntake",
    "Submission", "SubmissionStatus",
]
