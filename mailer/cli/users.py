"""`mailer users`: desk accounts (add, list, disable, reset, remove); links are printed, passwords never."""

from __future__ import annotations

import click

from mailer.cli import pass_app
from mailer.cli.output import print_table


def _link(app, secret: str) -> str:  # type: ignore[no-untyped-def]
    return f"{app.settings.base_url.rstrip('/')}/desk/password/{secret}"


@click.group("users")
def users_group() -> None:
    """Desk accounts: add (prints a one-time link to set a password), list, role, disable, enable, reset, remove."""


@users_group.command("add")
@click.argument("email")
@click.option("--role", default="editor", show_default=True, help="editor, or admin (also manages accounts).")
@pass_app
def users_add(app, email: str, role: str) -> None:  # type: ignore[no-untyped-def]
    """Create a desk account for EMAIL and print its one-time link to set a password (24 hours)."""
    from mailer.desk import accounts

    secret = accounts.add_user(app.db, email, role)
    click.echo(f"desk account {email.strip()} ({role}) created; send them this one-time link "
               f"(valid 24 hours) to choose a password:")
    click.echo(_link(app, secret))


@users_group.command("list")
@pass_app
def users_list(app) -> None:  # type: ignore[no-untyped-def]
    """Show every desk account: role, state, two-step login (totp), created, last login."""
    from mailer.desk import accounts

    users = accounts.list_users(app.db)
    if not users:
        click.echo("no desk accounts yet: `mailer users add EMAIL --role admin`")
        return
    print_table(["email", "role", "state", "totp", "created", "last login"], [
        [u.email, u.role, u.state, "on" if u.totp else "off", u.created_at.strftime("%Y-%m-%d %H:%M UTC"),
         u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "never"] for u in users])


@users_group.command("disable")
@click.argument("email")
@pass_app
def users_disable(app, email: str) -> None:  # type: ignore[no-untyped-def]
    """Disable EMAIL's account: its sessions end at once, its links stop working (not the last admin)."""
    from mailer.desk import accounts

    ended = accounts.disable_user(app.db, email)
    click.echo(f"desk account {email.strip()} disabled; {ended} session(s) ended "
               "(`mailer users reset` gives it a new link)")


@users_group.command("enable")
@click.argument("email")
@pass_app
def users_enable(app, email: str) -> None:  # type: ignore[no-untyped-def]
    """Enable EMAIL's disabled account again (its old password works again)."""
    from mailer.desk import accounts

    accounts.enable_user(app.db, email)
    click.echo(f"desk account {email.strip()} enabled")


@users_group.command("role")
@click.argument("email")
@click.argument("role")
@pass_app
def users_role(app, email: str, role: str) -> None:  # type: ignore[no-untyped-def]
    """Make EMAIL's account an editor or an admin (the last active admin stays an admin)."""
    from mailer.desk import accounts

    accounts.set_role(app.db, email, role)
    click.echo(f"desk account {email.strip()} is now {role}")


@users_group.command("reset")
@click.argument("email")
@pass_app
def users_reset(app, email: str) -> None:  # type: ignore[no-untyped-def]
    """Print a new one-time link for EMAIL to set a password (re-enables a disabled account).

    Using the link also turns the account's two-step login (TOTP) off, for a lost phone.
    """
    from mailer.desk import accounts

    secret = accounts.reset_user(app.db, email)
    click.echo(f"one-time link for {email.strip()} (valid 24 hours; using it also turns two-step login off):")
    click.echo(_link(app, secret))


@users_group.command("remove")
@click.argument("email")
@pass_app
def users_remove(app, email: str) -> None:  # type: ignore[no-untyped-def]
    """Delete EMAIL's account and its sessions (the audit log keeps its address; not the last admin)."""
    from mailer.desk import accounts

    accounts.remove_user(app.db, email)
    click.echo(f"desk account {email.strip()} removed")
