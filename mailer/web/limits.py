"""Sign-up rate limits kept in the database, so every process of the web app shares them.

Decided when a sign-up arrives, from the `signup_intake` rows (one indexed count each):
per client IP at most ``web_rate_per_ip_per_hour`` sign-ups an hour, and per address at
most ``web_confirm_max_per_day`` sign-ups a day (C6, both 429). Each accepted sign-up
causes at most one confirmation mail, so that is also the daily cap of mails (C5).
When the queue thread applies a sign-up it checks the mails themselves again:
none within ``web_confirm_cooldown_minutes`` of the last one (C5), and the cap.
IPs and addresses are counted by keyed hashes, never in clear.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, func, select
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.models import MailKind, QueuedMail, SignupIntake, utcnow

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
_INTAKE = SignupIntake.__table__
# built once (the hot path only binds values): both counts in one statement
_COUNTS = select(
    select(func.count()).select_from(_INTAKE).where(
        _INTAKE.c.ip_bucket == bindparam("ip"), _INTAKE.c.at > bindparam("hour_ago", type_=_INTAKE.c.at.type),
        bindparam("per_ip") > 0).scalar_subquery(),
    select(func.count()).select_from(_INTAKE).where(
        _INTAKE.c.address_bucket == bindparam("address"),
        _INTAKE.c.at > bindparam("day_ago", type_=_INTAKE.c.at.type), bindparam("per_day") > 0).scalar_subquery())


class RateLimited(Exception):
    """Too many requests: answered with 429 and nothing sent."""


def _bucket(settings: Settings, kind: str, value: str) -> str:
    key = (settings.hash_key or "mailer").encode()
    return f"{kind}:" + hmac.digest(key, value.encode(), "sha256").hex()[:64]


def ip_bucket(settings: Settings, ip: str) -> str:
    return _bucket(settings, "ip", ip)


def address_bucket(settings: Settings, key: str) -> str:
    return _bucket(settings, "addr", key)


def check_signup(conn: Connection, settings: Settings, ip_hash: str, address_hash: str,
                 now: datetime) -> None:
    """Raise RateLimited when this IP or this address had its share of sign-ups already."""
    per_ip, per_day = settings.web_rate_per_ip_per_hour, settings.web_confirm_max_per_day
    if per_ip <= 0 and per_day <= 0:
        return
    by_ip, by_address = conn.execute(_COUNTS, {
        "ip": ip_hash, "hour_ago": now - HOUR, "per_ip": per_ip,
        "address": address_hash, "day_ago": now - DAY, "per_day": per_day}).one()
    if per_ip > 0 and by_ip >= per_ip:
        raise RateLimited("too many sign-ups from your network; please try again in an hour")
    if per_day > 0 and by_address >= per_day:
        raise RateLimited("too many confirmation mails for this address today; please try tomorrow")


def confirmation_allowed(session: Session, settings: Settings, subscriber_id: int, list_id: int) -> bool:
    """False inside the cool-down after the last confirmation mail for this list (C5), or past the daily cap."""
    now = utcnow()
    if settings.web_confirm_max_per_day:
        day_count = session.scalar(select(func.count()).select_from(QueuedMail).where(
            QueuedMail.subscriber_id == subscriber_id, QueuedMail.kind == MailKind.CONFIRM,
            QueuedMail.created_at > now - DAY)) or 0
        if day_count >= settings.web_confirm_max_per_day:
            return False
    cooldown = timedelta(minutes=settings.web_confirm_cooldown_minutes)
    if cooldown:
        recent = session.scalar(select(QueuedMail.id).where(
            QueuedMail.subscriber_id == subscriber_id, QueuedMail.list_id == list_id,
            QueuedMail.kind == MailKind.CONFIRM, QueuedMail.created_at > now - cooldown).limit(1))
        if recent is not None:
            return False
    return True
