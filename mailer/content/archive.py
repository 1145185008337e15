"""The public archive: the web versions of sent issues (no personal data), newest first.

Read by the web archive and its feed; the send loop writes `Send.archive_html`.
May import the floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

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
    with db.session() as session:
        return [_archived(send) for send in _newest_per_issue(session.scalars(_PUBLIC_SENDS),
                                                               lambda send: send.issue_slug, limit)]


def _newest_per_issue(rows: Iterable[Any], slug: Callable[[Any], str], limit: int | None) -> list[Any]:
    """The first row of each issue from rows ordered newest first, at most *limit* issues."""
    seen: dict[str, Any] = {}
    for row in rows:
        seen.setdefault(slug(row), row)
        if limit and len(seen) >= limit:
            break
    return list(seen.values())


@dataclass(frozen=True)
class IssueLink:
    """An archived issue without its HTML: enough for a list or a link."""

    slug: str
    subject: str
    at: datetime
    send_id: int


_PUBLIC_INDEX = (select(Send.id, Send.issue_slug, Send.subject, Send.started_at, Send.created_at)
                 .where(Send.status.in_(PUBLIC), Send.archive_html != "")
                 .order_by(Send.started_at.desc(), Send.id.desc()))


def issue_links(db: Database, limit: int | None = None) -> list[IssueLink]:
    """The newest public send of each issue, newest first, without loading any HTML."""
    with db.session() as session:
        rows = _newest_per_issue(session.execute(_PUBLIC_INDEX), lambda row: row.issue_slug, limit)
    return [IssueLink(row.issue_slug, row.subject, row.started_at or row.created_at, row.id) for row in rows]


@dataclass(frozen=True)
class ArchivePage:
    """One archived issue's web version with its neighbours in the archive (None at either end)."""

    issue: IssueLink
    html: str
    older: IssueLink | None
    newer: IssueLink | None


def archive_page(db: Database, slug: str) -> ArchivePage | None:
    """Issue *slug* as the archive shows it (its newest public send), with the previous (older) and
    next (newer) issue; None when it was never sent publicly."""
    issues = issue_links(db)
    for i, found in enumerate(issues):
        if found.slug == slug:
            with db.session() as session:
                html = session.scalar(select(Send.archive_html).where(Send.id == found.send_id)) or ""
            return ArchivePage(found, html, issues[i + 1] if i + 1 < len(issues) else None,
                               issues[i - 1] if i else None)
    return None
