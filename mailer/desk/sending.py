"""What the desk does to send an issue: a test to the editor, the confirmation's audience counts,
send now, schedule; through the functions `mailer send` and `mailer schedule --at` call.

Every send goes through mailer.sending.campaign.start (ledger.create_send and its claim on the
lists): an issue already sent or sending to a list is refused there (AlreadySent), never here.
A send started on the desk is delivered by `mailer worker` (the loop the CLI runs in the
foreground); its audience is frozen at once, so the rows are the count the editor confirmed.
May import sending, scheduling, content, people and the floor; no Flask.
"""

from __future__ import annotations

import re
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
TAGS_FIELD, SEGMENT_FIELD = "only people tagged", "only people in segment"
EXCLUDE_LISTS_FIELD, EXCLUDE_SEGMENT_FIELD = "leave out the people on", "leave out segment"
AlreadySent = ledger.AlreadySent
AudienceChanged = campaign.AudienceChanged
MAX_TAGS = 20


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
class AudienceForm:
    """Who on the chosen lists, as the send form asks: `send --tag/--segment/--exclude-*`."""

    tags: str = ""                       # space- or comma-separated: anyone with one of them
    segment: str = ""
    exclude_lists: tuple[str, ...] = ()
    exclude_segment: str = ""

    def resolved(self, db: Database) -> dict | None:
        """The audience JSON a send stores (None: everyone on the lists); InputError naming the field."""
        from mailer.people import tagging
        from mailer.people.segments import check_tag

        raw = [t for t in re.split(r"[\s,]+", self.tags) if t]
        if len(raw) > MAX_TAGS:
            raise InputError(f"{TAGS_FIELD}: at most {MAX_TAGS} tags")
        tags = [check_tag(t, f"{TAGS_FIELD}: tag") for t in raw]
        excluded = tuple(dict.fromkeys(self.exclude_lists))
        check_lists(db, excluded, EXCLUDE_LISTS_FIELD)
        chosen = tagging.audience(db, tags=tags, segment=self.segment or None, exclude_lists=excluded,
                                  exclude_segment=self.exclude_segment or None,
                                  fields=(f"{SEGMENT_FIELD}:", f"{EXCLUDE_SEGMENT_FIELD}:"))
        return chosen.as_json() if chosen is not None else None

    def query(self) -> list[tuple[str, str]]:
        """The form's fields again (for the confirmation's links and hidden fields)."""
        pairs = [("tags", self.tags), ("segment", self.segment), ("exclude_segment", self.exclude_segment)]
        return [(k, v) for k, v in pairs if v] + [("exclude_list", slug) for slug in self.exclude_lists]


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
    audience: str = ""                # who of the lists, in words ("" for everyone on them)


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
    """Every list, marked when chosen (the issue's own lists when nothing was chosen); names only,
    nothing counted (counting reads every subscription)."""
    from mailer.desk.issues import list_choices as names

    marked = set(chosen or issue_lists)
    return [ListChoice(slug, name, slug in marked) for slug, name in names(db)]


def check_lists(db: Database, slugs: Sequence[str], field: str = LISTS_FIELD) -> None:
    """InputError naming *field* when one of *slugs* is no list."""
    with db.session() as session:
        for slug in slugs:
            try:
                get_list(session, slug)
            except InputError:
                raise InputError(f"{field}: there is no list {slug!r}") from None


def segment_names(db: Database) -> list[str]:
    """The saved segments a send may be limited to or leave out."""
    from mailer.people.tagging import segment_names as names

    return names(db)


def _targets(db: Database, composed: ComposedIssue, chosen: Sequence[str]) -> list[str]:
    slugs = list(dict.fromkeys(chosen)) or list(composed.lists)
    if not slugs:
        raise InputError(f"{LISTS_FIELD}: choose at least one list (issue.toml names none)")
    check_lists(db, slugs)
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


def confirmation(db: Database, settings: Settings, slug: str, chosen: Sequence[str] = (),
                 who: AudienceForm = AudienceForm()) -> Confirmation:
    """The counts `mailer send` asks about, for the chosen lists and audience (ledger.audience_count)."""
    from mailer.people.tagging import Audience

    composed = compose(settings, slug)
    targets = _targets(db, composed, chosen)
    audience = who.resolved(db)
    limited = Audience.of(audience) if audience else None
    with db.session() as session:
        total, per_list = ledger.audience_count(session, targets, limited)
    refused = ""
    try:
        campaign.check_not_sent(db, composed.slug, targets, again=False)
    except AlreadySent as exc:
        refused = str(exc)
    return Confirmation(composed.slug, composed.subject, tuple(targets), per_list, total,
                        tuple(composed.warnings), refused, limited.describe() if limited else "")


def send_now(db: Database, settings: Settings, slug: str, chosen: Sequence[str] = (),
             who: AudienceForm = AudienceForm(), expected: int | None = None) -> int:
    """Start the send of the issue to the chosen lists and audience (campaign.start_confirmed, the path
    of `mailer send`) and freeze its audience; its id. AlreadySent when it went or goes to one of
    them, AudienceChanged when *expected* (the count confirmed) is no longer the count: nothing written."""
    from mailer.backends import load_backend
    from mailer.settingrules import require_public_links

    composed = compose(settings, slug)
    targets = _targets(db, composed, chosen)
    audience = who.resolved(db)
    require_public_links(settings.base_url, load_backend(settings).name)
    try:
        send_id = campaign.start_confirmed(db, composed, targets, audience=audience, expected=expected)
    except (AlreadySent, AudienceChanged):
        raise
    except InputError as exc:      # nobody would get it: the lists (and audience) chosen
        raise InputError(f"{LISTS_FIELD}: {exc}") from None
    ledger.freeze_audience(db, send_id)     # the rows are the audience confirmed now, not at the worker's turn
    return send_id


def schedule(db: Database, settings: Settings, slug: str, at: str, chosen: Sequence[str] = (),
             who: AudienceForm = AudienceForm()) -> tuple[int, list[str]]:
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
    check_lists(db, lists)
    audience = who.resolved(db)
    try:
        row = schedule_once(db, settings, folder, lists, at.strip(), settings.schedule_timezone,
                            warn=warnings.extend, audience=audience, at_field=AT_FIELD, lists_field=LISTS_FIELD)
    except ComposeError as exc:       # the time and the lists name their field; compose its file
        raise ComposeFailed(str(exc)) from None
    return row.id, warnings


def sends_of(db: Database, slug: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """The issue's sends, newest first: (id, status, lists)."""
    return [(s.id, s.status.value, tuple(s.list_slugs or ())) for s in reversed(campaign.sends_of(db, slug))
            if s.status is not SendStatus.CANCELLED]
