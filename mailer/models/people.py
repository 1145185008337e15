"""People: lists, subscribers, subscriptions, consent, suppression, bounces and the audit trail."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailer.models.base import Base, UTCDateTime, enum_type as _enum, new_link_secret, new_uid, utcnow


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


class BounceKind(enum.Enum):
    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"


class MailingList(Base):
    __tablename__ = "mailing_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    opt_in: Mapped[OptIn] = mapped_column(_enum(OptIn), default=OptIn.DOUBLE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # an issue folder mailed once to each new confirmed subscriber ("" for none)
    welcome_issue: Mapped[str] = mapped_column(String(500), default="", server_default="")


class Subscriber(Base):
    __tablename__ = "subscriber"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    # proves the person's unsubscribe and preferences links, whatever the keys (never shown)
    link_secret: Mapped[str] = mapped_column(String(32), default=new_link_secret)
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


# The desk's subscriber search (mailer.people.search): prefix matches on the address key and on
# the lower-cased name, in code point order, each read from an index. SQLite compares text in
# that (binary) order already, and its unique index on email_key serves the address. PostgreSQL
# gets both as expressions in the "C" collation (migration 0015: `(lower(name) COLLATE "C")`),
# the one in which LIKE 'ana%' can use an index and in which the search's order and its pages'
# keys agree, whatever the database's own collation; reflection does not show an index's
# collation, so the schema comparison sees the expressions below. It leaves expression indexes
# aside on SQLite.
Index("ix_subscriber_name_prefix", func.lower(Subscriber.name))
Index("ix_subscriber_email_key_prefix", func.lower(Subscriber.email_key))


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
    welcomed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)   # its welcome mail was queued

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


class ErasedLink(Base):
    """An erased person's link secret, under their random uid only: their mailed links still answer
    (naming nobody) instead of looking forged (STANDARDS B4). Nothing else of theirs is kept here."""

    __tablename__ = "erased_link"

    uid: Mapped[str] = mapped_column(String(32), primary_key=True)
    link_secret: Mapped[str] = mapped_column(String(32))


class ProcessedMail(Base):
    """A mail read from a mailbox (bounce reports), remembered by its key so it is processed once.

    The key is the Message-ID, or ``sha256:<hex>`` of the bytes of a mail without one.
    """

    __tablename__ = "processed_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(20))        # "report" or "not a report"
    source: Mapped[str] = mapped_column(String(255), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
