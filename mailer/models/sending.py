"""Sending: the campaign (send), its ledger (delivery), schedules and singleton leases."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mailer.models.base import Base, UTCDateTime, enum_type as _enum, new_uid, utcnow


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


class ScheduleKind(enum.Enum):
    ONCE = "once"
    CRON = "cron"
    DIGEST = "digest"   # a cron that composes a digest folder's inbox into a new dated issue


class ScheduleStatus(enum.Enum):
    SCHEDULED = "scheduled"
    RUNNING = "running"
    DONE = "done"
    MISSED = "missed"
    CANCELLED = "cancelled"
    FAILED = "failed"


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
    # who of those lists (people.segments.Audience as JSON: tags, segment, exclusions); {} for everyone
    audience: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    status: Mapped[SendStatus] = mapped_column(_enum(SendStatus), default=SendStatus.DRAFT)
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    audience_frozen: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SendList(Base):
    """A send's claim on one list for its issue: the database's "never twice" (issue, list) rule.

    The unique key makes the database refuse a second claim of the same issue
    for the same list, occurrence and generation, whoever races for it.
    `held` is True while the claim counts and NULL once released (a cancelled,
    failed or missed send); NULLs never collide, so released rows stay as history.
    `generation` is 0 for the first campaign and grows with each `--again`;
    `occurrence` is "" except for the runs of a recurring schedule (its UTC time).
    """

    __tablename__ = "send_list"
    __table_args__ = (
        UniqueConstraint("issue_slug", "list_id", "occurrence", "generation", "held", name="uq_send_list_claim"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    send_id: Mapped[int] = mapped_column(ForeignKey("send.id", ondelete="CASCADE"), index=True)
    issue_slug: Mapped[str] = mapped_column(String(200))
    list_id: Mapped[int] = mapped_column(ForeignKey("mailing_list.id", ondelete="CASCADE"))
    occurrence: Mapped[str] = mapped_column(String(40), default="")
    generation: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[bool | None] = mapped_column(default=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(Base):
    """The ledger: one row per (send, subscriber), moved along as the send goes."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("send_id", "subscriber_id"),
        Index("ix_delivery_send_status_id", "send_id", "status", "id"),
        Index("ix_delivery_subscriber_send", "subscriber_id", "send_id"),   # a subscriber's last issues
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
    # a digest's run is skipped when fewer reports than this arrived since the last one
    min_reports: Mapped[int | None] = mapped_column(Integer)
    # a recurring schedule's audience within its lists (people.tagging.Audience as JSON), given to
    # each run's send; None for the whole lists (a one-off's is on its snapshot send)
    audience: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Lease(Base):
    """Who holds a singleton role (the scheduler) on this database, for error messages."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
