"""Commands about one issue: compose, preview, new-issue."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from pathlib import Path

import click

from mailer.cli import AppContext, pass_app
from mailer.cli.output import LazyConsole, print_table, print_warnings
from mailer.content.compose import ComposedIssue, compose_issue
from mailer.content.folders import create_issue_folder, slug_problem, slugify
from mailer.errors import InputError
from mailer.content.lint import html_part_size
from mailer.shipped import EXAMPLE_ISSUE

console = LazyConsole(highlight=False, soft_wrap=True)


def _warn_local_links(settings) -> None:  # type: ignore[no-untyped-def]
    from mailer.settingrules import local_links_warning

    warning = local_links_warning(settings.base_url)
    if warning:
        print_warnings([warning])


def _summary(issue: ComposedIssue) -> None:
    click.echo(issue.subject)
    print_table(["#", "report", "words", "title"],
                [[str(i), r.path.name, f"{r.words:,}", r.title] for i, r in enumerate(issue.reports, 1)])
    click.echo(f"lists: {', '.join(issue.lists) or '(none named in issue.toml)'}")
    click.echo(f"HTML part: {html_part_size(issue.html):,} bytes encoded; text part: "
               f"{len(issue.text.encode()):,} bytes")
    print_warnings(issue.warnings)


@click.command()
@click.argument("issue_dir")
@pass_app
def compose(app: AppContext, issue_dir: str) -> None:
    """Validate and build ISSUE_DIR; print a summary and warnings."""
    issue = compose_issue(app.settings, issue_dir)
    _summary(issue)
    _warn_local_links(app.settings)
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
    print_warnings(issue.warnings)
    _warn_local_links(app.settings)
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


SCAFFOLD_TOML = """\
# See the README ("Issue folders") for every key.
subject = {subject}
title = {subject}
preheader = ""
date = "{today}"
lists = ["news"]
intro = \"""
A few words to open the issue.
\"""
# reports = ["01-first-report.md"]   # the order; default: every file in reports/, sorted
"""
SCAFFOLD_REPORT = ("---\ntitle: The first report\nauthor: \n---\n\nWrite the report here, in Markdown, or "
                   "drop in a .txt file pasted from a word processor.\n")


def _fill(folder: Path, title: str, example: bool) -> None:
    """Write the new issue's files into *folder*: the scaffold, or the example issue retitled."""
    subject, today = json.dumps(title, ensure_ascii=False), date.today().isoformat()  # a TOML basic string
    if not example:
        (folder / "reports").mkdir()
        (folder / "issue.toml").write_text(SCAFFOLD_TOML.format(subject=subject, today=today), encoding="utf-8")
        (folder / "reports" / "01-first-report.md").write_text(SCAFFOLD_REPORT, encoding="utf-8")
        return
    shutil.copytree(EXAMPLE_ISSUE / "reports", folder / "reports")
    toml = (EXAMPLE_ISSUE / "issue.toml").read_text(encoding="utf-8")
    for key, value in (("subject", subject), ("title", subject), ("date", f'"{today}"')):
        toml = re.sub(rf"(?m)^{key} = .*$", lambda _m: f"{key} = {value}", toml, count=1)
    (folder / "issue.toml").write_text(toml, encoding="utf-8")


@click.command("new-issue")
@click.argument("title")
@click.option("--slug", help="Folder name (default: YYYY-MM-<title>).")
@click.option("--example", is_flag=True, help="Copy the example issue's three reports instead of one to fill in.")
@pass_app
def new_issue(app: AppContext, title: str, slug: str | None, example: bool) -> None:
    """Scaffold a new issue folder: one report to fill in, or a copy of the example issue."""
    from mailer.headers import has_header_trick

    if not title.strip() or has_header_trick(title):
        raise InputError("TITLE: must be one line of text")
    settings = app.settings
    slug = slug or f"{date.today():%Y-%m}-{slugify(title)}"
    problem = slug_problem(slug)
    if problem:
        raise InputError(f"--slug {slug!r}: {problem}")
    target = create_issue_folder(settings, slug, lambda staging: _fill(staging, title, example))
    reports = ", ".join(f"reports/{p.name}" for p in sorted((target / "reports").iterdir()))
    console.print(f"created {target}/ with issue.toml and {reports}")
    console.print(f"next: edit them, then `mailer preview {target}`")


COMMANDS = [compose, preview, new_issue]
