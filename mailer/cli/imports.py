"""`mailer subscribers import FILE`: a CSV, or another tool's export zip (Mailchimp, Substack).

Parse, call mailer.people (importing, exportzip), print what was done per file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailer.cli import pass_app
from mailer.cli.output import LazyConsole
from mailer.errors import InputError

if TYPE_CHECKING:
    from mailer.people.importing import ImportReport

out = LazyConsole(highlight=False, soft_wrap=True)
err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)

PROGRESS_MIN_BYTES = 1 << 20


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--list", "list_slug", required=True, help="List to subscribe the rows to.")
@click.option("--confirmed", is_flag=True, help="The rows' consent is on record: subscribe them confirmed.")
@click.option("--dry-run", is_flag=True, help="Read, validate and count, but change nothing.")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write rejected rows (default: subscribers/<file>-rejects.csv).")
@click.option("--from", "source", type=click.Choice(["mailchimp", "substack", "listmonk"]),
              help="Read the file as this tool's export (default: recognised by its header).")
@pass_app
def subscribers_import(app, file: Path, list_slug: str, confirmed: bool, dry_run: bool,  # type: ignore[no-untyped-def]
                       rejects: Path | None, source: str | None) -> None:
    """Import a CSV (header row with an email column; name and other columns optional), or the zip
    Mailchimp's or Substack's export gives (its subscriber CSVs, unsubscribed and cleaned first)."""
    from mailer.people.exportzip import is_zip

    if file.is_file() and is_zip(file):
        _import_zip(app, file, list_slug, confirmed, dry_run, rejects)
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    from mailer.people.importing import import_csv

    size = file.stat().st_size if file.is_file() else 0
    with Progress(TextColumn("importing"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=size < PROGRESS_MIN_BYTES) as progress:
        task = progress.add_task("import", total=size)
        report = import_csv(app.db, app.settings, file, list_slug, confirmed=confirmed, dry_run=dry_run,
                            rejects_path=rejects, progress=lambda done: progress.update(task, completed=done),
                            source=source)
    _print_report(report, str(file), list_slug, dry_run)
    if report.rows == 0:
        raise InputError(f"{file}: no data rows under the header")
    if report.accepted == 0:
        raise InputError(f"{file}: nothing imported, every row was rejected")


def _import_zip(app, file: Path, list_slug: str, confirmed: bool, dry_run: bool,  # type: ignore[no-untyped-def]
                rejects: Path | None) -> None:
    from mailer.people.exportzip import import_export_zip

    if rejects is not None and not rejects.is_dir():
        raise InputError(f"--rejects: {rejects}: for an export zip, give a folder (one rejects file per CSV)")
    done = import_export_zip(app.db, app.settings, file, list_slug, confirmed=confirmed, dry_run=dry_run,
                             rejects_dir=rejects)
    for kind, report in done.reports:
        _print_report(report, f"{file} > {report.path} ({kind})", list_slug, dry_run)
    for name in done.skipped:
        out.print(f"{file} > {name}: left out (contacts who never subscribed)", markup=False)
    if sum(report.accepted for _, report in done.reports) == 0:
        raise InputError(f"{file}: nothing imported, no row was accepted")


def _print_report(report: ImportReport, name: str, list_slug: str, dry_run: bool) -> None:
    prefix = "dry run, nothing changed: " if dry_run else ""
    kind = f" ({report.source} export)" if report.source else ""
    out.print(f"{prefix}{name}{kind}: {report.rows} rows, {report.rejected} rejected", markup=False)
    out.print(f"  subscribers: {report.new_subscribers} new, {report.existing_subscribers} existing "
              f"({report.updated_subscribers} updated), {report.duplicates_in_file} duplicates in the file")
    out.print(f"  {list_slug}: {report.subscribed} subscribed, {report.confirmed} confirmed, "
              f"{report.already_subscribed} already subscribed, {report.kept_unsubscribed} left unsubscribed, "
              f"{report.suppressed} suppressed (not subscribed)")
    if report.export_suppressed:
        out.print(f"  {report.export_suppressed} unsubscribed, cleaned or blocked in the export: suppressed "
                  f"({report.suppressions_added} new suppressions, {report.subscriptions_ended} subscriptions ended)")
    if report.tags_normalised:
        out.print(f"  {report.tags_normalised} tags normalised (spaces to '-', lower-case)")
    for line, reason in report.first_rejects:
        err.print(f"  {name}: line {line}: {reason}", markup=False)
    if report.rejected > len(report.first_rejects):
        err.print(f"  ... {report.rejected - len(report.first_rejects)} more")
    if report.rejects_path:
        err.print(f"  rejected rows: {report.rejects_path}", markup=False)
