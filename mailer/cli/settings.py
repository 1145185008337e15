"""`mailer config`: the settings in force and where each came from."""

from __future__ import annotations

import os

import click
from rich.console import Console
from rich.table import Table

from mailer.cli import AppContext, pass_app
from mailer.config import SECRET_FIELDS, SETTING_NAMES, dotted_name, env_name


@click.command("config")
@pass_app
def config(app: AppContext) -> None:
    """Show every setting in force, with its environment variable; secrets are masked."""
    settings = app.settings
    table = Table(show_edge=False)
    table.add_column("setting (mailer.toml)")
    table.add_column("environment")
    table.add_column("value")
    for name in SETTING_NAMES:
        value = getattr(settings, name)
        if name in SECRET_FIELDS:
            shown = f"({len(value)} set)" if isinstance(value, tuple) and value else ("set" if value else "not set")
        elif isinstance(value, tuple):
            shown = ", ".join(value)
        else:
            shown = str(value)
        source = env_name(name) + (" (set)" if env_name(name) in os.environ else "")
        table.add_row(dotted_name(name), source, shown)
    Console(highlight=False).print(table)


COMMANDS = [config]
