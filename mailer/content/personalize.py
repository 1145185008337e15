"""Per-recipient personalisation of an already-inlined issue, by substitution.

The issue is rendered by Jinja and inlined by premailer once; the values that
differ per recipient are left in it as placeholders ``__mailer_<key>__``:
letters and underscores only, which survive premailer and lxml untouched
inside href attributes (``{{ url }}`` does not: it becomes ``{{%20url%20}}``).
A Personalizer splits the text once; `fill` is one join per recipient.
"""

from __future__ import annotations

import html
import re
from typing import Callable, Mapping

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


class Personalizer:
    """A text split at its placeholders, filled per recipient with escaped values."""

    def __init__(self, template: str, escape: Callable[[str], str]) -> None:
        parts = _PATTERN.split(template)
        self._static = parts[0::2]
        self.keys = tuple(parts[1::2])
        unknown = set(self.keys) - set(KEYS)
        if unknown:
            raise ValueError(f"unknown placeholders: {', '.join(sorted(unknown))}")
        self._escape = escape

    def fill(self, values: Mapping[str, str]) -> str:
        escape, static = self._escape, self._static
        out = [static[0]]
        for i, key in enumerate(self.keys, 1):
            out.append(escape(values.get(key, "")))
            out.append(static[i])
        return "".join(out)


def for_html(template: str) -> Personalizer:
    return Personalizer(template, escape_html)


def for_text(template: str) -> Personalizer:
    return Personalizer(template, keep)
