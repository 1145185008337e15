"""What every page shares: the app's context object, template folders, rendering, error pages."""

from __future__ import annotations

import functools

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import current_app, g, render_template
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from mailer.config import Settings
from mailer.db import Database
from mailer.web.guard import FormTokens
from mailer.signups.limits import SignupLimiter
from mailer.signups.writer import IntakeWriter

# the repository's own templates: the fallback when a group overrides only some of them
DEFAULT_TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"


@dataclass
class WebContext:
    """Everything a view needs, created once by create_app (no module globals)."""

    settings: Settings
    db: Database
    forms: FormTokens
    limiter: SignupLimiter
    writer: IntakeWriter
    queue: Any = field(default=None)   # a mailqueue.QueueThread when the app sends its own mail
    # rendered message pages: they are the same for everyone (no form token), so rendered once
    messages: dict[tuple[Any, ...], str] = field(default_factory=dict)
    messages_for: Settings | None = None

    def wake_queue(self) -> None:
        if self.queue is not None:
            self.queue.wake()


def web() -> WebContext:
    return current_app.extensions["mailer"]


def template_folders(settings: Settings) -> list[str]:
    """Each folder of settings.templates_path (resolved), then the built-in templates."""
    folders = [str(settings.path(p)) for p in settings.templates_path]
    if str(DEFAULT_TEMPLATES) not in folders:
        folders.append(str(DEFAULT_TEMPLATES))
    return folders


def find_template_file(settings: Settings, name: str) -> Path | None:
    """The first file called *name* in the template folders (for static assets)."""
    for folder in template_folders(settings):
        candidate = Path(folder) / name
        if candidate.is_file():
            return candidate
    return None


def text_environment(settings: Settings) -> Environment:
    """A Jinja environment for plain-text mail bodies: no HTML escaping, strict undefined.

    One per set of template folders, so each template is compiled once (and again when its file changes).
    """
    return _text_environment(tuple(str(folder) for folder in template_folders(settings)))


@functools.lru_cache(maxsize=16)
def _text_environment(folders: tuple[str, ...]) -> Environment:
    return Environment(loader=FileSystemLoader(list(folders)), autoescape=False,
                       undefined=StrictUndefined, keep_trailing_newline=True)


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render templates/web/<template> with what every page needs (group, form token)."""
    ctx = web()
    settings = ctx.settings
    html = render_template(
        f"web/{template}",
        group_name=settings.group_name,
        group_website=settings.group_website,
        group_address=settings.group_address,
        lang=settings.language,
        csrf_token=ctx.forms.mint(),
        embedded=bool(getattr(g, "frame_origins", ())),
        **context,
    )
    return html, status


MAX_CACHED_MESSAGES = 100


def message_page(title: str, message: str, status: int, **extra: Any) -> tuple[str, int]:
    """A page that only says one thing (errors, results); rendered once per text and settings."""
    if extra:
        return page("message.html", status, title=title, message=message, **extra)
    ctx = web()
    if ctx.messages_for is not ctx.settings:    # tests and reloads may swap the settings
        ctx.messages.clear()
        ctx.messages_for = ctx.settings
    key = (title, message, status, bool(getattr(g, "frame_origins", ())))
    html = ctx.messages.get(key)
    if html is None:
        html, _ = page("message.html", status, title=title, message=message)
        if len(ctx.messages) < MAX_CACHED_MESSAGES:
            ctx.messages[key] = html
    return html, status
