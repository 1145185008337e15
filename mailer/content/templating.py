"""The one factory of Jinja environments: one search path, sandboxed everywhere.

Issue templates (HTML and text), the web pages and feed, and the plain-text
transactional mails all load from `search_path` (the group's
``templates_path`` folders, then the built-in ``templates/``) in a
`SandboxedEnvironment` with StrictUndefined. A template that is not UTF-8 is
one error naming its file. May import the floor, `content.personalize` and
`content.reports`.
"""

from __future__ import annotations

import enum
import functools
import os
import textwrap
from typing import Callable

from jinja2 import (Environment, FileSystemLoader, StrictUndefined, TemplateError, TemplateNotFound,
                    TemplateSyntaxError)
from jinja2.loaders import split_template_path
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from mailer.config import Settings
from mailer.content.folders import search_path
from mailer.errors import ComposeError
from mailer.content.personalize import placeholder
from mailer.content.blocks import TextBlock

WIDTH = 72

PAGE_SUFFIXES = (".html", ".htm", ".xml", ".xhtml", ".svg")


class Kind(enum.Enum):
    """What an environment renders; each kind has its escaping and whitespace rules."""

    ISSUE_HTML = "issue-html"    # autoescaped; `personal()` gives placeholders as markup
    ISSUE_TEXT = "issue-text"    # no escaping, block tags trimmed, wrap/blocks filters
    PAGE = "page"                # web pages and feed: escaped by file suffix, compiled once
    MAIL_TEXT = "mail-text"      # plain-text transactional mails (the confirmation mail)


class _Loader(FileSystemLoader):
    """FileSystemLoader whose decoding error names the file (one line, no traceback)."""

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        try:
            return super().get_source(environment, template)
        except UnicodeDecodeError as exc:
            path = next((p for p in (os.path.join(f, *split_template_path(template)) for f in self.searchpath)
                         if os.path.isfile(p)), template)
            raise ComposeError(f"{path}: template is not {self.encoding} text "
                               f"(byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                               f"save it as {self.encoding}") from None


def _page_autoescape(name: str | None) -> bool:
    return name is None or name.endswith(PAGE_SUFFIXES)


def environment(settings: Settings, kind: Kind) -> SandboxedEnvironment:
    """A new sandboxed environment of *kind* on the search path, with StrictUndefined."""
    return _build(tuple(search_path(settings)), kind)


def make_environment(settings: Settings, html: bool) -> SandboxedEnvironment:
    """The issue's environment for its HTML or its text part."""
    return environment(settings, Kind.ISSUE_HTML if html else Kind.ISSUE_TEXT)


def mail_environment(settings: Settings) -> SandboxedEnvironment:
    """The plain-text mail environment, one per search path: each template is compiled once
    (and again when its file changes)."""
    return _cached_build(tuple(search_path(settings)), Kind.MAIL_TEXT)


def _build(folders: tuple[str, ...], kind: Kind) -> SandboxedEnvironment:
    text = kind in (Kind.ISSUE_TEXT, Kind.MAIL_TEXT)
    env = SandboxedEnvironment(
        loader=_Loader(list(folders)),
        autoescape=_page_autoescape if kind is Kind.PAGE else not text,
        undefined=StrictUndefined,
        trim_blocks=kind is Kind.ISSUE_TEXT,
        lstrip_blocks=kind is Kind.ISSUE_TEXT,
        keep_trailing_newline=True,
        auto_reload=kind is not Kind.PAGE,   # pages, like Flask's own: compiled once per app
    )
    if kind is Kind.ISSUE_HTML:
        env.globals["personal"] = lambda key, default=None: Markup(placeholder(key, default))
    elif kind is Kind.ISSUE_TEXT:
        env.globals["personal"] = placeholder
        env.filters["wrap"] = wrap_block
        env.filters["blocks"] = wrap_blocks
    return env


_cached_build = functools.lru_cache(maxsize=16)(_build)


def render(env: SandboxedEnvironment, name: str, context: dict) -> str:
    """Render template *name*; any template error names the template file and line."""
    try:
        return env.get_template(name).render(context)
    except TemplateNotFound as exc:
        raise ComposeError(f"template {exc.name!r} not found in {', '.join(search_path_of(env))}") from None
    except TemplateSyntaxError as exc:
        raise ComposeError(f"{exc.filename or exc.name}:{exc.lineno}: template syntax error: {exc.message}") from None
    except TemplateError as exc:
        raise ComposeError(f"{_template_location(exc, name)}: template error: {exc.message}") from None
    except KeyError as exc:
        raise ComposeError(f"{_template_location(exc, name)}: {exc.args[0]}") from None


def search_path_of(env: SandboxedEnvironment) -> list[str]:
    loader = env.loader
    return list(getattr(loader, "searchpath", []))


def _template_location(exc: BaseException, name: str) -> str:
    """The innermost template frame of *exc*'s traceback, as file:line."""
    where = name
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".html", ".txt", ".j2")):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def wrap_block(text: str, kind: str = "p") -> str:
    """The `wrap` filter of the text template: a block wrapped at 72 columns in its style."""
    return "\n".join(_wrap_block(TextBlock(kind, text)))


def wrap_blocks(blocks: list[TextBlock]) -> str:
    """The `blocks` filter: blocks wrapped, a blank line between them except inside a list."""
    out: list[str] = []
    for i, block in enumerate(blocks):
        if i and not (block.kind == "li" and blocks[i - 1].kind == "li"):
            out.append("")
        out.extend(_wrap_block(block))
    return "\n".join(out)


def _wrap_block(block: TextBlock) -> list[str]:
    opts = {"width": WIDTH, "break_long_words": False, "break_on_hyphens": False}
    if block.kind in ("pre", "table"):
        return block.text.split("\n")
    if block.kind == "h":
        return ["", block.text, "-" * min(len(block.text), WIDTH)]
    if block.kind == "li":
        indent = "  " * (block.depth + 1)
        first = indent + (block.marker + " " if block.marker else " " * 2)
        return textwrap.wrap(block.text, initial_indent=first, subsequent_indent=" " * len(first), **opts)
    if block.kind == "quote":
        return textwrap.wrap(block.text, initial_indent="  > ", subsequent_indent="  > ", **opts)
    lines: list[str] = []
    for part in block.text.split("\n"):
        lines.extend(textwrap.wrap(part, **opts) or [""])
    return lines


