"""The schedule service: plan, list, move, cancel and refresh sends; our tables hold the plan.

A one-off schedule composes the issue when it is made and keeps that snapshot
as a Send in status `scheduled` (what was previewed is what goes out). A
recurring one keeps a 5-field cron expression read in its own time zone and
composes afresh at each run (mailer.scheduling.daemon). Times are stored in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select, update

from mailer.content.compose import compose_issue, content_hash, find_issue, read_spec
from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError, MailerError
from mailer.models import Schedule, ScheduleKind, ScheduleStatus, Send, SendStatus, utcnow

from mailer.people.subscriptions import get_list

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


def _lists(session, composed_lists: tuple[str, ...], given: tuple[str, ...]) -> list[str]:  # type: ignore[no-untyped-def]
    slugs = list(dict.fromkeys(given or composed_lists))
    if not slugs:
        raise InputError("--list: name at least one list (or set 'lists' in issue.toml)")
    for slug in slugs:
        get_list(session, slug)
    return slugs


def _future(run_at: datetime, zone: ZoneInfo, now: datetime, field: str = "--at") -> None:
    if run_at <= now:
        raise InputError(f"{field}: {run_at.astimezone(zone):%Y-%m-%d %H:%M:%S %Z} "
                         f"({run_at:%H:%M:%S} UTC) is in the past")


def schedule_once(db: Database, settings: Settings, issue: str | Path, lists: tuple[str, ...], at: str,
                  tz: str | None = None, now: datetime | None = None) -> Schedule:
    """Compose *issue* now (with lint) and plan its send at local time *at*."""
    zone = parse_zone(tz or settings.schedule_timezone)
    run_at = parse_when(at, zone)
    _future(run_at, zone, now or utcnow())
    from mailer.sending.ledger import create_send

    composed = compose_issue(settings, issue)
    with db.session() as session:
        slugs = _lists(session, composed.lists, lists)
        send = create_send(session, composed, slugs, status=SendStatus.SCHEDULED)
        session.flush()
        row = Schedule(issue_path=str(composed.path), list_slugs=slugs, kind=ScheduleKind.ONCE, run_at=run_at,
                       timezone=zone.key, send_id=send.id, source_hash=composed.content_hash,
                       next_run_at=run_at)
        session.add(row)
    return row


def schedule_cron(db: Database, settings: Settings, issue: str | Path, lists: tuple[str, ...], cron: str,
                  tz: str | None = None, now: datetime | None = None) -> Schedule:
    """Plan a recurring send; the folder is checked now and composed afresh at each run."""
    zone = parse_zone(tz or settings.schedule_timezone)
    trigger = parse_cron(cron, zone)
    folder = find_issue(settings, issue)
    spec = read_spec(folder)
    if spec.reports:
        compose_issue(settings, folder)
    first = trigger.get_next_fire_time(None, now or utcnow())
    with db.session() as session:
        slugs = _lists(session, spec.lists, lists)
        row = Schedule(issue_path=str(folder), list_slugs=slugs, kind=ScheduleKind.CRON, cron=" ".join(cron.split()),
                       timezone=zone.key, next_run_at=first.astimezone(timezone.utc) if first else None)
        session.add(row)
    return row


def get_schedule(session, schedule_id: int) -> Schedule:  # type: ignore[no-untyped-def]
    row = session.get(Schedule, schedule_id)
    if row is None:
        raise InputError(f"no schedule with id {schedule_id} (see `mailer schedule list`)")
    return row


def _set_send_status(session, send_id: int | None, new: SendStatus, reason: str) -> bool:  # type: ignore[no-untyped-def]
    """Compare-and-set a snapshot send from `scheduled` to *new*; False when it already started."""
    if send_id is None:
        return True
    result = session.execute(update(Send).where(Send.id == send_id, Send.status == SendStatus.SCHEDULED)
                             .values(status=new, status_reason=reason, status_at=utcnow()))
    return result.rowcount == 1


def move(db: Database, settings: Settings, schedule_id: int, at: str | None = None, cron: str | None = None,
         tz: str | None = None, now: datetime | None = None) -> Schedule:
    """Change when a scheduled (or missed) one-off runs, or a recurring schedule's cron and zone."""
    now = now or utcnow()
    with db.session() as session:
        row = get_schedule(session, schedule_id)
        if row.status not in (ScheduleStatus.SCHEDULED, ScheduleStatus.MISSED):
            raise InputError(f"schedule {schedule_id} is {row.status.value}; only scheduled or missed ones move")
        zone = parse_zone(tz or row.timezone)
        if row.kind is ScheduleKind.ONCE:
            if cron or not at:
                raise InputError(f"schedule {schedule_id} is a one-off: give --at")
            run_at = parse_when(at, zone)
            _future(run_at, zone, now)
            if row.send_id is not None:
                session.execute(update(Send).where(Send.id == row.send_id, Send.status.in_(
                    [SendStatus.SCHEDULED, SendStatus.MISSED])).values(status=SendStatus.SCHEDULED,
                                                                      status_reason="", status_at=now))
            row.run_at = row.next_run_at = run_at
        else:
            if at:
                raise InputError(f"schedule {schedule_id} is recurring: give --cron (and --tz)")
            expr = " ".join((cron or row.cron).split())
            first = parse_cron(expr, zone).get_next_fire_time(None, now)
            row.cron, row.next_run_at = expr, first.astimezone(timezone.utc) if first else None
        row.timezone, row.status, row.status_reason = zone.key, ScheduleStatus.SCHEDULED, ""
    return row


def cancel(db: Database, schedule_id: int) -> Schedule:
    """Cancel a schedule that has not started; its snapshot send is cancelled too."""
    with db.session() as session:
        row = get_schedule(session, schedule_id)
        if row.status in (ScheduleStatus.DONE, ScheduleStatus.RUNNING, ScheduleStatus.CANCELLED):
            raise InputError(f"schedule {schedule_id} is {row.status.value}; nothing to cancel")
        if row.kind is ScheduleKind.ONCE and not _set_send_status(session, row.send_id, SendStatus.CANCELLED,
                                                                  "schedule cancelled"):
            send = session.get(Send, row.send_id)
            if send is not None and send.status is not SendStatus.MISSED:
                raise InputError(f"schedule {schedule_id}: send {row.send_id} is already {send.status.value}")
        row.status, row.status_reason = ScheduleStatus.CANCELLED, "cancelled by user"
    return row


def refresh(db: Database, settings: Settings, schedule_id: int) -> Schedule:
    """Re-compose a one-off schedule's issue (with lint) and replace its snapshot."""
    with db.session() as session:
        row = get_schedule(session, schedule_id)
        if row.kind is not ScheduleKind.ONCE:
            raise InputError(f"schedule {schedule_id} is recurring; it composes afresh at each run")
        if row.status not in (ScheduleStatus.SCHEDULED, ScheduleStatus.MISSED):
            raise InputError(f"schedule {schedule_id} is {row.status.value}; only scheduled or missed ones refresh")
        issue_path = row.issue_path
    from mailer.sending.ledger import create_send

    composed = compose_issue(settings, issue_path)
    with db.session() as session:
        row = get_schedule(session, schedule_id)
        old = session.get(Send, row.send_id) if row.send_id else None
        if old is not None and old.status not in (SendStatus.SCHEDULED, SendStatus.MISSED):
            raise InputError(f"schedule {schedule_id}: send {old.id} is already {old.status.value}")
        if old is not None:
            old.status, old.status_reason, old.status_at = SendStatus.CANCELLED, "replaced by refresh", utcnow()
        send = create_send(session, composed, list(row.list_slugs), status=SendStatus.SCHEDULED)
        session.flush()
        row.send_id, row.source_hash = send.id, composed.content_hash
    return row


@dataclass(frozen=True)
class ScheduleView:
    """One line of `schedule list`."""

    id: int
    issue: str
    lists: tuple[str, ...]
    kind: ScheduleKind
    when_local: str
    when_utc: str
    cron: str
    timezone: str
    status: ScheduleStatus
    reason: str
    out_of_date: bool
    send_id: int | None


def current_hash(settings: Settings, issue_path: str) -> str | None:
    """The issue folder's content hash now, or None when it cannot be read."""
    try:
        folder = Path(issue_path)
        return content_hash(settings, folder, read_spec(folder))
    except (MailerError, OSError):
        return None


def list_schedules(db: Database, settings: Settings, include_finished: bool = True) -> list[ScheduleView]:
    """Every schedule with its time in its own zone and in UTC, and whether its snapshot is stale."""
    with db.session() as session:
        query = select(Schedule).order_by(Schedule.id)
        if not include_finished:
            query = query.where(Schedule.status.in_([ScheduleStatus.SCHEDULED, ScheduleStatus.RUNNING,
                                                     ScheduleStatus.MISSED, ScheduleStatus.FAILED]))
        rows = list(session.scalars(query))
    views = []
    for row in rows:
        when = row.next_run_at if row.kind is ScheduleKind.CRON else row.run_at
        zone = parse_zone(row.timezone, "schedule.timezone")
        stale = (row.kind is ScheduleKind.ONCE and row.status in (ScheduleStatus.SCHEDULED, ScheduleStatus.MISSED)
                 and current_hash(settings, row.issue_path) != row.source_hash)
        views.append(ScheduleView(
            id=row.id, issue=Path(row.issue_path).name, lists=tuple(row.list_slugs), kind=row.kind,
            when_local=when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z") if when else "-",
            when_utc=when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "-",
            cron=row.cron, timezone=row.timezone, status=row.status, reason=row.status_reason,
            out_of_date=stale, send_id=row.send_id))
    return views
