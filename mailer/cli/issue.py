"""Commands about one issue: compose, preview, new-issue."""

from __future__ import annotations

import re
from datetime import date

import click

from mailer.cli import AppContext, pass_app
from mailer.cli.output import LazyConsole, print_table
from mailer.content.compose import ComposedIssue, compose_issue
from mailer.errors import InputError
from mailer.content.lint import html_part_size

console = LazyConsole(highlight=False, soft_wrap=True)


def _summary(issue: ComposedIssue) -> None:
    click.echo(issue.subject)
    print_table(["#", "report", "words", "title"],
                [[str(i), r.path.name, f"{r.words:,}", r.title] for i, r in enumerate(issue.reports, 1)])
    click.echo(f"lists: {', '.join(issue.lists) or '(none named in issue.toml)'}")
    click.echo(f"HTML part: {html_part_size(issue.html):,} bytes encoded; text part: "
               f"{len(issue.text.encode()):,} bytes")
    for warning in issue.warnings:
        click.echo(click.style("warning:", fg="yellow") + f" {warning}")


@click.command()
@click.argument("issue_dir")
@pass_app
def compose(app: AppContext, issue_dir: str) -> None:
    """Validate and build ISSUE_DIR; print a summary and warnings."""
    issue = compose_issue(app.settings, issue_dir)
    _summary(issue)
    click.echo(click.style("ok", fg="green") + f": {issue.slug} composes ({issue.report_count} reports)")


@click.command()
@click.argument("issue_dir")
@click.option("--serve", is_flag=True, help="Serve the preview locally and rebuild when a file changes.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for --serve.")
@click.option("--port", default=8026, show_default=True, type=click.IntRange(0, 65535),
              help="Port for --serve (0: any free port).")
@click.option("--as", "as_email", metavar="EMAIL", help="Personalise as this subscriber.")
@pass_app
def preview(app: AppContext, issue_dir: str, serve: bool, host: str, port: int, as_email: str | None) -> None:
    """Write build/<slug>/ (issue.html, issue.txt, sample.eml, index.html); --serve to watch."""
    from mailer.mail.preview import PreviewServer, write_preview
    from mailer.people import directory

    issue = compose_issue(app.settings, issue_dir)
    recipient = directory.preview_recipient(app.db, as_email, issue.lists) if as_email else None
    for warning in issue.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if not serve:
        files = write_preview(app.settings, issue, recipient)
        console.print(f"wrote {files.folder}/: index.html (named and nameless reader, light and dark, phone "
                      "without <style>, text part, warnings), issue*.html, issue*.txt, archive.html, sample.eml")
        console.print(f"open {files.index} in a browser, or {files.eml} in a mail client")
        return
    try:
        server = PreviewServer(app.settings, issue_dir, host=host, port=port, recipient=recipient)
    except OSError as exc:
        raise InputError(f"--port {port}: cannot listen on {host}:{port}: {exc.strerror}") from None
    console.print(f"previewing {issue.slug} at {server.address} (Ctrl+C to stop); "
                  "the page reloads when a report or template changes")
    server.serve_forever()


def slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:60].strip("-") or "issue"


@click.command("new-issue")
@click.argument("title")
@click.option("--slug", help="Folder name (default: YYYY-MM-<title>).")
@pass_app
def new_issue(app: AppContext, title: str, slug: str | None) -> None:
    """Scaffold a new issue folder from the example issue."""
    from mailer.headers import has_header_trick

    if not title.strip() or has_header_trick(title):
        raise InputError("TITLE: must be one line of text")
    settings = app.settings
    slug = slug or f"{date.today():%Y-%m}-{slugify(title)}"
    if slugify(slug) != slug.lower():
        raise InputError(f"--slug {slug!r}: use lower-case letters, digits and dashes")
    target = settings.path(settings.issues_dir) / slug
    if target.exists():
        raise InputError(f"{target}: already exists")
    (target / "reports").mkdir(parents=True)
    subject = title.replace('"', "'")
    (target / "issue.toml").write_text(
        f'# See the README ("Issue folders") for every key.\n'
        f'subject = "{subject}"\n'
        f'title = "{subject}"\n'
        f'preheader = ""\n'
        f'date = "{date.today().isoformat()}"\n'
        f'lists = ["news"]\n'
        f'intro = """\nA few words to open the issue.\n"""\n'
        f'# reports = ["01-first-report.md"]   # the order; default: every file in reports/, sorted\n',
        encoding="utf-8")
    (target / "reports" / "01-first-report.md").write_text(
        "---\ntitle: The first report\nauthor: \n---\n\nWrite the report here, in Markdown, or drop in "
        "a .txt file pasted from a word processor.\n", encoding="utf-8")
    console.print(f"created {target}/ with issue.toml and reports/01-first-report.md")
    console.print(f"next: edit them, then `mailer preview {target}`")


COMMANDS = [compose, preview, new_issue]
