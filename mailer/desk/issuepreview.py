"""The desk's compose check and preview of one issue: what `mailer compose` says and what
`mailer preview` shows, served to frames on the issue page.

The issue is composed by mailer.content.compose (warnings and lint included) and rendered for a
sample reader by mailer.mail.preview, as the CLI does; the variants are those of the CLI's
preview page (named and nameless reader, dark mode, without <style>, the text part). The issue's
own images point at the desk's image route rather than the public media folder, so nothing is
published by looking. A few results are kept in memory, keyed by the issue's content hash.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from mailer.config import Settings
from mailer.content.compose import ComposedIssue, compose_issue
from mailer.content.folders import content_hash
from mailer.content.images import media_url
from mailer.errors import MailerError
from mailer.mail.preview import SAMPLE, render_sample
from mailer.mail.previewpage import dark_copy, without_style
from mailer.settingrules import local_links_warning

VARIANTS = ("named", "nameless", "dark", "nostyle", "text", "nameless-text")
KEEP = 8


class PreviewError(MailerError):
    """The issue does not compose: one line that says why."""


@dataclass(frozen=True)
class Preview:
    subject: str
    warnings: tuple[str, ...]
    reader: str                     # the sample reader's name
    parts: dict[str, str]           # variant -> HTML or text
    version: str = ""               # the issue's content hash: changes with any of its files


_cache: OrderedDict[tuple[str, str, str, bool], Preview] = OrderedDict()
_lock = threading.Lock()


def one_line(exc: Exception, folder: Path) -> str:
    """An error as one line, paths relative to the issue folder."""
    lines = [line.replace(str(folder) + "/", "").replace(str(folder), folder.name)
             for line in str(exc).splitlines() if line.strip()] or ["it does not compose"]
    more = len(lines) - 1
    return lines[0] + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _parts(data: bytes) -> dict[str, str]:
    message = message_from_bytes(data, policy=policy.default)
    return {p.get_content_type(): p.get_content() for p in message.walk() if not p.is_multipart()}


def sample_parts(settings: Settings, issue: ComposedIssue,
                 fix: Callable[[str], str] = lambda html: html) -> tuple[str, dict[str, str]]:
    """The sample reader's name and the VARIANTS of a composed issue (*fix* applied to its HTML first)."""
    reader = replace(SAMPLE, list_slug=issue.lists[0] if issue.lists else SAMPLE.list_slug)
    named = _parts(render_sample(settings, issue, reader))
    nameless = _parts(render_sample(settings, issue, replace(reader, name="")))
    html, nameless_html = fix(named.get("text/html", "")), fix(nameless.get("text/html", ""))
    return reader.name, {"named": html, "nameless": nameless_html, "dark": dark_copy(html),
                         "nostyle": without_style(html), "text": named.get("text/plain", ""),
                         "nameless-text": nameless.get("text/plain", "")}


def _build(settings: Settings, folder: Path, online: bool) -> Preview:
    def desk_images(html: str) -> str:      # the issue's images/ files, from the desk rather than /media
        for image in issue.images:
            if image.source.parent == (folder / "images").resolve():
                local = f"/desk/issues/{quote(folder.name)}/images/{quote(image.source.name)}"
                html = html.replace(media_url(settings, folder.name, image.name), local)
        return html

    try:
        issue = compose_issue(settings, folder, online=online)
        reader, parts = sample_parts(settings, issue, desk_images)
    except MailerError as exc:
        raise PreviewError(one_line(exc, folder)) from None
    warnings = [w.replace(str(folder) + "/", "") for w in issue.warnings]
    local = local_links_warning(settings.base_url)
    if local:
        warnings.append(local)
    return Preview(issue.subject, tuple(warnings), reader, parts)


def issue_preview(settings: Settings, folder: Path, *, online: bool = True) -> Preview:
    """The composed issue's warnings and preview parts; PreviewError (one line) when it does not compose.
    *online* False previews it as a mail without a web version (a welcome mail)."""
    try:
        key = (str(folder), settings.base_url, content_hash(settings, folder), online)
    except (MailerError, OSError) as exc:
        raise PreviewError(one_line(exc, folder)) from None
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
            return found
    preview = replace(_build(settings, folder, online), version=key[2])
    with _lock:
        _cache[key] = preview
        while len(_cache) > KEEP:
            _cache.popitem(last=False)
    return preview


def current_version(settings: Settings, folder: Path) -> str:
    """The issue's content hash ('' when its issue.toml cannot be read)."""
    try:
        return content_hash(settings, folder)
    except (MailerError, OSError):
        return ""


def preview_state(settings: Settings, folder: Path) -> dict[str, object]:
    """What the live preview script polls: the issue's version, its warnings, or its error."""
    try:
        preview = issue_preview(settings, folder)
    except PreviewError as exc:
        return {"version": current_version(settings, folder), "error": str(exc), "warnings": []}
    return {"version": preview.version, "error": "", "warnings": list(preview.warnings)}
