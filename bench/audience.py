"""Fill a database with a list of N confirmed subscribers fast (bulk Core inserts), for tests and benchmarks."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert, select

from mailer.content.compose import ComposedIssue
from mailer.db import Database
from mailer.models import MailingList, OptIn, Reason, Subscriber, Subscription, SubscriptionStatus, new_uid


def make_list(db: Database, slug: str, name: str | None = None) -> int:
    """Create a mailing list (or find it) and return its id."""
    with db.session() as session:
        found = session.scalar(select(MailingList.id).where(MailingList.slug == slug))
        if found is not None:
            return found
        mlist = MailingList(slug=slug, name=name or slug.title(), opt_in=OptIn.SINGLE)
        session.add(mlist)
        session.flush()
        return mlist.id


def add_subscribers(db: Database, slug: str, count: int, *, domain: str = "example.net", start: int = 0,
                    prefix: str = "user", chunk: int = 5000) -> list[str]:
    """Add *count* confirmed subscribers ``user<i>@domain`` to list *slug*; return their addresses."""
    list_id = make_list(db, slug)
    now = datetime.now(timezone.utc)
    emails = [f"{prefix}{i}@{domain}" for i in range(start, start + count)]
    for lo in range(0, count, chunk):
        part = emails[lo:lo + chunk]
        with db.engine.begin() as conn:
            existing = dict(conn.execute(select(Subscriber.email_key, Subscriber.id)
                                         .where(Subscriber.email_key.in_(part))).all())
            new = [e for e in part if e not in existing]
            if new:
                conn.execute(insert(Subscriber), [
                    {"uid": new_uid(), "email": e, "email_key": e, "name": f"Reader {e.split('@')[0]}",
                     "attributes": {}, "created_at": now, "updated_at": now} for e in new])
                existing.update(conn.execute(select(Subscriber.email_key, Subscriber.id)
                                             .where(Subscriber.email_key.in_(new))).all())
            conn.execute(insert(Subscription), [
                {"subscriber_id": existing[e], "list_id": list_id, "status": SubscriptionStatus.CONFIRMED,
                 "reason": Reason.IMPORT, "created_at": now, "status_at": now, "confirmed_at": now}
                for e in part])
    return emails


def composed_issue(path: Path, *, slug: str = "2026-12-test", lists: tuple[str, ...] = ("news",),
                   pad_to: int = 0) -> ComposedIssue:
    """A ComposedIssue built by hand (placeholders included), optionally padded to ~pad_to bytes of HTML."""
    html = ("<html><body><h1>Hello __mailer_name__</h1><p>News for __mailer_email__.</p>"
            '<p><a href="__mailer_unsubscribe_url__">Unsubscribe</a> '
            '<a href="__mailer_preferences_url__">Preferences</a> '
            '<a href="__mailer_view_online_url__">View online</a></p>')
    text = ("Hello __mailer_name__\n\nNews for __mailer_email__.\n\n"
            "Unsubscribe: __mailer_unsubscribe_url__\nPreferences: __mailer_preferences_url__\n")
    filler = "<p>Solidarity report: the tenants' union met on Tuesday and agreed the next steps.</p>\n"
    while len(html) < pad_to * 0.7:
        html += filler
    while len(text) + len(html) < pad_to:
        text += "The tenants' union met on Tuesday and agreed the next steps.\n"
    html += "</body></html>"
    return ComposedIssue(slug=slug, path=path, subject="Solidarity news & notes", preheader="", lists=lists,
                         html=html, text=text, archive_html="<html><body>archive</body></html>",
                         content_hash="0" * 64)
