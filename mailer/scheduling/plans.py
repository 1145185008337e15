"""The schedule service: plan, list, move, cancel and refresh sends; our tables hold the plan.

A one-off schedule composes the issue when it is made and keeps that snapshot
as a Send in status `scheduled` (what was previewed is what goes out). A
recurring one keeps a 5-field cron expression read in its own time zone and
composes afresh at each run (mailer.scheduling.runs). Times are stored in UTC.
An issue already sent or scheduled to a list is refused unless `again`: a
one-off's snapshot claims its lists when it is made (mailer.sending.ledger.once),
a recurring schedule is checked against sends and other recurring schedules
here and each of its runs claims its own occurrence.
Send rows are created and their status changed through mailer.sending.ledger.
May import sending, content (inside the functions that compose) and the floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError, MailerError
from mailer.models import Schedule, ScheduleKind, ScheduleStatus, Send, SendStatus, utcnow
from mailer.people.lists import get_list
from mailer.scheduling.times import parse_cron, parse_when, parse_zone
from mailer.sending import ledger


# gets compose's warnings, so that every command that composes repeats them
Warn = Callable[[Sequence[str]], None]


class NoSuchSchedule(InputError):
    """No schedule has this id."""


class ScheduleState(InputError):
    """The schedule (or its send) is not in a state that allows the change: finished, running, or
    of the other kind (a one-off given a cron, a recurring one given a time)."""


def _lists(session, composed_lists: tuple[str, ...], given: tuple[str, ...],  # type: ignore[no-untyped-def]
           field: str = "--list") -> list[str]:
    slugs = list(dict.fromkeys(given or composed_lists))
    if not slugs:
        raise InputError(f"{field}: name at least one list (or set 'lists' in issue.toml)")
    for slug in slugs:
        get_list(session, slug)
    return slugs


def _future(run_at: datetime, zone: ZoneInfo, now: datetime, field: str = "--at") -> None:
    if run_at <= now:
        raise InputError(f"{field}: {run_at.astimezone(zone):%Y-%m-%d %H:%M:%S %Z} "
                         f"({run_at:%H:%M:%S} UTC) is in the past")


def schedule_once(db: Database, settings: Settings, issue: str | Path, lists: tuple[str, ...], at: str,
                  tz: str | None = None, now: datetime | None = None, *, again: bool = False,
                  warn: Warn | None = None, audience: dict | None = None, at_field: str = "--at",
                  lists_field: str = "--list") -> Schedule:
    """Compose *issue* now (with lint) and plan its send at local time *at* to *audience* of the
    lists (people.segments.Audience as JSON; None for all of them); the snapshot claims the
    lists (AlreadySent when the issue was sent or scheduled to one of them, unless *again*).
    *warn* gets compose's warnings; a bad or past time names *at_field*, no list *lists_field*
    (the CLI's options, or the desk's form fields)."""
    zone = parse_zone(tz or settings.schedule_timezone)
    now = now or utcnow()
    run_at = parse_when(at, zone, at_field, now=now)
    _future(run_at, zone, now, at_field)
    from mailer.content.compose import compose_issue

    composed = compose_issue(settings, issue)
    if warn is not None:
        warn(composed.warnings)
    with db.session() as session:
        slugs = _lists(session, composed.lists, lists, lists_field)
        ledger.once.check_recurring(session, composed.slug, slugs, again=again)
        send = ledger.create_send(session, composed, slugs, status=SendStatus.SCHEDULED, again=again,
                                  audience=audience)
        session.flush()
        row = Schedule(issue_path=str(composed.path), list_slugs=slugs, kind=ScheduleKind.ONCE, run_at=run_at,
                       timezone=zone.key, send_id=send.id, source_hash=composed.content_hash,
                       next_run_at=run_at)
        session.add(row)
    return row


def schedule_cron(db: Database, settings: Settings, issue: str | Path, lists: tuple[str, ...], cron: str,
                  tz: str | None = None, now: datetime | None = None, *, again: bool = False,
                  warn: Warn | None = None, audience: dict | None = None) -> Schedule:
    """Plan a recurring send to *audience* of the lists (None: all of them); the folder is checked
    now and composed afresh at each run, each run's send freezing the audience of its moment.

    AlreadySent when the issue was sent or scheduled to one of the lists,
    unless *again*; each run then claims its own occurrence (runs._start_cron).
    """
    zone = parse_zone(tz or settings.schedule_timezone)
    trigger = parse_cron(cron, zone)
    from mailer.content.compose import compose_issue
    from mailer.content.folders import find_issue, read_spec

    folder = find_issue(settings, issue)
    spec = read_spec(folder)
    if spec.reports:
        composed = compose_issue(settings, folder)
        if warn is not None:
            warn(composed.warnings)
    first = trigger.get_next_fire_time(None, now or utcnow())
    with db.session() as session:
        slugs = _lists(session, spec.lists, lists)
        ledger.once.check(session, folder.name, slugs, again=again)
        row = Schedule(issue_path=str(folder), list_slugs=slugs, kind=ScheduleKind.CRON, cron=" ".join(cron.split()),
                       timezone=zone.key, next_run_at=first.astimezone(timezone.utc) if first else None,
                       audience=audience or None)
        session.add(row)
    return row


def schedule_digest(db: Database, settings: Settings, folder: str | Path, lists: tuple[str, ...], cron: str,
                    tz: str | None = None, min_reports: int = 1, now: datetime | None = None, *,
                    audience: dict | None = None, fields: dict[str, str] | None = None) -> Schedule:
    """Plan a recurring digest of *folder*'s inbox (mailer.scheduling.digest) to *audience* of the
    lists: each run composes the reports that arrived since the last into a new dated issue, or is
    skipped below *min_reports*. A bad value's message names its option, or *fields*' name for it
    (keys cron, tz, min_reports, lists: the desk's form fields)."""
    named = {"cron": "--cron", "tz": "--tz", "min_reports": "--min-reports", "lists": "--list", **(fields or {})}
    from mailer.content.folders import read_spec
    from mailer.scheduling.digest_preview import check_folder, find_folder

    if min_reports < 1:
        raise InputError(f"{named['min_reports']}: {min_reports} must be at least 1")
    zone = parse_zone(tz or settings.schedule_timezone, named["tz"])
    trigger = parse_cron(cron, zone, named["cron"])
    path = find_folder(settings, folder)
    check_folder(path)
    spec = read_spec(path)
    first = trigger.get_next_fire_time(None, now or utcnow())
    with db.session() as session:
        slugs = _lists(session, spec.lists, lists, named["lists"])
        row = Schedule(issue_path=str(path.resolve()), list_slugs=slugs, kind=ScheduleKind.DIGEST,
                       cron=" ".join(cron.split()), timezone=zone.key, min_reports=min_reports,
                       next_run_at=first.astimezone(timezone.utc) if first else None, audience=audience or None)
        session.add(row)
    return row


def get_schedule(session, schedule_id: int) -> Schedule:  # type: ignore[no-untyped-def]
    row = session.get(Schedule, schedule_id)
    if row is None:
        raise NoSuchSchedule(f"no schedule with id {schedule_id} (see `mailer schedule list`)")
    return row


def move(db: Database, settings: Settings, schedule_id: int, at: str | None = None, cron: str | None = None,
         tz: str | None = None, now: datetime | None = None, *, at_field: str = "--at",
         cron_field: str = "--cron") -> Schedule:
    """Change when a scheduled (or missed) one-off runs, or a recurring schedule's cron and zone.
    Errors name *at_field* or *cron_field* (the CLI's options, or the desk's form fields)."""
    now = now or utcnow()
    with db.session() as session:
        row = get_schedule(session, schedule_id)
        if row.status not in (ScheduleStatus.SCHEDULED, ScheduleStatus.MISSED):
            raise ScheduleState(f"schedule {schedule_id} is {row.status.value}; only scheduled or missed ones move")
        zone = parse_zone(tz or row.timezone)
        if row.kind is ScheduleKind.ONCE:
            if cron or not at:
                raise ScheduleState(f"schedule {schedule_id} is a one-off: give --at")
            run_at = parse_when(at, zone, at_field, now=now)
            _future(run_at, zone, now, at_field)
            if row.send_id is not None:
                ledger.transition_send(session, row.send_id, SendStatus.SCHEDULED,
                                       from_status=(SendStatus.SCHEDULED, SendStatus.MISSED))
            row.run_at = row.next_run_at = run_at
        else:
            if at:
                raise ScheduleState(f"schedule {schedule_id} is recurring: give --cron (and --tz)")
            expr = " ".join((cron or row.cron).split())
            first = parse_cron(expr, zone, cron_field).get_next_fire_time(None, now)
            row.cron, row.next_run_at = expr, first.astimezone(timezone.utc) if first else None
        row.timezone, row.status, row.status_reason = zone.key, ScheduleStatus.SCHEDULED, ""
    return row


def cancel(db: Database, schedule_id: int) -> Schedule:
    """Cancel a schedule that has not started; its snapshot send is cancelled too."""
    with db.session() as session:
        row = get_schedule(session, schedule_id)
        if row.status in (ScheduleStatus.DONE, ScheduleStatus.RUNNING, ScheduleStatus.CANCELLED):
            raise ScheduleState(f"schedule {schedule_id} is {row.status.value}; nothing to cancel")
        if (row.kind is ScheduleKind.ONCE and row.send_id is not None
                and not ledger.transition_send(session, row.send_id, SendStatus.CANCELLED, "schedule cancelled",
                                               from_status=SendStatus.SCHEDULED)):
            send = session.get(Send, row.send_id)
            if send is not None and send.status is not SendStatus.MISSED:
                raise ScheduleState(f"schedule {schedule_id}: send {row.send_id} is already {send.status.value}")
        row.status, row.status_reason = ScheduleStatus.CANCELLED, "cancelled by user"
    return row


def refresh(db: Database, settings: Settings, schedule_id: int, warn: Warn | None = None) -> Schedule:
    """Re-compose a one-off schedule's issue (with lint) and replace its snapshot."""
    with db.session() as session:
        row = get_schedule(session, schedule_id)
        if row.kind is not ScheduleKind.ONCE:
            raise ScheduleState(f"schedule {schedule_id} is recurring; it composes afresh at each run")
        if row.status not in (ScheduleStatus.SCHEDULED, ScheduleStatus.MISSED):
            raise ScheduleState(f"schedule {schedule_id} is {row.status.value}; only scheduled or missed ones refresh")
        issue_path = row.issue_path
    from mailer.content.compose import compose_issue

    composed = compose_issue(settings, issue_path)
    if warn is not None:
        warn(composed.warnings)
    with db.session() as session:
        row = get_schedule(session, schedule_id)
        old = session.get(Send, row.send_id) if row.send_id else None
        if old is not None and old.status not in (SendStatus.SCHEDULED, SendStatus.MISSED):
            raise ScheduleState(f"schedule {schedule_id}: send {old.id} is already {old.status.value}")
        again, status = False, SendStatus.SCHEDULED
        if old is not None:
            # the new snapshot takes the old one's claim: same generation, held only if it was
            again, status = ledger.once.generation_of(session, old.id) > 0, old.status
            ledger.transition_send(session, old.id, SendStatus.CANCELLED, "replaced by refresh",
                                   from_status=(SendStatus.SCHEDULED, SendStatus.MISSED))
        send = ledger.create_send(session, composed, list(row.list_slugs), status=status, again=again,
                                  audience=old.audience if old is not None else None)
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
    audience: str = ""   # who of the lists, in words ("" for all of them)
    when: datetime | None = None   # the next run (one-off: its time), UTC
    issue_path: str = ""           # the issue (or digest) folder, as stored


def current_hash(settings: Settings, issue_path: str) -> str | None:
    """The issue folder's content hash now, or None when it cannot be read."""
    from mailer.content.folders import content_hash, read_spec

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
        snapshot_ids = [row.send_id for row in rows if row.send_id is not None]
        audiences = dict(session.execute(select(Send.id, Send.audience).where(Send.id.in_(snapshot_ids))).all())
    from mailer.people.tagging import Audience

    views = []
    for row in rows:
        when = row.run_at if row.kind is ScheduleKind.ONCE else row.next_run_at
        zone = parse_zone(row.timezone, "schedule.timezone")
        stale = (row.kind is ScheduleKind.ONCE and row.status in (ScheduleStatus.SCHEDULED, ScheduleStatus.MISSED)
                 and current_hash(settings, row.issue_path) != row.source_hash)
        views.append(ScheduleView(
            id=row.id, issue=Path(row.issue_path).name, lists=tuple(row.list_slugs), kind=row.kind,
            when_local=when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z") if when else "-",
            when_utc=when.strftime("%Y-%m-%d %H:%M:%S UTC") if when else "-",
            cron=row.cron, timezone=row.timezone, status=row.status, reason=row.status_reason,
            out_of_date=stale, send_id=row.send_id, when=when, issue_path=row.issue_path,
            audience=Audience.of(row.audience if row.kind is not ScheduleKind.ONCE
                                 else audiences.get(row.send_id)).describe()))
    return views
