"""Typed SQLAlchemy models: subscribers, lists, consent, suppression, sends, deliveries, schedules."""

from __future__ import annotations

import enum
import os
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_uid() -> str:
    """A public identifier: what tokens and URLs carry instead of row ids.

    32 hex digits: the time in milliseconds (12), then 80 random bits (20). New uids
    sort after older ones, so the unique index grows at its end instead of splitting
    pages all over it (an import of a million rows is 25 % faster); the random part
    keeps them unguessable, and every link that carries one is signed besides.
    """
    return sorted_uids(1)[0]


def sorted_uids(n: int) -> list[str]:
    """*n* fresh uids of the same millisecond, in ascending order (for bulk inserts)."""
    prefix = f"{time.time_ns() // 1_000_000:012x}"
    random = os.urandom(10 * n).hex()
    return sorted([prefix + random[i:i + 20] for i in range(0, 20 * n, 20)])


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC on every database (SQLite has no zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, name=cls.__name__.lower(), values_callable=lambda e: [m.value for m in e],
                native_enum=False, validate_strings=True, length=20)


class OptIn(enum.Enum):
    SINGLE = "single"
    DOUBLE = "double"


class SubscriptionStatus(enum.Enum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


class Reason(enum.Enum):
    """Why a subscription has its status."""

    USER = "user"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    ADMIN = "admin"
    IMPORT = "import"
    SIGNUP = "signup"


class ConsentSource(enum.Enum):
    IMPORT = "import"
    WEB = "web"
    API = "api"
    ADMIN = "admin"


class SuppressionReason(enum.Enum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    ERASED = "erased"
    ADMIN = "admin"


class SendStatus(enum.Enum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"
    MISSED = "missed"
    FAILED = "failed"


class DeliveryStatus(enum.Enum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


class BounceKind(enum.Enum):
    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"


class ScheduleKind(enum.Enum):
    ONCE = "once"
    CRON = "cron"


class ScheduleStatus(enum.Enum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    DONE = "done"
    MISSED = "missed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class MailingList(Base):
    __tablename__ = "mailing_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    opt_in: Mapped[OptIn] = mapped_column(_enum(OptIn), default=OptIn.DOUBLE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Subscriber(Base):
    __tablename__ = "subscriber"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    email: Mapped[str] = mapped_column(String(320))
    # the case-folded address: one subscriber per address whatever its case
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan", passive_deletes=True
    )


class Subscription(Base):
    __tablename__ = "subscription"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "list_id"),
        Index("ix_subscription_list_status_subscriber", "list_id", "status", "subscriber_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"))
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"))
    status: Mapped[SubscriptionStatus] = mapped_column(_enum(SubscriptionStatus))
    reason: Mapped[Reason] = mapped_column(_enum(Reason))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")
    mailing_list: Mapped[MailingList] = relationship()


class Consent(Base):
    """Proof of opt-in (STANDARDS C4); kept after unsubscribe, deleted only by erasure."""

    __tablename__ = "consent"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"), index=True)
    list_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_list.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(320))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[ConsentSource] = mapped_column(_enum(ConsentSource))
    form_id: Mapped[str] = mapped_column(String(100), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    text_version: Mapped[str] = mapped_column(String(50), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_ip: Mapped[str] = mapped_column(String(64), default="")


class Suppression(Base):
    """An address that must not be mailed: for one list (scope = slug) or all ('*').

    The address is kept as a keyed hash always, and in clear only while the
    person has not asked for erasure.
    """

    __tablename__ = "suppression"
    __table_args__ = (UniqueConstraint("email_hash", "scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    email: Mapped[str | None] = mapped_column(String(320))
    scope: Mapped[str] = mapped_column(String(64), default="*")
    reason: Mapped[SuppressionReason] = mapped_column(_enum(SuppressionReason))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEvent(Base):
    """One status change of a subscription or subscriber, who made it, and why."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriber.id", ondelete="SET NULL"), index=True
    )
    list_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_list.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(50))
    old_status: Mapped[str] = mapped_column(String(20), default="")
    new_status: Mapped[str] = mapped_column(String(20), default="")
    reason: Mapped[str] = mapped_column(String(20), default="")
    actor: Mapped[str] = mapped_column(String(50), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class BounceEvent(Base):
    """A bounce or complaint about one subscriber; soft ones count towards suppression."""

    __tablename__ = "bounce_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"), index=True)
    send_id: Mapped[int | None] = mapped_column(ForeignKey("send.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[BounceKind] = mapped_column(_enum(BounceKind))
    status_code: Mapped[str] = mapped_column(String(20), default="")
    diagnostic: Mapped[str] = mapped_column(Text, default="")


class Send(Base):
    """One sending of a composed issue to one or more lists: the campaign."""

    __tablename__ = "send"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    issue_slug: Mapped[str] = mapped_column(String(200), index=True)
    issue_path: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str] = mapped_column(Text, default="")
    # the composed, inlined issue with personalisation placeholders
    html: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    # the web version without personal data, for the archive
    archive_html: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    list_slugs: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[SendStatus] = mapped_column(_enum(SendStatus), default=SendStatus.DRAFT)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    audience_frozen: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delivery(Base):
    """The ledger: one row per (send, subscriber), moved along as the send goes."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("send_id", "subscriber_id"),
        Index("ix_delivery_send_status_id", "send_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    send_id: Mapped[int] = mapped_column(ForeignKey("send.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscriber.id", ondelete="SET NULL"))
    list_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_list.id", ondelete="SET NULL"))
    # the address frozen when the audience was; cleared by erasure
    email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus), default=DeliveryStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_code: Mapped[str] = mapped_column(String(20), default="")
    last_reply: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str] = mapped_column(String(255), default="")
    claimed_by: Mapped[str] = mapped_column(String(100), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Schedule(Base):
    """A send planned for later: once (content frozen in `send`) or recurring (cron)."""

    __tablename__ = "schedule"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_path: Mapped[str] = mapped_column(Text)
    list_slugs: Mapped[list[str]] = mapped_column(JSON, default=list)
    kind: Mapped[ScheduleKind] = mapped_column(_enum(ScheduleKind))
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cron: Mapped[str] = mapped_column(String(100), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[ScheduleStatus] = mapped_column(_enum(ScheduleStatus), default=ScheduleStatus.SCHEDULED)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    # the composed snapshot of a one-off schedule (what was previewed is what goes out)
    send_id: Mapped[int | None] = mapped_column(ForeignKey("send.id", ondelete="SET NULL"))
    source_hash: Mapped[str] = mapped_column(String(64), default="")
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Lease(Base):
    """Who holds a singleton role (the scheduler) on this database, for error messages."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MailKind(enum.Enum):
    CONFIRM = "confirm"


class QueueStatus(enum.Enum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class QueuedMail(Base):
    """A transactional mail (opt-in confirmation) asked for by the web app, sent by its queue thread."""

    __tablename__ = "queued_mail"
    __table_args__ = (Index("ix_queued_mail_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[MailKind] = mapped_column(_enum(MailKind))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscriber.id", ondelete="CASCADE"), index=True)
    list_id: Mapped[int | None] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"))
    status: Mapped[QueueStatus] = mapped_column(_enum(QueueStatus), default=QueueStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")


class IntakeStatus(enum.Enum):
    NEW = "new"
    CLAIMED = "claimed"
    DONE = "done"
    FAILED = "failed"


class SignupIntake(Base):
    """A web sign-up as received: the request writes only this row; the queue thread applies it.

    Once applied (subscription, consent record, confirmation mail) the personal fields are
    cleared; the hashes and the time stay a day for the rate limits, then the row goes.
    """

    __tablename__ = "signup_intake"
    __table_args__ = (
        Index("ix_signup_intake_status_id", "status", "id"),
        Index("ix_signup_intake_ip_bucket_at", "ip_bucket", "at"),
        Index("ix_signup_intake_address_bucket_at", "address_bucket", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320), default="")
    name: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[ConsentSource] = mapped_column(_enum(ConsentSource))
    form_id: Mapped[str] = mapped_column(String(100), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(500), default="")
    text_version: Mapped[str] = mapped_column(String(50), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    # keyed hashes, never clear values: what the rate limits count by
    ip_bucket: Mapped[str] = mapped_column(String(80), default="")
    address_bucket: Mapped[str] = mapped_column(String(80), default="")
    status: Mapped[IntakeStatus] = mapped_column(_enum(IntakeStatus), default=IntakeStatus.NEW)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(200), default="")
