"""`mailer backup FILE` and `mailer restore FILE`: parse, call mailer.backup, print."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailer.cli import AppContext, pass_app


def _size(path: Path) -> str:
    size = float(path.stat().st_size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _database(app: AppContext):  # type: ignore[no-untyped-def]
    """The database, without the schema check: a restore may bring the first one."""
    from mailer.db import Database

    return Database.from_settings(app.settings)


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def backup_command(app: AppContext, file: Path) -> None:
    """Write a consistent backup of the database to FILE, safe while a send runs."""
    from mailer.backup import backup

    made = backup(_database(app), file)
    click.echo(f"backed up the {made.kind} database (schema {made.revision}) to {file} ({_size(file)})")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Restore even while a send is running (stop it first if you can).")
@click.option("--yes", is_flag=True, help="Do not ask before replacing the database.")
@pass_app
def restore_command(app: AppContext, file: Path, force: bool, yes: bool) -> None:
    """Replace the database with the backup FILE, atomically; refuses a newer schema or a running send."""
    from mailer.backup import read_backup, restore, running_sends
    from mailer.errors import InputError

    db = _database(app)
    found = read_backup(file, db)
    if not yes:
        if not sys.stdin.isatty():
            raise InputError("restore: pass --yes to replace the database without a terminal to ask on")
        senders = running_sends(db)
        warning = f" A send is running ({', '.join(senders)})." if senders else ""
        click.confirm(f"Replace every row of {db.engine.url.render_as_string(hide_password=True)} with the "
                      f"backup {file} (schema {found.revision})?{warning}", abort=True)
    restore(db, file, force=force)
    click.echo(f"restored {file} (schema {found.revision}) into the {found.kind} database; "
               "now at the newest schema")
