"""What the desk shows and changes of the schedules: the functions of `mailer schedule list`,
`move`, `cancel` and `refresh` (mailer.scheduling.plans), times in the group's zone, and whether
the scheduler and the sending processes are alive (mailer.liveness)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.liveness import SchedulerStatus, beats, claimant_alive, scheduler_status
from mailer.models import ScheduleKind, ScheduleStatus, utcnow
from mailer.scheduling import plans
from mailer.scheduling.times import parse_zone

NoSuchSchedule = plans.NoSuchSchedule
ScheduleState = plans.ScheduleState
WAITING = (ScheduleStatus.SCHEDULED, ScheduleStatus.MISSED)
ACTIVE = (ScheduleStatus.SCHEDULED, ScheduleStatus.RUNNING, ScheduleStatus.MISSED, ScheduleStatus.FAILED)
KINDS = {ScheduleKind.ONCE: "one-off", ScheduleKind.CRON: "recurring", ScheduleKind.DIGEST: "digest"}
# the form field of each value, as the desk's messages name it
AT_FIELD, CRON_FIELD = "new date and time", "cron"


@dataclass(frozen=True)
class ScheduleRow:
    id: int
    issue: str
    lists: tuple[str, ...]
    audience: str         # who of the lists ("" for everyone on them)
    kind: str             # one of KINDS' values
    cron: str
    next_run: str         # in the group's zone ("-" when none)
    own_zone: str         # the schedule's zone when it is not the group's, else ""
    next_run_own: str     # the next run in that zone
    at_value: str         # the next run as a datetime-local value in the group's zone
    status: str
    reason: str
    out_of_date: bool     # a one-off whose folder changed since it was composed
    can_move: bool
    can_cancel: bool
    can_refresh: bool


@dataclass(frozen=True)
class Sender:
    holder: str           # host:pid
    last_seen: datetime
    alive: bool


@dataclass(frozen=True)
class Liveness:
    scheduler: SchedulerStatus
    senders: list[Sender]


def group_zone(settings: Settings) -> ZoneInfo:
    return parse_zone(settings.schedule_timezone, "schedule.timezone")


def local(when: datetime | None, zone: ZoneInfo) -> str:
    """*when* (UTC) as the desk shows it in *zone*; "-" for None."""
    return when.astimezone(zone).strftime("%a %d %b %Y, %H:%M %Z") if when is not None else "-"


def schedule_row(view: plans.ScheduleView, zone: ZoneInfo) -> ScheduleRow:
    """A schedule as the desk shows it, times in the group's zone *zone*."""
    waiting = view.status in WAITING
    own = "" if view.timezone == zone.key else view.timezone
    return ScheduleRow(
        id=view.id, issue=view.issue, lists=view.lists, audience=view.audience, kind=KINDS[view.kind],
        cron=view.cron, next_run=local(view.when, zone), own_zone=own,
        next_run_own=local(view.when, parse_zone(own)) if own and view.when else "",
        at_value=view.when.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if view.when else "",
        status=view.status.value, reason=view.reason, out_of_date=view.out_of_date,
        can_move=waiting, can_cancel=view.status not in (ScheduleStatus.DONE, ScheduleStatus.RUNNING,
                                                         ScheduleStatus.CANCELLED),
        can_refresh=waiting and view.kind is ScheduleKind.ONCE)


def rows(db: Database, settings: Settings, include_finished: bool = False) -> list[ScheduleRow]:
    """Every schedule (the finished ones only with *include_finished*), newest id first."""
    zone = group_zone(settings)
    return [schedule_row(v, zone) for v in reversed(plans.list_schedules(db, settings, include_finished))]


def find(db: Database, settings: Settings, schedule_id: int) -> ScheduleRow:
    """One schedule; NoSuchSchedule when there is none."""
    zone = group_zone(settings)
    for view in plans.list_schedules(db, settings):
        if view.id == schedule_id:
            return schedule_row(view, zone)
    raise NoSuchSchedule(f"no schedule with id {schedule_id}")


def move(db: Database, settings: Settings, schedule_id: int, at: str = "", cron: str = "") -> None:
    """`mailer schedule move`: a one-off to *at* (local time in the group's zone, e.g. a
    datetime-local value), a recurring one to the cron expression *cron* in its own zone.
    InputError naming the field (a time in the past, an unreadable time or cron), ScheduleState
    when the schedule cannot move, NoSuchSchedule."""
    row = find(db, settings, schedule_id)
    if row.kind == KINDS[ScheduleKind.ONCE]:
        if not at.strip():
            raise InputError(f"{AT_FIELD}: choose the day and the time")
        plans.move(db, settings, schedule_id, at=at.strip() or None, tz=settings.schedule_timezone,
                   at_field=AT_FIELD, cron_field=CRON_FIELD)
    else:
        if not cron.strip():
            raise InputError(f"{CRON_FIELD}: give a 5-field cron expression, e.g. 0 9 * * FRI")
        plans.move(db, settings, schedule_id, cron=cron.strip() or None, at_field=AT_FIELD, cron_field=CRON_FIELD)


def cancel(db: Database, schedule_id: int) -> None:
    """`mailer schedule cancel`: nothing of it is sent."""
    plans.cancel(db, schedule_id)


def refresh(db: Database, settings: Settings, schedule_id: int) -> list[str]:
    """`mailer schedule refresh`: re-compose a one-off's issue now; returns compose's warnings."""
    warnings: list[str] = []
    plans.refresh(db, settings, schedule_id, warn=warnings.extend)
    return warnings


def liveness(db: Database, settings: Settings, now: datetime | None = None) -> Liveness:
    """The scheduler (as `mailer schedule` judges it: a beating daemon, or a `scheduler --once` within
    schedule.grace_minutes) and every sending process that keeps a heartbeat."""
    now = now or utcnow()
    scheduler = scheduler_status(db, timedelta(minutes=settings.schedule_grace_minutes), now)
    heartbeats = beats(db)
    senders = [Sender(holder, seen, claimant_alive(holder, None, heartbeats, now))
               for holder, seen in sorted(heartbeats.items())]
    return Liveness(scheduler, senders)
