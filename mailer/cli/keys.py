"""`mailer keys`: the keys in force against the database's fingerprints; `keys accept` after a loss."""

from __future__ import annotations

import click

from mailer.cli import AppContext, pass_app


def _database(app: AppContext):  # type: ignore[no-untyped-def]
    """The database without the key check (these commands are how a refused key is dealt with)."""
    from mailer.db import Database

    db = Database.from_settings(app.settings)
    db.require_schema()
    return db


def _describe(state) -> str:  # type: ignore[no-untyped-def]
    if state.given == 0:
        return "not set" + ("; the database knows one: refused" if state.recorded else "")
    if state.recorded == 0:
        return f"{state.given} set, not recorded yet (recorded by the next command)"
    if state.known == state.given == state.recorded:
        return f"{state.given} set, the database's"
    if state.known and state.name == "secret_keys":
        return (f"{state.given} set, {state.known} of them known to the database: a rotation, "
                "recorded by the next command")
    return f"{state.given} set, unknown to the database: refused (`mailer keys accept` to make them its keys)"


@click.group("keys", invoke_without_command=True)
@click.pass_context
def keys_group(ctx: click.Context) -> None:
    """Compare the keys in force with the database's; `keys accept` makes them its keys."""
    if ctx.invoked_subcommand is not None:
        return
    from mailer.keyring import key_states

    for state in key_states(_database(ctx.obj), ctx.obj.settings):
        click.echo(f"{state.name}: {_describe(state)}")


@keys_group.command("accept")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def keys_accept(app: AppContext, yes: bool) -> None:
    """Make the keys in force the database's keys (after a lost or replaced key)."""
    from mailer.keyring import accept_keys, key_states

    db = _database(app)
    if not yes:
        for state in key_states(db, app.settings):
            click.echo(f"{state.name}: {_describe(state)}")
        click.confirm("Make the keys in force this database's keys? Unsubscribe and preferences links keep "
                      "working; pending confirmation links and links of mails sent before links had their "
                      "own secrets stop working with a lost key; a new hash key lets erased addresses be "
                      "imported again", abort=True)
    accept_keys(db, app.settings)
    click.echo("the keys in force are now the database's keys")


@keys_group.command("rotate")
@pass_app
def keys_rotate(app: AppContext) -> None:
    """Put a fresh signing key first in the secrets file; the old ones stay listed and still verify."""
    import os
    import secrets

    from mailer.config import load_settings
    from mailer.errors import ConfigError
    from mailer.keyring import check_keys
    from mailer.secretfile import add_signing_key

    path = app.settings.path(app.settings.secrets_file)
    if "MAILER_SECRET_KEYS" in os.environ or "MAILER_SECRET_KEYS_FILE" in os.environ:
        raise ConfigError("MAILER_SECRET_KEYS is set in the environment, which wins over "
                          f"{path}: rotate it there (a new key first, the old ones after it)")
    if not path.exists():
        raise ConfigError(f"{path}: no secrets file: run `mailer init` first")
    db = app.db                              # the keys in force must be the database's before a rotation
    keys = add_signing_key(path, secrets.token_urlsafe(32))
    check_keys(db, load_settings(app.root, config_file=app.config_file))   # records the new set
    click.echo(f"{path}: a fresh signing key first, {len(keys) - 1} older one(s) kept; drop an old key "
               "only when no pending confirmation link needs it")


COMMANDS: list[click.Command] = [keys_group]
