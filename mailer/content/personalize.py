"""Per-recipient personalisation of an already-inlined issue, by substitution.

The issue is rendered by Jinja and inlined by premailer once; the values that
differ per recipient are left in it as placeholders ``__mailer_<key>__``:
letters and underscores only, which survive premailer and lxml untouched
inside href attributes (``{{ url }}`` does not: it becomes ``{{%20url%20}}``).
`check` validates a text's placeholders; filling them per recipient is
mailer.mail.mime.QPTemplate's, on the encoded body.
"""

from __future__ import annotations

import html
import re

KEYS = ("name", "email", "unsubscribe_url", "preferences_url", "view_online_url")
_PATTERN = re.compile(r"__mailer_([a-z_]+?)__")


def placeholder(key: str) -> str:
    """The marker templates write for *key* (the `personal` Jinja global renders it)."""
    if key not in KEYS:
        raise KeyError(f"unknown personalisation field {key!r}; known: {', '.join(KEYS)}")
    return f"__mailer_{key}__"


def escape_html(value: str) -> str:
    """Escape for HTML text and double- or single-quoted attributes alike."""
    return html.escape(value, quote=True)


def keep(value: str) -> str:
    return value


def check(template: str) -> tuple[str, ...]:
    """The placeholder keys of *template*, in order; ValueError naming any unknown one."""
    keys = tuple(_PATTERN.findall(template))
    unknown = set(keys) - set(KEYS)
    if unknown:
        raise ValueError(f"unknown placeholders: {', '.join(sorted(unknown))}")
    return keys
