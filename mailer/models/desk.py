"""The editor's desk: accounts, their one-time password links, server-side sessions, the desk audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailer.models.base import Base, UTCDateTime, utcnow


class DeskUser(Base):
    """One person who may log in to the desk; role 'editor' or 'admin'."""

    __tablename__ = "desk_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)   # casefolded, for lookups
    role: Mapped[str] = mapped_column(String(10))
    password_hash: Mapped[str] = mapped_column(Text, default="")      # argon2id; '' until set by a link
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    password_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # TOTP second factor (mailer.desk.totp): the secret sealed with AES-GCM, '' when off; a secret
    # being set up until its first code confirms it; the last 30-second step a code was taken for
    totp_secret: Mapped[str] = mapped_column(Text, default="")
    totp_pending: Mapped[str] = mapped_column(Text, default="")
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class DeskToken(Base):
    """A one-time, expiring link to set a password; only the sha256 of its secret is stored."""

    __tablename__ = "desk_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("desk_user.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeskSession(Base):
    """A logged-in browser: the cookie holds a random id, the row its sha256; deleting the row logs out."""

    __tablename__ = "desk_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("desk_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip: Mapped[str] = mapped_column(String(64), default="")


class DeskAudit(Base):
    """Who did what on the desk (or to its accounts), when, from which address."""

    __tablename__ = "desk_audit"
    __table_args__ = (Index("ix_desk_audit_action_at", "action", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(320), default="")     # a desk account's email, or 'cli'
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(320), default="")    # the account acted on, casefolded
    ip: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class DeskChallenge(Base):
    """The second step of a login (a TOTP code is due): short-lived, used once; only its id's sha256."""

    __tablename__ = "desk_challenge"

    id: Mapped[int] = mapped_column(primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("desk_user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeskSetting(Base):
    """A desk-wide setting an admin changes on the desk (e.g. require_totp = '1')."""

    __tablename__ = "desk_setting"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200), default="")
