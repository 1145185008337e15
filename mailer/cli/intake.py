"""`mailer intake`: file the reports mailed to the submission address (held), and decide on them.

Parse, call, print; mailer.submissions does the work (loaded inside each command).
"""

from __future__ import annotations

import click

from mailer.cli import AppContext, pass_app


@click.group("intake", invoke_without_command=True)
@click.pass_context
def intake_group(ctx: click.Context) -> None:
    """Poll the submission mailbox once and file new reports, held; then list, show, approve, reject."""
    if ctx.invoked_subcommand is not None:
        return
    from mailer.submissions.poll import intake

    app: AppContext = ctx.obj
    tally = intake(app.db, app.settings, log=click.echo)
    click.echo(tally.line())


@intake_group.command("list")
@pass_app
def list_command(app: AppContext) -> None:
    """The held reports: ID, sender, title, date."""
    from mailer.cli.output import print_table
    from mailer.submissions.held import held_reports

    rows = held_reports(app.db)
    if not rows:
        click.echo("no held reports")
        return
    print_table(["id", "sender", "title", "received (UTC)", "files"],
                [[str(h.id), h.sender, h.title or "(no subject)", f"{h.received_at:%Y-%m-%d %H:%M}",
                  str(len(h.reports) + len(h.images))] for h in rows])


@intake_group.command("show")
@click.argument("submission_id", metavar="ID", type=int)
@pass_app
def show_command(app: AppContext, submission_id: int) -> None:
    """One submission: sender, title, reports (their text), images, what was dropped."""
    from mailer.submissions.held import get

    held = get(app.db, submission_id)
    click.echo(f"#{held.id} {held.status}: {held.title or '(no subject)'}")
    click.echo(f"from {held.sender}, received {held.received_at:%Y-%m-%d %H:%M} UTC, for {held.digest}")
    if held.reason:
        click.echo(f"reason: {held.reason}")
    for name in held.images:
        click.echo(f"image: {name}")
    for name, why in held.dropped:
        click.echo(f"dropped: {name}: {why}")
    if held.note:
        click.echo("note (the mail's text; the attachments are the reports):")
        click.echo(held.note.rstrip())
    for name, text in held.texts():
        click.echo(f"--- {name}")
        click.echo(text.rstrip())


@intake_group.command("approve")
@click.argument("submission_id", metavar="ID", type=int)
@pass_app
def approve_command(app: AppContext, submission_id: int) -> None:
    """Move held report ID into its digest's inbox: the next digest run takes it."""
    from mailer.submissions.held import approve

    moved, notes = approve(app.db, app.settings, submission_id)
    for line in notes:
        click.echo(line)
    click.echo(f"approved #{submission_id}: {', '.join(moved)} in the digest's inbox")


@intake_group.command("reject")
@click.argument("submission_id", metavar="ID", type=int)
@click.option("--reason", default="", help="Why, kept with the record.")
@pass_app
def reject_command(app: AppContext, submission_id: int, reason: str) -> None:
    """Reject held report ID: its files are deleted; the record stays."""
    from mailer.submissions.held import reject

    held = reject(app.db, submission_id, reason)
    click.echo(f"rejected #{held.id} from {held.sender}: {held.title or '(no subject)'}")


COMMANDS: list[click.Command] = [intake_group]
