"""The models' floor: the declarative base, the UTC datetime type, uids and the enum mapping."""

from __future__ import annotations

import enum
import os
import time
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import DateTime, Enum, MetaData, TypeDecorator
from sqlalchemy.orm import DeclarativeBase


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


def new_link_secret() -> str:
    """A subscriber's link secret: 128 random bits that prove their unsubscribe and preferences links.

    Stored in the database (and so in its backups), never derived from a configured key:
    the links it proves work as long as the subscriber's row exists (mailer.mail.tokens).
    """
    return os.urandom(16).hex()


def link_secrets(n: int) -> list[str]:
    """*n* fresh link secrets (for bulk inserts): one read of the random source."""
    random = os.urandom(16 * n).hex()
    return [random[i:i + 32] for i in range(0, 32 * n, 32)]


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


def enum_type(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, name=cls.__name__.lower(), values_callable=lambda e: [m.value for m in e],
                native_enum=False, validate_strings=True, length=20)
