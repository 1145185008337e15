"""`mailer init`, `mailer db`, `mailer lists`, `mailer subscribers`: thin commands over the store."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mailer.cli import pass_app
from mailer.cli.output import LazyConsole, print_table
from mailer.cli.segments import tag_command, untag_command
from mailer.errors import InputError
from mailer.models import OptIn, SubscriptionStatus
from mailer.people import directory

if TYPE_CHECKING:
    from mailer.db import Database

out = LazyConsole(highlight=False, soft_wrap=True)
err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)
STATUS = click.Choice([s.value for s in SubscriptionStatus])


@click.command()
@pass_app
def init(app) -> None:  # type: ignore[no-untyped-def]
    """Create mailer.toml, secrets.toml with fresh keys (if absent) and the database."""
    from mailer.bootstrap import init_project

    result = init_project(app.settings)
    if result.config_written:
        out.print(f"wrote {result.config_path} (every setting, commented out)")
    else:
        out.print(f"{result.config_path} exists: left as it is")
    out.print(f"database {result.database_url}: migrations applied")
    if result.secrets_written:
        out.print(f"wrote {result.secrets_path} (mode 0600) with fresh {' and '.join(result.secrets_written)}: "
                  "every command reads it; keep a copy with your backups, apart from the database's",
                  markup=False)
    elif result.secrets_path.exists():
        out.print(f"{result.secrets_path} exists: left as it is", markup=False)
    else:
        out.print("MAILER_SECRET_KEYS and MAILER_HASH_KEY are set in the environment: no secrets file written")
    if result.gitignore_changed:
        out.print(f"{result.config_path.parent / '.gitignore'}: secrets and generated files are git-ignored",
                  markup=False)


@click.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


def _database(app) -> Database:  # type: ignore[no-untyped-def]
    from mailer.db import Database

    return Database.from_settings(app.settings)


@db_group.command("upgrade")
@click.argument("revision", default="head")
@pass_app
def db_upgrade(app, revision: str) -> None:  # type: ignore[no-untyped-def]
    """Apply migrations up to REVISION (default: head)."""
    _database(app).upgrade(revision)
    out.print(f"database upgraded to {revision}")


@db_group.command("downgrade")
@click.argument("revision")
@pass_app
def db_downgrade(app, revision: str) -> None:  # type: ignore[no-untyped-def]
    """Revert migrations down to REVISION ('-1' for one step, 'base' for an empty database)."""
    _database(app).downgrade(revision)
    out.print(f"database downgraded to {revision}")


@db_group.command("current")
@pass_app
def db_current(app) -> None:  # type: ignore[no-untyped-def]
    """Show the database's migration revision and whether it is the newest."""
    database = _database(app)
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as conn:
        heads = MigrationContext.configure(conn).get_current_heads()
    state = "up to date" if database.is_current() else "behind: run `mailer db upgrade`"
    out.print(f"revision {', '.join(heads) or '(none)'}: {state}")


@click.group("lists", invoke_without_command=True)
@click.pass_context
def lists_group(ctx: click.Context) -> None:
    """Mailing lists; with no subcommand, show them with counts per status."""
    if ctx.invoked_subcommand is not None:
        return
    summaries = directory.list_summaries(ctx.obj.db)
    if not summaries:
        click.echo("no lists yet: `mailer lists add SLUG NAME`")
        return
    print_table(["list", "name", "opt-in", *[s.value for s in SubscriptionStatus], "total"],
                [[s.slug, s.name, s.opt_in.value, *[str(s.counts[st]) for st in SubscriptionStatus], str(s.total)]
                 for s in summaries])


@lists_group.command("add")
@click.argument("slug")
@click.argument("name")
@click.option("--double-opt-in/--single-opt-in", default=True,
              help="Whether web sign-ups must confirm by email (default: double).")
@click.option("--description", default="", help="A sentence shown on the sign-up page.")
@pass_app
def lists_add(app, slug: str, name: str, double_opt_in: bool, description: str) -> None:  # type: ignore[no-untyped-def]
    """Create list SLUG called NAME."""
    directory.add_list(app.db, slug, name, OptIn.DOUBLE if double_opt_in else OptIn.SINGLE, description)
    out.print(f"list {slug} created ({'double' if double_opt_in else 'single'} opt-in)")


@lists_group.command("edit")
@click.argument("slug")
@click.option("--name", help="A new name (shown on the sign-up page and in the List-Id header).")
@click.option("--description", help="A new sentence shown on the sign-up page ('' for none).")
@click.option("--double-opt-in/--single-opt-in", default=None,
              help="Whether web sign-ups must confirm by email (default: unchanged).")
@pass_app
def lists_edit(app, slug: str, name: str | None, description: str | None,  # type: ignore[no-untyped-def]
               double_opt_in: bool | None) -> None:
    """Change list SLUG's name, description or opt-in policy (the slug stays)."""
    if name is None and description is None and double_opt_in is None:
        raise InputError("give --name, --description, --double-opt-in or --single-opt-in")
    opt_in = None if double_opt_in is None else OptIn.DOUBLE if double_opt_in else OptIn.SINGLE
    directory.edit_list(app.db, slug, name=name, description=description, opt_in=opt_in)
    out.print(f"list {slug} changed", markup=False)


@lists_group.command("welcome")
@click.argument("slug")
@click.argument("issue_dir", required=False)
@click.option("--off", is_flag=True, help="Send no welcome mail on this list any more.")
@pass_app
def lists_welcome(app, slug: str, issue_dir: str | None, off: bool) -> None:  # type: ignore[no-untyped-def]
    """Mail ISSUE_DIR once to each new confirmed subscriber of list SLUG (checked by composing it)."""
    if off == bool(issue_dir):
        raise InputError("give the welcome issue folder, or --off")
    subject = directory.set_welcome(app.db, app.settings, slug, None if off else issue_dir)
    click.echo(f"list {slug}: no welcome mail" if subject is None else
               f"list {slug}: new confirmed subscribers get {subject!r} (from {issue_dir})")


@click.group("subscribers")
def subscribers_group() -> None:
    """Subscribers: add, import, export, list, show, tag, untag, unsubscribe, erase."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option("--list", "list_slug", required=True, help="List to subscribe to.")
@click.option("--confirmed", is_flag=True, help="Consent is on record: confirmed now, no confirmation mail.")
@click.option("--welcome", is_flag=True, help="With --confirmed: also send the list's welcome mail.")
@pass_app
def subscribers_add(app, email: str, name: str, list_slug: str, confirmed: bool,  # type: ignore[no-untyped-def]
                    welcome: bool) -> None:
    """Add EMAIL to a list (pending unless --confirmed)."""
    from mailer.people.subscriptions import Outcome

    if welcome and not confirmed:
        raise InputError("--welcome needs --confirmed (a pending subscriber is welcomed when they confirm)")
    address, outcome = directory.add_subscriber(app.db, app.settings, email, name, list_slug, confirmed,
                                                welcome=welcome)
    if outcome is Outcome.SUPPRESSED:
        raise InputError(f"{address} is suppressed for {list_slug} (unsubscribed, bounced or erased); "
                         "only their own new confirmed opt-in can lift that")
    out.print(f"{address}: {outcome.value.replace('_', ' ')} on {list_slug}")


@subscribers_group.command("export")
@click.option("--list", "list_slug", help="Only this list's subscriptions (default: everyone).")
@click.option("--status", type=STATUS, help="Only subscriptions with this status.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: standard output).")
@pass_app
def subscribers_export(app, list_slug: str | None, status: str | None, output: Path | None) -> None:  # type: ignore[no-untyped-def]
    """Export subscribers as CSV (email, name, list, status, dates, attributes)."""
    wanted = SubscriptionStatus(status) if status else None
    if output is None:
        directory.export_subscribers(app.db, sys.stdout, list_slug, wanted)
        return
    tmp = output.with_name(output.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        count = directory.export_subscribers(app.db, f, list_slug, wanted)
    tmp.replace(output)
    err.print(f"{count} rows written to {output}", markup=False)


@subscribers_group.command("list")
@click.option("--list", "list_slug", help="Only this list.")
@click.option("--status", type=STATUS, help="Only subscriptions with this status.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="At most this many rows.")
@click.option("--search", "query", help="Only subscribers whose address or name begins with this (the desk's search).")
@pass_app
def subscribers_list(app, list_slug: str | None, status: str | None, limit: int,  # type: ignore[no-untyped-def]
                     query: str | None) -> None:
    """List subscriptions as a table (with --search, one row per subscriber and their lists)."""
    wanted = SubscriptionStatus(status) if status else None
    from rich.table import Table

    if query is not None:
        found = directory.find_subscribers(app.db, query, list_slug, wanted, limit)
        table = Table("email", "name", "lists", "since")
        for person in found.rows:
            table.add_row(person.email, person.name, ", ".join(f"{slug}: {st.value}" for slug, st in
                                                               person.subscriptions), person.created_at.date().isoformat())
        out.print(table)
        out.print(f"{len(found.rows)} shown" + (f" (--limit {limit})" if found.next_after else "")
                  + (f"; more than {len(found.rows)} names begin so: only the first in name order were searched"
                     if found.names_capped else ""))
        return

    table = Table("email", "name", "list", "status", "since")
    rows = directory.subscription_rows(app.db, list_slug, wanted, limit)
    for row in rows:
        table.add_row(row[0], row[1], row[2], row[3], row[5][:10])
    shown = len(rows)
    out.print(table)
    out.print(f"{shown} shown" + (f" (--limit {limit})" if shown == limit else ""))


@subscribers_group.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Everything held about the person, as JSON.")
@pass_app
def subscribers_show(app, email: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Show everything held about one person."""
    data = directory.person(app.db, app.settings, email)
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    sub = data["subscriber"]
    out.print(f"{sub['email']} ({sub['name'] or 'no name'}), since {sub['created_at'][:10]}", markup=False)
    for key in ("subscriptions", "consents", "audit_events", "deliveries", "bounces", "suppressions"):
        out.print(f"{key.replace('_', ' ')}: {len(data[key])}")
        for item in data[key]:
            out.print("  " + ", ".join(f"{k}={v}" for k, v in item.items() if v not in (None, "")), markup=False)


@subscribers_group.command("unsubscribe")
@click.argument("email")
@click.option("--list", "list_slug", help="Only from this list (default: every list).")
@pass_app
def subscribers_unsubscribe(app, email: str, list_slug: str | None) -> None:  # type: ignore[no-untyped-def]
    """Unsubscribe EMAIL (on their behalf) and suppress it: re-imports will not resubscribe it."""
    changed = directory.unsubscribe_person(app.db, app.settings, email, list_slug)
    out.print(f"{changed} subscription(s) unsubscribed; address suppressed for {list_slug or 'its lists'}")


@subscribers_group.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def subscribers_erase(app, email: str, yes: bool) -> None:  # type: ignore[no-untyped-def]
    """Erase everything held about EMAIL (right to erasure); only a keyed hash stays, to refuse re-import."""
    def confirm(address: str) -> None:
        if not yes:
            click.confirm(f"Erase {address} and all their data? This cannot be undone", abort=True)

    directory.erase(app.db, app.settings, email, confirm)
    out.print("erased; the address is suppressed by its hash only")


COMMANDS: list[click.Command] = [init, db_group, lists_group, subscribers_group]


from mailer.cli.imports import subscribers_import  # noqa: E402

subscribers_group.add_command(subscribers_import)
subscribers_group.add_command(tag_command)
subscribers_group.add_command(untag_command)
