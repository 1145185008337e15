"""The public archive: the web versions of sent issues (no personal data), newest first.

Read by the web archive and its feed; the send loop writes `Send.archive_html`.
May import the floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from mailer.db import Database
from mailer.models import Send, SendStatus

PUBLIC = (SendStatus.DONE, SendStatus.SENDING)
_PUBLIC_SENDS = (select(Send).where(Send.status.in_(PUBLIC), Send.archive_html != "")
                 .order_by(Send.started_at.desc(), Send.id.desc()))


@dataclass(frozen=True)
class ArchivedIssue:
    slug: str
    uid: str
    subject: str
    preheader: str
    at: datetime        # when its send started (or was created)
    html: str


def _archived(send: Send) -> ArchivedIssue:
    return ArchivedIssue(send.issue_slug, send.uid, send.subject, send.preheader,
                         send.started_at or send.created_at, send.archive_html)


def published(db: Database, limit: int | None = None) -> list[ArchivedIssue]:
    """The newest public send of each issue, newest first."""
    seen: dict[str, ArchivedIssue] = {}
    with db.session() as session:
        for send in session.scalars(_PUBLIC_SENDS):
            if send.issue_slug not in seen:
                seen[send.issue_slug] = _archived(send)
            if limit and len(seen) >= limit:
                break
    return list(seen.values())


def archived_html(db: Database, slug: str) -> str | None:
    """The web version of issue *slug* (its newest public send), or None."""
    with db.session() as session:
        return session.scalar(select(Send.archive_html).where(Send.issue_slug == slug, Send.status.in_(PUBLIC),
                                                              Send.archive_html != "")
                              .order_by(Send.started_at.desc(), Send.id.desc()).limit(1))


@dataclass(frozen=True)
class ArchivePage:
    """One archived issue with its neighbours in the archive (None at either end)."""

    issue: ArchivedIssue
    older: ArchivedIssue | None
    newer: ArchivedIssue | None


def archive_page(db: Database, slug: str) -> ArchivePage | None:
    """Issue *slug* as the archive shows it, with the previous (older) and next (newer) issue, or None."""
    issues = published(db)
    for i, found in enumerate(issues):
        if found.slug == slug:
            older = issues[i + 1] if i + 1 < len(issues) else None
            return ArchivePage(found, older, issues[i - 1] if i else None)
    return None
