"""`mailer digest FOLDER ...`: plan a recurring digest of a folder's inbox, or preview the next one.

Parse, call, print; mailer.scheduling.digest does the work (loaded inside the command).
"""

from __future__ import annotations

from pathlib import Path

import click

from mailer.cli import AppContext, pass_app
from mailer.cli.segments import audience_options, chosen_audience


@click.command("digest")
@click.argument("folder")
@click.option("--list", "-l", "lists", multiple=True, help="List slug to send to (repeatable; default: issue.toml's lists).")
@click.option("--cron", help='When a digest goes out: 5-field cron expression, e.g. "0 9 * * FRI".')
@click.option("--tz", help="IANA time zone the cron is read in, e.g. Europe/London (default: setting "
                           "schedule.timezone).")
@click.option("--min-reports", type=int, default=None,
              help="Skip a run (the reports wait for the next) when fewer reports than this arrived (default 1).")
@click.option("--preview", is_flag=True, help="Compose what the next digest would hold now; nothing is moved or sent.")
@audience_options
@pass_app
def digest_command(app: AppContext, folder: str, lists: tuple[str, ...], cron: str | None, tz: str | None,
                   min_reports: int | None, preview: bool, tags: tuple[str, ...], segment: str | None,
                   exclude_lists: tuple[str, ...], exclude_segment: str | None) -> None:
    """Digest FOLDER's inbox: --cron plans a recurring dated issue of new reports; --preview shows the next."""
    from mailer.errors import InputError

    if preview == bool(cron):
        raise InputError("give exactly one of --cron (plan the digest) or --preview (show the next one)")
    from mailer.scheduling.digest_preview import find_folder

    path = find_folder(app.settings, folder)
    audience = chosen_audience(app, tags, segment, exclude_lists, exclude_segment)
    if preview:
        if audience:
            raise InputError("--tag, --segment and the exclusions go with --cron (who each digest goes to)")
        _preview(app, path, min_reports)
        return
    from mailer.cli.schedule import _print_created, _require_public_links
    from mailer.scheduling.plans import schedule_digest

    _require_public_links(app)
    row = schedule_digest(app.db, app.settings, path, lists, cron or "", tz,
                          1 if min_reports is None else min_reports, audience=audience)
    _print_created(row.id, f"digest of {path.name}/inbox, cron {row.cron!r} in {row.timezone}, "
                           f"at least {row.min_reports} report(s) a run", app)


def _preview(app: AppContext, path: Path, min_reports: int | None) -> None:
    from mailer.cli.output import print_warnings
    from mailer.scheduling.digest_preview import digest_min_reports, preview

    needed = min_reports or digest_min_reports(app.db, path) or 1
    shown = preview(app.settings, path, needed, app.settings.schedule_timezone)
    for name, problem in shown.rejected:
        click.echo(f"set aside: {name}: {problem}")
    print_warnings(shown.warnings, err=True)
    if shown.skipped:
        click.echo(f"next digest of {path.name}: would be skipped: {len(shown.reports)} report(s), "
                   f"fewer than the {needed} needed")
    else:
        click.echo(f"next digest of {path.name}: {shown.subject!r}, {len(shown.reports)} report(s)")
    for name in shown.reports:
        click.echo(f"  {name}")


COMMANDS: list[click.Command] = [digest_command]
