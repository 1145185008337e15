"""`mailer bounces`: apply bounce (DSN) and complaint (ARF) reports from mailboxes, files or stdin."""

from __future__ import annotations

import click

from mailer.cli import AppContext, pass_app


@click.command("bounces")
@click.argument("paths", nargs=-1)
@click.option("--ca-file", default=None, metavar="FILE",
              help="CA certificates to verify an IMAP/POP3 server with (default: bounces.ca_file, else the system's).")
@pass_app
def bounces(app: AppContext, paths: tuple[str, ...], ca_file: str | None) -> None:
    """Apply bounce and complaint reports: a Maildir, an mbox, .eml files, - for stdin, or an IMAP/POP3 mailbox.

    With no PATH, the `bounces.mailbox` setting. Each mail is processed once
    (remembered by its Message-ID); processed reports are put away (Maildir:
    cur/ with the seen flag; IMAP: flagged seen, moved to `bounces.done_folder`;
    POP3: deleted); mails that are not reports are counted and left in place.
    """
    from mailer.people.bouncebox import Tally, collect_reports, settings_mailbox

    total = Tally()
    for where in paths or (None,):
        box = settings_mailbox(app.settings, where, ca_file)
        total.add(collect_reports(app.db, app.settings, box, log=click.echo))
    click.echo(total.line())


COMMANDS = [bounces]
