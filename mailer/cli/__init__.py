"""The `mailer` command: a click group that imports a command's module only when it runs.

`mailer --help` lists every command from LAZY_COMMANDS (module, attribute and short help), so
it imports no command module and none of the heavy libraries they use (SQLAlchemy, premailer,
flask, APScheduler, dkimpy); tests/test_cli_startup.py checks both that and that the short
helps stored here match the commands' docstrings.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailer import __version__
from mailer.errors import MailerError, database_error

if TYPE_CHECKING:
    from mailer.config import Settings
    from mailer.db import Database

# command name -> ("module:attribute" under mailer.cli, the short help shown by `mailer --help`)
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "backup": ("backup:backup_command", "Write a consistent backup of the database to FILE, safe while a send "
                                        "runs."),
    "bounces": ("bounces:bounces", "Apply bounce and complaint reports: a Maildir, an mbox, .eml files, - "
                                   "for stdin, or an IMAP/POP3 mailbox."),
    "compose": ("issue:compose", "Validate and build ISSUE_DIR; print a summary and warnings."),
    "config": ("settings:config", "Show every setting in force, with its environment variable; "
                                  "secrets are masked."),
    "db": ("store:db_group", "Database schema (Alembic migrations)."),
    "digest": ("digest:digest_command", "Digest FOLDER's inbox: --cron plans a recurring dated issue of new "
                                        "reports; --preview shows the next."),
    "doctor": ("doctor:doctor", "Check settings, SPF, DKIM, DMARC, PTR and base_url before a first send; "
                                "exit 1 on a failure."),
    "init": ("store:init", "Create mailer.toml, secrets.toml with fresh keys (if absent) and the database."),
    "intake": ("intake:intake_group", "Poll the submission mailbox once and file new reports, held; then list, "
                                      "show, approve, reject."),
    "keys": ("keys:keys_group", "Compare the keys in force with the database's; `keys accept` makes them "
                                "its keys."),
    "lists": ("store:lists_group", "Mailing lists; with no subcommand, show them with counts per status."),
    "new-issue": ("issue:new_issue", "Scaffold a new issue folder: one report to fill in, or a copy of the "
                                    "example issue."),
    "preview": ("issue:preview", "Write build/<slug>/ (issue.html, issue.txt, sample.eml, index.html); "
                                 "--serve to watch."),
    "report": ("report:report_command", "Per send and list of an issue: sent, deferred, failed, bounced, "
                                        "complaints, unsubscribes; no tracking."),
    "restore": ("backup:restore_command", "Replace the database with the backup FILE, atomically; refuses a "
                                          "newer schema or a running send."),
    "schedule": ("schedule:schedule_group", "Plan sends: `mailer schedule ISSUE_DIR --list SLUG --at TIME` "
                                            "(or --cron), then list/move/cancel/refresh."),
    "scheduler": ("schedule:scheduler_command", "Run the scheduler daemon in the foreground (one per "
                                                "database); SIGTERM stops it cleanly."),
    "segments": ("segments:segments_group", "Saved segments (filters over subscribers); with no subcommand, "
                                            "list them with counts."),
    "send": ("send:send_command", "Send an issue to its lists, with a progress bar; resumable, never twice "
                                  "to one subscriber."),
    "serve": ("web:serve", "Serve the web pages; a background thread applies sign-ups and sends their "
                           "mails (unless turned off)."),
    "status": ("send:status_command", "Per send of an issue: status, counts per delivery status, and the "
                                      "failures."),
    "subscribers": ("store:subscribers_group", "Subscribers: add, import, export, list, show, tag, untag, unsubscribe, "
                                               "erase."),
    "users": ("users:users_group", "Desk accounts: add (prints a one-time link to set a password), list, "
                                  "role, disable, enable, reset, remove."),
    "worker": ("send:worker_command", "Send due sends and retries, apply web sign-ups and send their mails "
                                      "until stopped (SIGTERM: park)."),
}


@dataclass
class AppContext:
    """What every command gets: the project root and, on first use, its settings."""

    root: Path | None
    config_file: Path | None
    _settings: Settings | None = field(default=None, repr=False)
    _db: Database | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from mailer.config import load_settings

            self._settings = load_settings(self.root, config_file=self.config_file)
        return self._settings

    @property
    def db(self) -> Database:
        """The database, checked to have its tables and to know the keys in force (mailer.keyring)."""
        if self._db is None:
            from mailer.db import Database
            from mailer.keyring import check_keys

            db = Database.from_settings(self.settings)
            db.require_schema()
            check_keys(db, self.settings)
            self._db = db
        return self._db


pass_app = click.make_pass_decorator(AppContext)


class MailerGroup(click.Group):
    """Loads commands from LAZY_COMMANDS on first use; turns a MailerError into one line on stderr."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            module, _, attr = LAZY_COMMANDS[cmd_name][0].partition(":")
            self.add_command(getattr(import_module(f"mailer.cli.{module}"), attr), cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the stored short helps, so that help imports no command module."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            loaded = self.commands.get(name)
            if loaded is not None:
                if loaded.hidden:
                    continue
                rows.append((name, loaded.get_short_help_str(limit)))
            else:
                stand_in = click.Command(name, help=LAZY_COMMANDS[name][1])
                rows.append((name, stand_in.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except MailerError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # a database failure is one line too; anything else is a bug
            failure = database_error(exc)
            if failure is None:
                raise
            click.echo(f"error: {failure}", err=True)
            sys.exit(failure.exit_code)


@click.group(cls=MailerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailer")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), envvar="MAILER_ROOT",
              help="Project folder holding mailer.toml, issues/, templates/ (default: current folder).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              envvar="MAILER_CONFIG", help="Config file to read instead of <root>/mailer.toml.")
@click.pass_context
def cli(ctx: click.Context, root: Path | None, config_file: Path | None) -> None:
    """mailer: compose, preview, schedule and send a newsletter."""
    ctx.obj = AppContext(root=root, config_file=config_file)


def main() -> None:
    cli(prog_name="mailer")
