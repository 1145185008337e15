"""Per-recipient personalisation of an already-inlined issue, by substitution.

The issue is rendered by Jinja and inlined by premailer once; the values that
differ per recipient are left in it as placeholders ``__mailer_<key>__``:
letters and underscores only, which survive premailer and lxml untouched
inside href attributes (``{{ url }}`` does not: it becomes ``{{%20url%20}}``).

A value may carry a default for readers who lack it: ``personal('name',
default='friend')`` writes ``__mailer_name_or_<letters>__``, the default's UTF-8
bytes spelt with the letters a-p (one per half-byte), so the placeholder stays
letters and underscores and needs no table beside the text. `greeting` is the
whole salutation: the `greeting` setting with the name, or `greeting_nameless`.
``personal('attr.branch')`` is a subscriber attribute (from an import's extra columns),
written ``__mailer_attr_<letters>__`` with the attribute's name spelt the same way.
`check` validates a text's placeholders; filling them per recipient is
mailer.mail.mime.QPTemplate's, on the encoded body.
"""

from __future__ import annotations

import html
import re

KEYS = ("name", "email", "greeting", "unsubscribe_url", "preferences_url", "view_online_url")
ATTR = "attr."
ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
MAX_DEFAULT = 200
_NIBBLES = "abcdefghijklmnop"
# any placeholder-shaped marker, known key or not (check() names the unknown ones)
_ANY = re.compile(r"__mailer_(attr_[a-p]+|[a-z_]+?)(?:_or_([a-p]+))?__")
# the known ones, longest key first so "name" never cuts "name_or_..." short
PATTERN = re.compile("__mailer_(attr_[a-p]+|" + "|".join(sorted(KEYS, key=len, reverse=True)) +
                     ")(?:_or_([a-p]+))?__")


def placeholder(key: str, default: str | None = None) -> str:
    """The marker templates write for *key* (the `personal` Jinja global renders it)."""
    if key.startswith(ATTR) and ATTRIBUTE_NAME.fullmatch(key[len(ATTR):]):
        marker = "attr_" + _spell(key[len(ATTR):])
    elif key not in KEYS:
        raise KeyError(f"unknown personalisation field {key!r}; known: {', '.join(KEYS)}, attr.NAME")
    else:
        marker = key
    if not default:
        return f"__mailer_{marker}__"
    if not isinstance(default, str) or len(default) > MAX_DEFAULT or "\n" in default or "\r" in default:
        raise KeyError(f"personal({key!r}, default=...): the default must be one line of at most "
                       f"{MAX_DEFAULT} characters")
    return f"__mailer_{marker}_or_{_spell(default)}__"


def _spell(text: str) -> str:
    return "".join(_NIBBLES[b >> 4] + _NIBBLES[b & 15] for b in text.encode("utf-8"))


def default_of(spelt: str | None) -> str:
    """The default a placeholder's ``_or_`` part spells ("" when it has none)."""
    if not spelt:
        return ""
    data = bytes(_NIBBLES.index(hi) * 16 + _NIBBLES.index(lo) for hi, lo in zip(spelt[::2], spelt[1::2]))
    return data.decode("utf-8", errors="replace")


def key_of(marker: str) -> str:
    """The value key a placeholder's key part names: "name", or "attr.branch" for attr_<letters>."""
    return ATTR + default_of(marker[5:]) if marker.startswith("attr_") else marker


def greeting(name: str, named: str, nameless: str) -> str:
    """The salutation for a reader called *name* ("" when unknown)."""
    name = " ".join(name.split())
    return named.replace("{name}", name) if name else nameless


def escape_html(value: str) -> str:
    """Escape for HTML text and double- or single-quoted attributes alike."""
    return html.escape(value, quote=True)


def keep(value: str) -> str:
    return value


def check(template: str) -> tuple[str, ...]:
    """The placeholder keys of *template*, in order; ValueError naming any unknown one."""
    keys = tuple(key_of(m.group(1)) for m in _ANY.finditer(template))
    unknown = {k for k in keys if k not in KEYS and not k.startswith(ATTR)}
    if unknown:
        raise ValueError(f"unknown placeholders: {', '.join(sorted(unknown))}")
    return keys
