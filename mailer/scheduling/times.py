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


def parse_when(text: str, zone: ZoneInfo, field: str = "--at") -> datetime:
    """A local time ``YYYY-MM-DD HH:MM[:SS]`` in *zone* (or with an explicit offset) -> UTC."""
    raw = text.strip()
    try:
        if not re.search(r"\d[ T]\d", raw):
            raise ValueError
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError(f"{field}: cannot read {text!r} as a time; use YYYY-MM-DD HH:MM") from None
    if value.tzinfo is None:
        local = value.replace(tzinfo=zone)
        if local.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != value:
            raise InputError(f"{field}: {raw} does not exist in {zone.key} (the clocks go forward then)")
        value = local
    return value.astimezone(timezone.utc)


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
