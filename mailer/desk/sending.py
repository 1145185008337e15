"""What the desk does to send an issue: a test to the editor, the confirmation's audience counts,
send now, schedule; through the functions `mailer send` and `mailer schedule --at` call.

Every send goes through mailer.sending.campaign.start (ledger.create_send and its claim on the
lists): an issue already sent or sending to a list is refused there (AlreadySent), never here.
A send started on the desk is delivered by `mailer worker` (the loop the CLI runs in the
foreground); its audience is frozen at once, so the rows are the count the editor confirmed.
May import sending, scheduling, content, people and the floor; no Flask.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from mailer.config import Settings
from mailer.db import Database
from mailer.desk.issues import issue_folders
from mailer.errors import ComposeError, InputError, MailerError
from mailer.models import SendStatus
from mailer.people.lists import get_list
from mailer.sending import campaign, ledger

if TYPE_CHECKING:
    from mailer.content.compose import ComposedIssue

# the form fields, as the desk's messages name them
LISTS_FIELD, AT_FIELD = "lists", "date and time"
AlreadySent = ledger.AlreadySent


class NoSuchIssue(InputError):
    """No issue folder of this name under issues_dir."""


class ComposeFailed(InputError):
    """The issue does not compose (its issue.toml, a report or the template): the one line that says why."""


class TestFailed(MailerError):
    """The backend did not take the test message: its reply."""


@dataclass(frozen=True)
class ListChoice:
    slug: str
    name: str
    chosen: bool


@dataclass(frozen=True)
class Confirmation:
    """What `mailer send` shows before its question: the audience per list, and their total."""

    slug: str
    subject: str
    lists: tuple[str, ...]            # the chosen lists (issue.toml's unless the editor chose)
    per_list: dict[str, int]          # confirmed, not suppressed, per list
    total: int                        # distinct recipients (one copy each, also on two lists)
    warnings: tuple[str, ...]         # compose's
    refused: str                      # why it cannot be sent to these lists ("" when it can)


def issue_folder(settings: Settings, slug: str) -> Path:
    """The folder *slug* under issues_dir (only those listed: no path from a URL reaches further)."""
    for folder in issue_folders(settings):
        if folder.name == slug:
            return folder
    raise NoSuchIssue(f"no issue folder {slug!r} under {settings.issues_dir}")


def compose(settings: Settings, slug: str) -> ComposedIssue:
    """The issue composed now; ComposeFailed with compose's one line when it does not compose."""
    from mailer.content.compose import compose_issue

    folder = issue_folder(settings, slug)
    try:
        return compose_issue(settings, folder)
    except MailerError as exc:
        raise ComposeFailed(str(exc)) from None


def list_choices(db: Database, issue_lists: Sequence[str], chosen: Sequence[str]) -> list[ListChoice]:
    """Every list, marked when chosen (the issue's own lists when nothing was chosen)."""
    from mailer.desk.lists import summaries

    marked = set(chosen or issue_lists)
    return [ListChoice(s.slug, s.name, s.slug in marked) for s in summaries(db)]


def _check_lists(db: Database, slugs: Sequence[str]) -> None:
    with db.session() as session:
        for slug in slugs:
            try:
                get_list(session, slug)
            except InputError:
                raise InputError(f"{LISTS_FIELD}: there is no list {slug!r}") from None


def _targets(db: Database, composed: ComposedIssue, chosen: Sequence[str]) -> list[str]:
    slugs = list(dict.fromkeys(chosen)) or list(composed.lists)
    if not slugs:
        raise InputError(f"{LISTS_FIELD}: choose at least one list (issue.toml names none)")
    _check_lists(db, slugs)
    return slugs


def test_send(db: Database, settings: Settings, slug: str, to: str) -> str:
    """`mailer send ISSUE --to ADDR`: one message of the issue to *to* through the configured backend;
    nothing is recorded as the campaign. Returns the address it went to (dev_redirect wins)."""
    from mailer.backends import load_backend
    from mailer.backends.base import DeliveryOutcome
    from mailer.settingrules import require_public_links

    composed = compose(settings, slug)
    backend = load_backend(settings)
    require_public_links(settings.base_url, backend.name)
    result = campaign.send_test_message(settings, db, composed, to, backend,
                                        composed.lists[0] if composed.lists else "")
    if result.outcome is not DeliveryOutcome.SENT:
        raise TestFailed(f"the test to {to} was not sent: {result.code} {result.reply}")
    return settings.dev_redirect or to


def confirmation(db: Database, settings: Settings, slug: str, chosen: Sequence[str] = ()) -> Confirmation:
    """The counts `mailer send` asks about, for the chosen lists (ledger.audience_count)."""
    composed = compose(settings, slug)
    targets = _targets(db, composed, chosen)
    with db.session() as session:
        total, per_list = ledger.audience_count(session, targets)
    refused = ""
    try:
        campaign.check_not_sent(db, composed.slug, targets, again=False)
    except AlreadySent as exc:
        refused = str(exc)
    return Confirmation(composed.slug, composed.subject, tuple(targets), per_list, total,
                        tuple(composed.warnings), refused)


def send_now(db: Database, settings: Settings, slug: str, chosen: Sequence[str] = ()) -> int:
    """Start the send of the issue to the chosen lists (campaign.start, the one rule of every send) and
    freeze its audience; its id. AlreadySent (nothing written) when it went or goes to one of them."""
    from mailer.backends import load_backend
    from mailer.settingrules import require_public_links

    composed = compose(settings, slug)
    targets = _targets(db, composed, chosen)
    require_public_links(settings.base_url, load_backend(settings).name)
    with db.session() as session:
        total, _ = ledger.audience_count(session, targets)
    if total == 0:
        raise InputError(f"{LISTS_FIELD}: no confirmed subscribers in {', '.join(targets)}: nothing to send")
    campaign.check_not_sent(db, composed.slug, targets, again=False)
    send_id = campaign.start(db, composed, targets)
    ledger.freeze_audience(db, send_id)     # the rows are the audience confirmed now, not at the worker's turn
    return send_id


def schedule(db: Database, settings: Settings, slug: str, at: str, chosen: Sequence[str] = ()) -> tuple[int, list[str]]:
    """`mailer schedule ISSUE --at`: *at* (a datetime-local value) read in the group's zone; the
    schedule's id and compose's warnings. A past or unreadable time names the field; nothing made."""
    from mailer.backends import load_backend
    from mailer.scheduling.plans import schedule_once
    from mailer.settingrules import require_public_links

    if not at.strip():
        raise InputError(f"{AT_FIELD}: choose the day and the time")
    folder = issue_folder(settings, slug)
    require_public_links(settings.base_url, load_backend(settings).name)
    warnings: list[str] = []
    lists = tuple(dict.fromkeys(chosen))
    _check_lists(db, lists)
    try:
        row = schedule_once(db, settings, folder, lists, at.strip(), settings.schedule_timezone,
                            warn=warnings.extend, at_field=AT_FIELD, lists_field=LISTS_FIELD)
    except ComposeError as exc:       # the time and the lists name their field; compose its file
        raise ComposeFailed(str(exc)) from None
    return row.id, warnings


def sends_of(db: Database, slug: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """The issue's sends, newest first: (id, status, lists)."""
    return [(s.id, s.status.value, tuple(s.list_slugs or ())) for s in reversed(campaign.sends_of(db, slug))
            if s.status is not SendStatus.CANCELLED]
