"""`mailer segments` and `mailer subscribers tag/untag`: thin commands over people.tagging.

Also the audience options `send` and `schedule` share (--tag, --segment, --exclude-list,
--exclude-segment).
"""

from __future__ import annotations

from typing import Any, Callable

import click

from mailer.cli import AppContext, pass_app
from mailer.cli.output import print_table


@click.group("segments", invoke_without_command=True)
@click.pass_context
def segments_group(ctx: click.Context) -> None:
    """Saved segments (filters over subscribers); with no subcommand, list them with counts."""
    if ctx.invoked_subcommand is not None:
        return
    from mailer.people import tagging

    views = tagging.segments(ctx.obj.db)
    if not views:
        click.echo('no segments yet: `mailer segments add NAME "tag = eastfield and status = confirmed"`')
        return
    print_table(["segment", "subscribers", "expression"], [[v.name, str(v.count), v.expression] for v in views])


@segments_group.command("add")
@click.argument("name")
@click.argument("expression")
@pass_app
def add_command(app: AppContext, name: str, expression: str) -> None:
    """Save EXPRESSION as segment NAME (checked first), and say how many it selects."""
    from mailer.people import tagging

    count = tagging.add_segment(app.db, name, expression)
    click.echo(f"segment {name.lower()}: {count} subscriber(s) now")


@segments_group.command("edit")
@click.argument("name")
@click.argument("expression")
@pass_app
def edit_command(app: AppContext, name: str, expression: str) -> None:
    """Change segment NAME to EXPRESSION (checked first; sends made with it keep their audience)."""
    from mailer.people import tagging

    count = tagging.edit_segment(app.db, name, expression)
    click.echo(f"segment {name.lower()}: {count} subscriber(s) now")


@segments_group.command("show")
@click.argument("name_or_expression")
@pass_app
def show_command(app: AppContext, name_or_expression: str) -> None:
    """How many subscribers a segment (or an expression, tried before saving) selects, and a few of them."""
    from mailer.people import tagging

    try:
        expression = tagging.segment_expression(app.db, name_or_expression)
    except tagging.NoSuchSegment:
        expression = name_or_expression
    count = tagging.count_of(app.db, expression)
    click.echo(f"{expression}: {count} subscriber(s)")
    for email in tagging.sample_of(app.db, expression):
        click.echo(f"  {email}")


@segments_group.command("remove")
@click.argument("name")
@pass_app
def remove_command(app: AppContext, name: str) -> None:
    """Delete segment NAME (sends made with it keep their audience)."""
    from mailer.people import tagging

    tagging.remove_segment(app.db, name)
    click.echo(f"segment {name.lower()} removed")


@click.command("tag")
@click.argument("email")
@click.argument("tags", nargs=-1, required=True)
@pass_app
def tag_command(app: AppContext, email: str, tags: tuple[str, ...]) -> None:
    """Add TAGS to the subscriber EMAIL (letters, digits, '-', '_', '.')."""
    from mailer.people import tagging

    added = tagging.tag(app.db, email, tags)
    click.echo(f"{email}: {added} tag(s) added; tags: {', '.join(tagging.tags_of(app.db, email))}")


@click.command("untag")
@click.argument("email")
@click.argument("tags", nargs=-1, required=True)
@pass_app
def untag_command(app: AppContext, email: str, tags: tuple[str, ...]) -> None:
    """Remove TAGS from the subscriber EMAIL."""
    from mailer.people import tagging

    removed = tagging.untag(app.db, email, tags)
    click.echo(f"{email}: {removed} tag(s) removed; tags: {', '.join(tagging.tags_of(app.db, email)) or 'none'}")


def audience_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--tag, --segment, --exclude-list, --exclude-segment on a command that starts a send."""
    for option in reversed([
        click.option("--tag", "tags", multiple=True, metavar="TAG",
                     help="Only subscribers with this tag (repeatable: any of them)."),
        click.option("--segment", metavar="NAME", help="Only subscribers in this saved segment."),
        click.option("--exclude-list", "exclude_lists", multiple=True, metavar="SLUG",
                     help="Leave out the confirmed subscribers of this list (repeatable)."),
        click.option("--exclude-segment", metavar="NAME", help="Leave out the subscribers in this segment."),
    ]):
        command = option(command)
    return command


def chosen_audience(app: AppContext, tags: tuple[str, ...], segment: str | None,
                    exclude_lists: tuple[str, ...], exclude_segment: str | None) -> dict | None:
    """The audience JSON a send stores, from the options (None for the whole lists)."""
    from mailer.people import tagging

    chosen = tagging.audience(app.db, tags=tags, segment=segment, exclude_lists=exclude_lists,
                              exclude_segment=exclude_segment)
    return chosen.as_json() if chosen is not None else None
