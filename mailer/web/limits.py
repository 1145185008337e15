"""Sign-up rate limits kept in the database, so every process of the web app shares them.

Per client IP: at most ``web_rate_per_ip_per_hour`` sign-up attempts (C6).
Per address: at most ``web_confirm_max_per_day`` confirmation mails a day (C6),
and none within ``web_confirm_cooldown_minutes`` of the last one (C5).
IPs are stored as keyed hashes, never in clear.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.models import MailKind, QueuedMail, WebHit, utcnow

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class RateLimited(Exception):
    """Too many requests: answered with 429 and nothing sent."""


def ip_bucket(settings: Settings, ip: str) -> str:
    key = (settings.hash_key or "mailer").encode()
    return "ip:" + hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()[:64]


def check_ip(session: Session, settings: Settings, ip: str) -> None:
    """Count this attempt for *ip*; raise RateLimited past the hourly budget."""
    limit = settings.web_rate_per_ip_per_hour
    if limit <= 0:
        return
    bucket = ip_bucket(settings, ip)
    since = utcnow() - HOUR
    used = session.scalar(select(func.count()).select_from(WebHit)
                          .where(WebHit.bucket == bucket, WebHit.at > since)) or 0
    if used >= limit:
        raise RateLimited("too many sign-ups from your network; please try again in an hour")
    session.add(WebHit(bucket=bucket))


def confirmation_allowed(session: Session, settings: Settings, subscriber_id: int, list_id: int) -> bool:
    """False inside the cool-down after the last confirmation mail for this list (C5).

    Raises RateLimited when the address already had its daily number of mails (C6).
    """
    now = utcnow()
    day_count = session.scalar(select(func.count()).select_from(QueuedMail).where(
        QueuedMail.subscriber_id == subscriber_id, QueuedMail.kind == MailKind.CONFIRM,
        QueuedMail.created_at > now - DAY)) or 0
    if settings.web_confirm_max_per_day and day_count >= settings.web_confirm_max_per_day:
        raise RateLimited("too many confirmation mails for this address today; please try tomorrow")
    cooldown = timedelta(minutes=settings.web_confirm_cooldown_minutes)
    if cooldown:
        recent = session.scalar(select(QueuedMail.id).where(
            QueuedMail.subscriber_id == subscriber_id, QueuedMail.list_id == list_id,
            QueuedMail.kind == MailKind.CONFIRM, QueuedMail.created_at > now - cooldown).limit(1))
        if recent is not None:
            return False
    return True


def prune(session: Session) -> int:
    """Forget hits older than a day; returns how many went."""
    result = session.execute(delete(WebHit).where(WebHit.at < utcnow() - DAY))
    return result.rowcount or 0
