"""The `mailer` command: a click group; each module of this package adds its commands."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

import click

from mailer import __version__
from mailer.config import Settings, load_settings
from mailer.errors import MailerError, database_error

# modules of this package that each export COMMANDS, a list of click commands
COMMAND_MODULES = ("settings", "issue", "store", "send", "schedule", "web", "bounces")


@dataclass
class AppContext:
    """What every command gets: the project root and, on first use, its settings."""

    root: Path | None
    config_file: Path | None
    _settings: Settings | None = field(default=None, repr=False)
    _db: object | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.root, config_file=self.config_file)
        return self._settings

    @property
    def db(self):  # type: ignore[no-untyped-def]
        """The database, checked to have its tables."""
        if self._db is None:
            from mailer.db import Database

            db = Database.from_settings(self.settings)
            db.require_schema()
            self._db = db
        return self._db


pass_app = click.make_pass_decorator(AppContext)


class MailerGroup(click.Group):
    """A group that turns every MailerError into one line on stderr and its exit code."""

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


for _name in COMMAND_MODULES:
    for _command in import_module(f"mailer.cli.{_name}").COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="mailer")
