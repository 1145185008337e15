"""Sign-ups: web sign-up intake rows and the transactional mail (confirmation) queue."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailer.models.base import Base, UTCDateTime, enum_type as _enum, utcnow
from mailer.models.people import ConsentSource


class MailKind(enum.Enum):
    CONFIRM = "confirm"
    WELCOME = "welcome"     # the list's welcome issue, once per subscription, when it is confirmed


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
