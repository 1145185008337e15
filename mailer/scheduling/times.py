"""Reading times: IANA zones, local times, 5-field cron expressions, and the next run of one.

Times are handed on in UTC. APScheduler's CronTrigger is imported only where
a cron expression is read. May import the floor only.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailer.errors import InputError

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMERIC_DOW = re.compile(r"^(\*|\d+)(?:-(\d+))?(?:/(\d+))?$")


def parse_zone(name: str, field: str = "--tz") -> ZoneInfo:
    """An IANA zone such as Europe/London, or InputError naming *field*."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(f"{field}: unknown time zone {name!r} (use a name such as Europe/London or UTC)") from None


AT_FORMS = "HH:MM (the next such time), 'tomorrow HH:MM' or 'YYYY-MM-DD HH:MM'"
_TIME_ONLY = re.compile(r"^(?:(tomorrow)\s+)?(\d{1,2}):(\d{2})(?::(\d{2}))?$", re.IGNORECASE)


def parse_when(text: str, zone: ZoneInfo, field: str = "--at", now: datetime | None = None) -> datetime:
    """A time in *zone* -> UTC: ``YYYY-MM-DD HH:MM[:SS]`` (or with an explicit offset), ``HH:MM``
    (the next such time after *now*) or ``tomorrow HH:MM``."""
    raw = " ".join(text.split())
    relative = _TIME_ONLY.match(raw)
    if relative:
        return _next_local(relative, zone, field, raw, now or datetime.now(timezone.utc))
    try:
        if not re.search(r"\d[ T]\d", raw):
            raise ValueError
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(f"{field}: cannot read {text!r} as a time; use {AT_FORMS}") from None
    if value.tzinfo is None:
        if not _exists(value, zone):
            raise InputError(f"{field}: {raw} does not exist in {zone.key} (the clocks go forward then)")
        value = value.replace(tzinfo=zone)
    return value.astimezone(timezone.utc)


def _exists(local: datetime, zone: ZoneInfo) -> bool:
    """False for a wall-clock time skipped when the clocks go forward in *zone*."""
    aware = local.replace(tzinfo=zone)
    return aware.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) == local


def _next_local(match: re.Match[str], zone: ZoneInfo, field: str, raw: str, now: datetime) -> datetime:
    """``HH:MM``: today's in *zone* if still ahead, else the next day's; ``tomorrow HH:MM``: tomorrow's.

    A day on which that time does not exist (the clocks go forward over it) is passed over.
    """
    tomorrow, hour, minute, second = match.group(1), int(match.group(2)), int(match.group(3)), int(match.group(4) or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise InputError(f"{field}: cannot read {raw!r} as a time; use {AT_FORMS}")
    day = now.astimezone(zone).date() + timedelta(days=1 if tomorrow else 0)
    while True:
        local = datetime(day.year, day.month, day.day, hour, minute, second)
        if _exists(local, zone):
            value = local.replace(tzinfo=zone).astimezone(timezone.utc)
            if tomorrow or value > now:
                return value
        elif tomorrow:
            raise InputError(f"{field}: {raw} does not exist in {zone.key} (the clocks go forward then)")
        day += timedelta(days=1)


def _dow_to_names(field: str) -> str:
    """Cron weekday numbers (0 or 7 = Sunday) -> names: APScheduler 3 counts 0 as Monday."""
    parts = []
    for part in field.split(","):
        m = _NUMERIC_DOW.match(part)
        if not m or (m.group(1) == "*" and not m.group(3)):
            parts.append(part)
            continue
        first = 0 if m.group(1) == "*" else int(m.group(1))
        last = 6 if m.group(1) == "*" else int(m.group(2) or first)
        if m.group(3) and not m.group(2) and m.group(1) != "*":
            last = 6
        if not 0 <= first <= last <= 7:
            raise ValueError(f"weekday {part!r} is out of range 0-7")
        parts.extend(WEEKDAYS[d] for d in range(first, last + 1, int(m.group(3) or 1)))
    return ",".join(dict.fromkeys(parts))


def parse_cron(expr: str, zone: ZoneInfo, field: str = "--cron") -> CronTrigger:
    """A standard 5-field cron expression read in *zone* (so DST does not shift it)."""
    from apscheduler.triggers.cron import CronTrigger

    values = expr.split()
    if len(values) != 5:
        raise InputError(f"{field}: {expr!r} has {len(values)} fields; expected 5 "
                         "(minute hour day-of-month month day-of-week)")
    try:
        return CronTrigger(minute=values[0], hour=values[1], day=values[2], month=values[3],
                           day_of_week=_dow_to_names(values[4]), timezone=zone)
    except ValueError as exc:
        raise InputError(f"{field}: invalid cron expression {expr!r}: {exc}") from None


def next_fire(cron: str, tz: str, after: datetime, previous: datetime | None = None) -> datetime | None:
    """The first run of *cron* in zone *tz* at or after *after*, in UTC.

    When the clocks go back, a local time such as 01:30 happens twice; the
    second one, with the same wall-clock time as *previous*, is not a new run.
    """
    zone = parse_zone(tz)
    trigger = parse_cron(cron, zone)
    fire = trigger.get_next_fire_time(None, after)
    while fire is not None and previous is not None and (
            fire.astimezone(zone).replace(tzinfo=None) == previous.astimezone(zone).replace(tzinfo=None)):
        fire = trigger.get_next_fire_time(None, fire.astimezone(timezone.utc) + timedelta(microseconds=1))
    return fire.astimezone(timezone.utc) if fire else None
