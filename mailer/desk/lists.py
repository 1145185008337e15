"""What the desk shows and changes of the mailing lists: the `mailer lists` functions, and the
embeddable sign-up form of a list.

The public sign-up form carries a signed token that expires after
`mailer.web.guard.FORM_TOKEN_MAX_AGE_S` (6 hours) and is checked on every POST, with the
request's Origin. A form copied into another site's HTML would carry no valid token
(or one that has expired by the next morning), so every sign-up through it would be refused.
The snippet therefore never copies the form: with `web.embed_origins` set it frames
`/embed/<list>` (served afresh, with a fresh token, each time the page is shown; the app
lets only those origins frame it), and without it, it links to the hosted form
`/subscribe/<list>`, which works from anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from markupsafe import escape
from sqlalchemy import func, select

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import ComposeError, InputError, MailerError
from mailer.models import OptIn, Subscription, SubscriptionStatus
from mailer.people import directory
from mailer.people.lists import ListExists, ListFieldError, ListSummary

__all__ = ["ListExists", "ListFieldError", "OPT_INS", "STATUSES", "Snippet", "Welcome", "WelcomeError", "create",
           "edit", "embed_snippet", "find_summary", "set_welcome", "summaries", "welcome_of"]
WELCOME_FIELD = "welcome mail"
# the order the desk shows them in
STATUSES = (SubscriptionStatus.CONFIRMED, SubscriptionStatus.PENDING, SubscriptionStatus.UNSUBSCRIBED)
OPT_INS = (OptIn.DOUBLE, OptIn.SINGLE)


@dataclass(frozen=True)
class Snippet:
    kind: str      # "frame" (an <iframe> of /embed/<list>) or "link" (to /subscribe/<list>)
    html: str      # what to paste into the other site's page
    page_url: str  # the hosted sign-up page


def summaries(db: Database) -> list[ListSummary]:
    """Every list with its description and subscriptions per status (the query of `mailer lists`)."""
    return directory.list_summaries(db)


def find_summary(db: Database, slug: str) -> ListSummary | None:
    """One list's summary, or None when there is no such list."""
    return next((s for s in summaries(db) if s.slug == slug), None)


def opt_in_of(value: str | None) -> OptIn:
    """The opt-in policy a form's `opt_in` field names; ListFieldError for anything else."""
    try:
        return OptIn(value or "")
    except ValueError:
        raise ListFieldError("opt_in", "opt-in: choose double or single") from None


def create(db: Database, slug: str, name: str, opt_in: str | None, description: str) -> None:
    """`mailer lists add`: ListFieldError (a bad field, named) or ListExists (the slug is taken)."""
    directory.add_list(db, slug.strip(), name, opt_in_of(opt_in), description)


def edit(db: Database, slug: str, name: str, opt_in: str | None, description: str) -> None:
    """`mailer lists edit`: ListFieldError naming the bad field; InputError for an unknown list."""
    directory.edit_list(db, slug, name=name, description=description, opt_in=opt_in_of(opt_in))


def embed_snippet(settings: Settings, slug: str, name: str) -> Snippet:
    """The HTML another site pastes to offer list *slug*'s sign-up (see the module's docstring)."""
    base = settings.base_url.rstrip("/")
    if not base:
        raise InputError("base_url is not set: the snippet needs the sign-up page's public address")
    page_url = f"{base}/subscribe/{slug}"
    title = escape(f"Subscribe to {name}")
    if settings.web_embed_origins:
        html = (f'<iframe src="{escape(base)}/embed/{escape(slug)}" title="{title}"\n'
                f'        style="border:0;width:100%;max-width:32rem;height:30rem"></iframe>\n'
                f'<p><a href="{escape(page_url)}">{title}</a></p>')
        return Snippet("frame", html, page_url)
    return Snippet("link", f'<a href="{escape(page_url)}">{title}</a>', page_url)


class WelcomeError(InputError):
    """The chosen welcome issue is not an issue folder of the desk, or does not compose."""


@dataclass(frozen=True)
class Welcome:
    """A list's welcome mail as the desk shows it."""

    stored: str               # the folder as `mailer lists welcome` stored it ("" for none)
    folder: Path | None       # found on disk (None when missing)
    desk_slug: str            # its folder name when it is one of the desk's issues ("" otherwise)
    welcomed: int             # subscriptions of the list whose welcome mail was queued so far


def welcome_of(db: Database, settings: Settings, slug: str) -> Welcome:
    """List *slug*'s welcome mail (InputError for an unknown list)."""
    from mailer.content.folders import find_issue
    from mailer.desk.issues import issue_folders
    from mailer.people.lists import get_list

    with db.session() as session:
        mlist = get_list(session, slug)
        stored = mlist.welcome_issue or ""
        welcomed = session.scalar(select(func.count()).select_from(Subscription).where(
            Subscription.list_id == mlist.id, Subscription.welcomed_at.is_not(None))) or 0
    folder = None
    if stored:
        try:
            folder = find_issue(settings, stored)
        except MailerError:
            folder = None
    ours = {p.resolve(): p.name for p in issue_folders(settings)}
    return Welcome(stored, folder, ours.get(folder, "") if folder else "", welcomed)


def set_welcome(db: Database, settings: Settings, slug: str, folder_name: str) -> str | None:
    """`mailer lists welcome`: the desk issue *folder_name* becomes list *slug*'s welcome mail once it
    composes ("" turns it off); its subject. WelcomeError naming the field, nothing changed."""
    from mailer.desk.issuepreview import one_line
    from mailer.desk.issues import issue_folders

    folder = None
    if folder_name:
        folder = next((p for p in issue_folders(settings) if p.name == folder_name), None)
        if folder is None:
            raise WelcomeError(f"{WELCOME_FIELD}: there is no issue {folder_name!r}")
    try:
        return directory.set_welcome(db, settings, slug, str(folder) if folder else None)
    except ComposeError as exc:    # the issue cannot be a welcome mail as it is
        first = one_line(exc, folder) if folder else str(exc)
        raise WelcomeError(f"{WELCOME_FIELD}: {folder_name} does not compose: {first}") from None
