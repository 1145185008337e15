"""Reports mailed to the submission address: one row per mail read, so each is taken once."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mailer.models.base import Base, UTCDateTime, enum_type, utcnow


class SubmissionStatus(enum.Enum):
    HELD = "held"            # filed in the digest's inbox/held/, waiting for an editor
    APPROVED = "approved"    # its report(s) moved into the digest's inbox
    REJECTED = "rejected"    # an editor said no; its files are deleted
    REFUSED = "refused"      # not from an allowed sender (or nothing to file): never filed


class Submission(Base):
    """A mail read from the submission mailbox, remembered by its key (Message-ID, or
    ``sha256:<hex>`` of its bytes) so that polling it again files nothing twice."""

    __tablename__ = "submission"
    __table_args__ = (Index("ix_submission_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[SubmissionStatus] = mapped_column(enum_type(SubmissionStatus))
    sender: Mapped[str] = mapped_column(String(320), default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the digest folder it is filed for, and its folder under inbox/held/ ("" once decided)
    digest: Mapped[str] = mapped_column(Text, default="")
    folder: Mapped[str] = mapped_column(String(100), default="")
    # JSON: {"reports": [...], "images": [...], "dropped": [[name, why], ...], "note": "..."}
    details: Mapped[str] = mapped_column(Text, default="{}")
    reason: Mapped[str] = mapped_column(Text, default="")     # why refused or rejected
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by: Mapped[str] = mapped_column(String(320), default="")
