"""Sign-up rate limits: counted in the process's memory when a sign-up arrives, re-checked in the database for mails.

When a sign-up arrives (C6, both 429): per client IP at most
``web_rate_per_ip_per_hour`` sign-ups an hour, per address at most
``web_confirm_max_per_day`` sign-ups a day. `SignupLimiter` counts them in
memory, so a request reads nothing from the database; it starts from the last
day's `signup_intake` rows, so a restart forgets nothing. Each process counts
its own: with N server processes a client may get up to N times the limit
accepted before a 429. The mails themselves are still capped for every process
alike: when the queue thread applies a sign-up it checks `queued_mail` in the
database, none within ``web_confirm_cooldown_minutes`` of the last one (C5)
and at most ``web_confirm_max_per_day`` a day. IPs and addresses are counted
by keyed hashes, never in clear.
"""

from __future__ import annotations

import hmac
import threading
from collections import deque
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailer.config import Settings
from mailer.db import Database
from mailer.models import MailKind, QueuedMail, SignupIntake, utcnow

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
MAX_KEYS = 200_000        # per kind; past it the oldest keys are forgotten (the mail cap still holds)
_INTAKE = SignupIntake.__table__


class RateLimited(Exception):
    """Too many requests: answered with 429 and nothing sent."""


def _bucket(settings: Settings, kind: str, value: str) -> str:
    key = (settings.hash_key or "mailer").encode()
    return f"{kind}:" + hmac.digest(key, value.encode(), "sha256").hex()[:64]


def ip_bucket(settings: Settings, ip: str) -> str:
    return _bucket(settings, "ip", ip)


def address_bucket(settings: Settings, key: str) -> str:
    return _bucket(settings, "addr", key)


class _Window:
    """Times of recent events per key, in one sliding window."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.events: dict[str, deque[float]] = {}

    def count(self, key: str, now: float) -> int:
        times = self.events.get(key)
        if not times:
            return 0
        while times and times[0] <= now - self.seconds:
            times.popleft()
        return len(times)

    def add(self, key: str, at: float) -> None:
        times = self.events.get(key)
        if times is None:
            if len(self.events) >= MAX_KEYS:
                self._shrink(at)
            times = self.events[key] = deque()
        times.append(at)

    def remove(self, key: str, at: float) -> None:
        times = self.events.get(key)
        if times and at in times:
            times.remove(at)

    def _shrink(self, now: float) -> None:
        for key in [k for k, times in self.events.items() if not times or times[-1] <= now - self.seconds]:
            del self.events[key]
        for key in list(self.events)[:max(0, len(self.events) - MAX_KEYS * 9 // 10)]:
            del self.events[key]   # oldest first: dicts keep insertion order


class SignupLimiter:
    """The sign-up rate limits of this process (thread-safe), started from the database's last day."""

    def __init__(self, db: Database | None = None) -> None:
        self._lock = threading.Lock()
        self._ip, self._address = _Window(HOUR.total_seconds()), _Window(DAY.total_seconds())
        self._db = db

    def _load(self) -> None:
        db, self._db = self._db, None
        if db is None:
            return
        with db.engine.connect() as conn:
            rows = conn.execute(select(_INTAKE.c.ip_bucket, _INTAKE.c.address_bucket, _INTAKE.c.at)
                                .where(_INTAKE.c.at > utcnow() - DAY).order_by(_INTAKE.c.at)).all()
        for ip, address, at in rows:
            stamp = at.timestamp()
            self._ip.add(ip, stamp)
            self._address.add(address, stamp)

    def take(self, settings: Settings, ip_hash: str, address_hash: str, now: float) -> None:
        """Count one sign-up at *now* (a POSIX time), or raise RateLimited."""
        per_ip, per_day = settings.web_rate_per_ip_per_hour, settings.web_confirm_max_per_day
        with self._lock:
            if self._db is not None:
                self._load()
            if per_ip > 0 and self._ip.count(ip_hash, now) >= per_ip:
                raise RateLimited("too many sign-ups from your network; please try again in an hour")
            if per_day > 0 and self._address.count(address_hash, now) >= per_day:
                raise RateLimited("too many confirmation mails for this address today; please try tomorrow")
            self._ip.add(ip_hash, now)
            self._address.add(address_hash, now)

    def give_back(self, ip_hash: str, address_hash: str, stamp: float) -> None:
        """Uncount a sign-up that was not stored after all."""
        with self._lock:
            self._ip.remove(ip_hash, stamp)
            self._address.remove(address_hash, stamp)


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
