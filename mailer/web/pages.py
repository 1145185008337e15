"""What every page shares: the app's context object, rendering, message pages.

Templates come from `mailer.content.templating` (the one search path,
sandboxed); create_app installs that environment as Flask's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g, render_template

from mailer.config import Settings
from mailer.db import Database
from mailer.signups.limits import SignupLimiter
from mailer.signups.runner import SignupRunner
from mailer.signups.writer import IntakeWriter
from mailer.web.guard import FormTokens


@dataclass
class WebContext:
    """Everything a view needs, created once by create_app (no module globals)."""

    settings: Settings
    db: Database
    forms: FormTokens
    limiter: SignupLimiter
    writer: IntakeWriter
    runner: SignupRunner | None = None   # when the app applies its own sign-ups
    # rendered message pages: they are the same for everyone (no form token), so rendered once
    messages: dict[tuple[Any, ...], str] = field(default_factory=dict)
    messages_for: Settings | None = None

    def wake_runner(self) -> None:
        if self.runner is not None:
            self.runner.wake()


def web() -> WebContext:
    return current_app.extensions["mailer"]


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
        dir=settings.text_direction,
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
