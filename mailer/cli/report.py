"""`mailer report`: an issue's delivery and reader figures, per send and per list, without tracking.

Parse, call mailer.sending.figures, print (a table, or JSON for the desk). No SQL here.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from mailer.cli import pass_app
from mailer.cli.output import print_table
from mailer.errors import MailerError

COLUMNS = ["list", "total", "sent", "deferred", "failed", "unknown", "hard", "soft", "complaints", "unsubscribes"]


def _cells(row) -> list[str]:  # type: ignore[no-untyped-def]
    return [row.list, *(str(n) for n in (row.total, row.sent, row.deferred, row.failed, row.unknown,
                                         row.bounced_hard, row.bounced_soft, row.complaints, row.unsubscribes))]


@click.command("report")
@click.argument("issue_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON (for scripts and the desk).")
@pass_app
def report_command(app, issue_dir: Path, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Per send and list of an issue: sent, deferred, failed, bounced, complaints, unsubscribes; no tracking."""
    from mailer.cli.send import issue_slug
    from mailer.sending import figures

    slug = issue_slug(app.settings, issue_dir, must_exist=False)
    sends = figures.issue_figures(app.db, slug)
    if not sends:
        raise MailerError(f"{slug}: not sent yet, no figures")
    if as_json:
        click.echo(json.dumps(figures.as_json(slug, sends), indent=2))
        return
    for send in sends:
        when = f", started {send.started_at[:16].replace('T', ' ')} UTC" if send.started_at else ""
        click.echo(f"send #{send.send_id} ({send.uid}): {send.status}{when}")
        rows = [_cells(row) for row in send.lists]
        if len(send.lists) > 1:
            rows.append(_cells(send.totals))
        print_table(COLUMNS, rows, indent="  ")
    click.echo("hard/soft: bounces reported for this send; unsubscribes: through this issue's links. "
               "No opens or clicks are tracked.")
