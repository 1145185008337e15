"""What the database remembers of the keys in force: fingerprints, never the keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailer.models.base import Base, UTCDateTime, utcnow


class KeyFingerprint(Base):
    """One kind of key (``hash_key``, ``secret_keys``): a salt and the keyed hashes of its keys.

    ``fingerprints`` is comma-separated, one per key (newest first for the signing keys).
    """

    __tablename__ = "key_fingerprint"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))
    fingerprints: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
