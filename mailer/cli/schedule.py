"""`mailer schedule ...` (plan sends) and `mailer scheduler` (the daemon): parse, call, print.

No SQL here; mailer.scheduling, APScheduler and rich load inside the commands that use them.
"""

from __future__ import annotations

import logging
import sys

from typing import TYPE_CHECKING

import click

from mailer.cli import AppContext, pass_app
from mailer.cli.segments import audience_options, chosen_audience

if TYPE_CHECKING:
    from rich.console import Console


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def escape(text: str) -> str:
    """Text made safe for rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


class ScheduleGroup(click.Group):
    """A group whose first argument, when it is not a subcommand, is an issue folder: `add` is implied."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["add", *args]
        return super().parse_args(ctx, args)


@click.group("schedule", cls=ScheduleGroup)
def schedule_group() -> None:
    """Plan sends: `mailer schedule ISSUE_DIR --list SLUG --at TIME` (or --cron), then list/move/cancel/refresh."""


_TZ_HELP = "IANA time zone the time or cron is read in, e.g. Europe/London (default: setting schedule.timezone)."


def _require_public_links(app: AppContext) -> None:
    """Scheduled sends go through the `backend` setting: refuse local links before planning any."""
    from mailer.backends import load_backend
    from mailer.settingrules import require_public_links

    require_public_links(app.settings.base_url, load_backend(app.settings).name)


@schedule_group.command("add")
@click.argument("issue_dir")
@click.option("--list", "-l", "lists", multiple=True, help="List slug to send to (repeatable; default: issue.toml's lists).")
@click.option("--at", "at", help='Local time of a one-off send: "HH:MM" (the next one), "tomorrow HH:MM" '
                                 'or "YYYY-MM-DD HH:MM[:SS]".')
@click.option("--cron", help='Recurring: 5-field cron expression, e.g. "0 9 * * FRI"; composed afresh at each run.')
@click.option("--tz", help=_TZ_HELP)
@click.option("--again", is_flag=True,
              help="Schedule an issue for a list it was already sent or scheduled to (a deliberate second campaign).")
@audience_options
@pass_app
def add(app: AppContext, issue_dir: str, lists: tuple[str, ...], at: str | None, cron: str | None,  # type: ignore[no-untyped-def]
        tz: str | None, again: bool, tags: tuple[str, ...], segment: str | None, exclude_lists: tuple[str, ...],
        exclude_segment: str | None) -> None:
    """Schedule ISSUE_DIR (also the form `mailer schedule ISSUE_DIR ...`): composed now for --at."""
    from mailer.errors import InputError
    from mailer.scheduling.plans import schedule_cron, schedule_once

    if bool(at) == bool(cron):
        raise InputError("give exactly one of --at (a one-off send) or --cron (a recurring one)")
    audience = chosen_audience(app, tags, segment, exclude_lists, exclude_segment)
    _require_public_links(app)
    if at:
        row = schedule_once(app.db, app.settings, issue_dir, lists, at, tz, again=again, warn=_warn,
                            audience=audience)
        what = f"send {row.send_id} holds the composed issue"
    else:
        row = schedule_cron(app.db, app.settings, issue_dir, lists, cron or "", tz, again=again, warn=_warn,
                            audience=audience)
        what = f"cron {row.cron!r} in {row.timezone}; composed afresh at each run"
    _print_created(row.id, what, app)


def _warn(warnings) -> None:  # type: ignore[no-untyped-def]
    from mailer.cli.output import print_warnings

    print_warnings(warnings, err=True)


def _print_created(schedule_id: int, what: str, app: AppContext) -> None:
    """The schedule as it now stands; a warning on stderr when no scheduler would run it."""
    from datetime import timedelta

    from mailer.liveness import DEAD_AFTER, scheduler_alive
    from mailer.scheduling.plans import list_schedules

    view = next(v for v in list_schedules(app.db, app.settings) if v.id == schedule_id)
    _console().print(f"scheduled {view.id}: {escape(view.issue)} to {', '.join(view.lists)} at "
                     f"{view.when_local} ({view.when_utc}); {escape(what)}")
    if not scheduler_alive(app.db, timedelta(minutes=app.settings.schedule_grace_minutes)):
        click.echo(f"warning: no scheduler is running on this database (no heartbeat in the last "
                   f"{int(DEAD_AFTER.total_seconds())} s, no `scheduler --once` within schedule.grace_minutes): "
                   "nothing will be sent until `mailer scheduler` runs (see docs/deploy/)", err=True)


@schedule_group.command("list")
@pass_app
def list_command(app: AppContext) -> None:
    """Show every schedule: id, issue, lists, when (its zone and UTC), state, and 'out of date'."""
    from datetime import timedelta

    from mailer.liveness import scheduler_status
    from mailer.scheduling.plans import list_schedules

    views = list_schedules(app.db, app.settings)
    if not views:
        click.echo("no schedules")
    for v in views:
        kind = (f"digest (cron {v.cron!r}) next" if v.kind.value == "digest"
                else f"cron {v.cron!r} next" if v.cron else "once")
        state = v.status.value + (" " + click.style("out of date", fg="red", bold=True) +
                                  f" (run `mailer schedule refresh {v.id}`)" if v.out_of_date else "")
        reason = f" - {v.reason}" if v.reason else ""
        who = f" ({v.audience})" if v.audience else ""
        click.echo(f"{v.id}  {v.issue}  lists={','.join(v.lists)}{who}  {kind} {v.when_local} "
                   f"({v.when_utc})  {state}{reason}")
    status = scheduler_status(app.db, timedelta(0))
    if status.daemon_alive:
        click.echo(f"scheduler: running on {status.holder} since {status.since:%Y-%m-%d %H:%M:%S} UTC, "
                   f"last seen {status.last_seen:%Y-%m-%d %H:%M:%S} UTC")
    else:
        gone = f", last seen on {status.holder} at {status.last_seen:%Y-%m-%d %H:%M:%S} UTC" if status.holder else ""
        click.echo(f"scheduler: not running{gone} (start `mailer scheduler`)")


@schedule_group.command("move")
@click.argument("schedule_id", type=int)
@click.option("--at", help='New local time of a one-off send: "HH:MM", "tomorrow HH:MM" or "YYYY-MM-DD HH:MM".')
@click.option("--cron", help="New cron expression of a recurring schedule.")
@click.option("--tz", help="New time zone (default: the schedule's own).")
@pass_app
def move_command(app: AppContext, schedule_id: int, at: str | None, cron: str | None, tz: str | None) -> None:
    """Change when SCHEDULE_ID runs (a missed one-off can be moved to a new time)."""
    from mailer.errors import InputError
    from mailer.scheduling.plans import move

    if not (at or cron or tz):
        raise InputError("give --at, --cron or --tz")
    row = move(app.db, app.settings, schedule_id, at=at, cron=cron, tz=tz)
    _print_created(row.id, "moved", app)


@schedule_group.command("cancel")
@click.argument("schedule_id", type=int)
@pass_app
def cancel_command(app: AppContext, schedule_id: int) -> None:
    """Cancel SCHEDULE_ID before it starts; nothing is sent."""
    from mailer.scheduling.plans import cancel

    cancel(app.db, schedule_id)
    _console().print(f"cancelled schedule {schedule_id}")


@schedule_group.command("refresh")
@click.argument("schedule_id", type=int)
@pass_app
def refresh_command(app: AppContext, schedule_id: int) -> None:
    """Re-compose the issue of one-off SCHEDULE_ID (with lint) so the current reports go out."""
    from mailer.scheduling.plans import refresh

    row = refresh(app.db, app.settings, schedule_id, warn=_warn)
    _print_created(row.id, f"re-composed as send {row.send_id}", app)


@click.command("scheduler")
@click.option("--once", is_flag=True, help="Run what is due now (and resume interrupted sends), then exit.")
@click.option("--sync-seconds", type=click.FloatRange(min=0.2), default=5.0, show_default=True,
              help="How often the daemon re-reads the schedule table for new or changed schedules.")
@pass_app
def scheduler_command(app: AppContext, once: bool, sync_seconds: float) -> None:
    """Run the scheduler daemon in the foreground (one per database); SIGTERM stops it cleanly."""
    from mailer.scheduling.daemon import Daemon, run_once_locked

    _require_public_links(app)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    if once:
        decisions = run_once_locked(app.db, app.settings)
        _console().print(f"ran {len(decisions)} due schedule(s)")
        return
    Daemon(app.db, app.settings, sync_seconds=sync_seconds).run()


COMMANDS: list[click.Command] = [schedule_group, scheduler_command]
