"""`mailer send`, `mailer status`, `mailer worker`: parse, call mailer.sending (campaign, ledger, loop,
worker), print. No SQL here; rich, the backends and the message machinery load inside the commands
that use them, so `mailer status` starts fast."""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import click

from mailer.cli import pass_app
from mailer.cli.output import print_table, print_warnings
from mailer.cli.segments import audience_options, chosen_audience
from mailer.errors import InputError, MailerError
from mailer.models import DeliveryStatus, SendStatus
from mailer.sending import campaign, ledger

if TYPE_CHECKING:
    from mailer.sending.summary import SendSummary

ISSUE_DIR = click.Path(file_okay=False, path_type=Path)


def issue_slug(settings, issue_dir: Path, must_exist: bool = True) -> str:  # type: ignore[no-untyped-def]
    """The slug sends of *issue_dir* are recorded under (its folder name)."""
    from mailer.content.folders import find_issue
    from mailer.errors import ComposeError

    try:
        return find_issue(settings, issue_dir).name
    except ComposeError:
        if must_exist:
            raise
        return issue_dir.name


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM / SIGINT set the event: the message in flight finishes, then the loop parks."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    old = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _progress_run(app, send_id: int, backend, stop: threading.Event) -> SendSummary:  # type: ignore[no-untyped-def]
    """run_send with a rich progress bar (rate and ETA) on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from mailer.sending.loop import run_send

    db = app.db
    ledger.freeze_audience(db, send_id)
    with db.session() as session:
        counts = ledger.counts(session, send_id)
    total = sum(counts.values())
    already = total - counts[DeliveryStatus.QUEUED] - counts[DeliveryStatus.DEFERRED]
    console = Console(stderr=True)
    columns = [TextColumn("sending"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} msg/s"), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as bar:
        task = bar.add_task("send", total=total, completed=already, rate="-")

        def progress(summary: SendSummary) -> None:
            bar.update(task, completed=already + summary.processed)
            speed = bar.tasks[0].speed
            bar.update(task, rate=f"{speed:,.0f}" if speed else "-")

        return run_send(db, app.settings, send_id, backend=backend, progress=progress, stop=stop)


def _report(summary: SendSummary, issue_dir: Path, stopped: bool) -> None:
    c = summary.counts
    click.echo(f"send #{summary.send_id}: {summary.sent} sent now; ledger: {c[DeliveryStatus.SENT]} sent, "
               f"{c[DeliveryStatus.DEFERRED]} deferred, {c[DeliveryStatus.FAILED]} failed, "
               f"{c[DeliveryStatus.SKIPPED]} skipped, {c[DeliveryStatus.UNKNOWN]} unknown, "
               f"{c[DeliveryStatus.QUEUED]} queued of {summary.total}")
    if summary.bounced:
        click.echo(f"{summary.bounced} hard bounce(s): those addresses are now suppressed")
    if summary.next_retry_at and summary.status is SendStatus.SENDING:
        click.echo(f"deferred rows are retried from {summary.next_retry_at:%Y-%m-%d %H:%M} UTC by `mailer worker` "
                   f"(or `mailer send {issue_dir} --resume`)")
    if stopped:
        raise MailerError(f"stopped; continue with `mailer send {issue_dir} --resume`")
    if summary.status is SendStatus.PAUSED:
        raise MailerError(f"send #{summary.send_id} paused: {summary.reason}; "
                          f"continue with `mailer send {issue_dir} --resume`")
    if summary.status is SendStatus.DONE:
        click.echo(f"send #{summary.send_id} done")


def _confirmed(yes: bool, question: str) -> bool:
    """--yes, or the user's answer; never waits on a stdin that is not a terminal."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise InputError("stdin is not a terminal: pass --yes to confirm the send")
    return click.confirm(question)


def _continue(db, slug: str, yes: bool, retry_failed: bool, retry_unknown: bool) -> int:  # type: ignore[no-untyped-def]
    """--resume / --retry-*: take the recorded send over; returns its id."""
    if not yes and not sys.stdin.isatty():
        raise InputError("stdin is not a terminal: pass --yes to confirm the send")
    resumed = campaign.take_over(db, slug, retry_failed=retry_failed, retry_unknown=retry_unknown)
    if resumed.unknown:
        click.echo(f"{resumed.unknown} message(s) were in flight when the last run died: marked unknown, "
                   "not resent (see `mailer status`, --retry-unknown)")
    if resumed.retried:
        click.echo(f"{resumed.retried} row(s) queued again")
    if not _confirmed(yes, f"Continue send #{resumed.send_id}?"):
        ledger.set_send_status(db, resumed.send_id, SendStatus.PAUSED, "not confirmed")
        raise MailerError("not sent")
    return resumed.send_id


def _print_dry_run(settings, subject: str, total: int, per_list: dict[str, int],  # type: ignore[no-untyped-def]
                   sample: list[str]) -> None:
    for name, n in per_list.items():
        click.echo(f"{name}: {n} confirmed, not suppressed")
    click.echo(f"would send {subject!r} to {total} subscriber(s)"
               + (f", all redirected to {settings.dev_redirect}" if settings.dev_redirect else ""))
    for email in sample:
        click.echo(f"  {email}")
    if total > len(sample):
        click.echo(f"  ... and {total - len(sample)} more")
    click.echo("dry run: nothing sent, nothing recorded")


@click.command("send")
@click.argument("issue_dir", type=ISSUE_DIR)
@click.option("--list", "lists", multiple=True, metavar="SLUG",
              help="List to send to (repeatable; default: `lists` in issue.toml).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when stdin is not a terminal).")
@click.option("--dry-run", is_flag=True, help="Show who would get it and how many; send nothing.")
@click.option("--backend", "backend_name", metavar="NAME", help="Backend: smtp, file, memory or module:Class.")
@click.option("--to", "to_addr", metavar="ADDR", help="Test send to this one address; not recorded as the campaign.")
@click.option("--resume", is_flag=True, help="Continue the interrupted or paused send of this issue.")
@click.option("--retry-failed", is_flag=True, help="Retry the temporary failures (deferred, 4xx) of the last send.")
@click.option("--retry-unknown", is_flag=True,
              help="Resend rows left 'unknown' by a crash (some may get a second copy).")
@click.option("--again", is_flag=True, help="Send an issue a second time to a list it was already sent to.")
@audience_options
@pass_app
def send_command(app, issue_dir: Path, lists: tuple[str, ...], yes: bool, dry_run: bool,  # type: ignore[no-untyped-def]
                 backend_name: str | None, to_addr: str | None, resume: bool, retry_failed: bool,
                 retry_unknown: bool, again: bool, tags: tuple[str, ...], segment: str | None,
                 exclude_lists: tuple[str, ...], exclude_segment: str | None) -> None:
    """Send an issue to its lists, with a progress bar; resumable, never twice to one subscriber."""
    from mailer.backends import load_backend
    from mailer.backends.base import DeliveryOutcome
    from mailer.people.tagging import Audience
    from mailer.settingrules import require_public_links

    settings = app.settings
    slug = issue_slug(settings, issue_dir)
    continuing = resume or retry_failed or retry_unknown
    chosen = bool(tags or segment or exclude_lists or exclude_segment)
    if continuing and (lists or to_addr or dry_run or again or chosen):
        raise InputError("--resume/--retry-* continue the recorded send: don't combine with --list, --to, "
                         "--dry-run, --again or the audience options")
    backend = load_backend(settings, backend_name)
    if not dry_run:
        require_public_links(settings.base_url, backend.name)
    db = app.db
    if continuing:
        send_id = _continue(db, slug, yes, retry_failed, retry_unknown)
    else:
        from mailer.content.compose import compose_issue

        composed = compose_issue(settings, issue_dir)
        print_warnings(composed.warnings, err=True)
        targets = list(lists) or list(composed.lists)
        if to_addr:
            result = campaign.send_test_message(settings, db, composed, to_addr, backend, targets[0] if targets else "")
            if result.outcome is not DeliveryOutcome.SENT:
                raise MailerError(f"test send to {to_addr} failed: {result.code} {result.reply}")
            click.echo(f"test message sent to {settings.dev_redirect or to_addr} ({result.reply}); "
                       "not recorded as the campaign")
            return
        if not targets:
            raise InputError(f"{issue_dir}: no list to send to: pass --list or set `lists` in issue.toml")
        audience = chosen_audience(app, tags, segment, exclude_lists, exclude_segment)
        who = Audience.of(audience) if audience else None
        with db.session() as session:
            total, per_list = ledger.audience_count(session, targets, who)
            sample = ledger.audience_sample(session, targets, audience=who) if dry_run else []
        which = f" ({who.describe()})" if who else ""
        if dry_run:
            _print_dry_run(settings, composed.subject + which, total, per_list, sample)
            return
        if total == 0:
            raise InputError(f"no confirmed subscribers in {', '.join(targets)}{which}: nothing to send")
        campaign.check_not_sent(db, composed.slug, targets, again)
        if not _confirmed(yes, f"Send {composed.subject!r} to {total} subscriber(s) of {', '.join(targets)}{which}?"):
            raise MailerError("not sent")
        # the count asked about is the count sent to (--yes asked nobody: no count to hold it to)
        send_id = campaign.start_confirmed(db, composed, targets, again=again, audience=audience,
                                           expected=None if yes else total)
    try:
        with stop_on_signals() as stop:
            summary = _progress_run(app, send_id, backend, stop)
            stopped = stop.is_set()
    finally:
        backend.close()
    if stopped and summary.status is SendStatus.SENDING:
        ledger.set_send_status(db, send_id, SendStatus.PAUSED, "stopped by a signal",
                               only_from=SendStatus.SENDING)
    folder = getattr(backend, "directory", None)
    if backend.name == "file" and folder is not None and summary.sent:
        click.echo(f"messages written to {folder}/ (one .eml each)")
    _report(summary, issue_dir, stopped)


@click.command("status")
@click.argument("issue_dir", type=ISSUE_DIR)
@click.option("--limit", default=50, show_default=True, help="How many failed or unknown rows to list.")
@pass_app
def status_command(app, issue_dir: Path, limit: int) -> None:  # type: ignore[no-untyped-def]
    """Per send of an issue: status, counts per delivery status, and the failures."""
    db, slug = app.db, issue_slug(app.settings, issue_dir, must_exist=False)
    sends = campaign.sends_of(db, slug)
    if not sends:
        click.echo(f"{slug}: not sent yet")
        return
    for send in sends:
        with db.session() as session:
            counts = ledger.counts(session, send.id)
            problems = ledger.problem_rows(session, send.id, limit)
        reason = f" ({send.status_reason})" if send.status_reason else ""
        click.echo(f"send #{send.id} to {', '.join(send.list_slugs)}: {send.status.value}{reason}")
        click.echo("  " + ", ".join(f"{s.value} {n}" for s, n in counts.items()) + f", total {sum(counts.values())}")
        if problems:
            print_table(["address", "status", "code", "reply"],
                        [[email or "(erased)", status.value, code or "", (reply or "")[:120]]
                         for email, status, code, reply in problems], indent="  ")


@click.command("worker")
@click.option("--backend", "backend_name", metavar="NAME", help="Backend: smtp, file, memory or module:Class.")
@click.option("--poll", default=5.0, show_default=True, help="Seconds between looks for due work.")
@click.option("--until-idle", is_flag=True, help="Exit when nothing is due instead of waiting for more.")
@pass_app
def worker_command(app, backend_name: str | None, poll: float,  # type: ignore[no-untyped-def]
                   until_idle: bool) -> None:
    """Send due sends and retries, apply web sign-ups and send their mails until stopped (SIGTERM: park)."""
    from mailer.sending.worker import run_worker

    with stop_on_signals() as stop:
        run_worker(app.db, app.settings, backend_name=backend_name, poll=poll, until_idle=until_idle, stop=stop,
                   log=lambda line: click.echo(line, err=True))


COMMANDS: list[click.Command] = [send_command, status_command, worker_command]
