"""The Jinja environments for issue templates: a search path the group can override."""

from __future__ import annotations

import textwrap
from pathlib import Path

from jinja2 import (FileSystemLoader, StrictUndefined, TemplateNotFound, TemplateSyntaxError,
                    TemplateError)
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from mailer.config import Settings
from mailer.errors import ComposeError
from mailer.content.personalize import placeholder
from mailer.content.reports import TextBlock

WIDTH = 72

# the templates shipped with mailer: the last folder of every search path
BUILTIN_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def search_path(settings: Settings) -> list[str]:
    """The configured template folders, then the built-in ones."""
    folders = [settings.path(p) for p in settings.templates_path]
    if BUILTIN_TEMPLATES.is_dir() and BUILTIN_TEMPLATES not in folders:
        folders.append(BUILTIN_TEMPLATES)
    return [str(f) for f in folders]


def make_environment(settings: Settings, html: bool) -> SandboxedEnvironment:
    """A sandboxed environment: autoescaping for HTML, none for the text part; StrictUndefined."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(search_path(settings)),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=not html,
        lstrip_blocks=not html,
        keep_trailing_newline=True,
    )
    if html:
        env.globals["personal"] = lambda key: Markup(placeholder(key))
    else:
        env.globals["personal"] = placeholder
        env.filters["wrap"] = wrap_block
        env.filters["blocks"] = wrap_blocks
    return env


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
    if block.kind == "pre":
        return block.text.split("\n")
    if block.kind == "h":
        return ["", block.text, "-" * min(len(block.text), WIDTH)]
    if block.kind == "li":
        return textwrap.wrap(block.text, initial_indent="  - ", subsequent_indent="    ", **opts)
    if block.kind == "quote":
        return textwrap.wrap(block.text, initial_indent="  > ", subsequent_indent="  > ", **opts)
    lines: list[str] = []
    for part in block.text.split("\n"):
        lines.extend(textwrap.wrap(part, **opts) or [""])
    return lines


