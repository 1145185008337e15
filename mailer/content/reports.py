"""Reading report files: Markdown or plain text as people paste it, optional front matter.

A report becomes sanitised HTML (for the HTML part) and a list of text blocks
with numbered link footnotes (for the text part). Whatever the input, a
report either reads or fails with one line naming the file (and line).

A report must lie inside its issue folder once symbolic links are followed:
a link, a `reports` entry such as `../x.md`, or a `reports/` folder that
leads outside is refused, so composing never publishes a file from elsewhere
on the machine. A symbolic link that stays inside the issue folder (say
reports/a.md -> ../drafts/a.md) is allowed: it publishes nothing new.

Links and image sources the sanitiser drops (javascript:, data:, ftp: ...)
are recorded on the Report, so the lint can name what was removed.
"""

from __future__ import annotations

import html
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from mailer.content.sanitize import removed_urls, sanitize
from mailer.errors import ComposeError

FRONT_MATTER_KEYS = ("title", "author", "date", "summary", "image", "image_alt")
SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text"}
LONG_PARAGRAPH = 2000

_md = MarkdownIt("commonmark", {"html": True, "typographer": True}).enable(
    ["table", "strikethrough", "replacements", "smartquotes"])
# every link becomes a link token: sanitize() is the one gate for URL schemes, and what it drops is
# recorded, where markdown-it would leave [click](javascript:...) in the mail as literal text
_md.validateLink = lambda url: True  # type: ignore[method-assign]
_URL = re.compile(r"(https?://[^\s<>\"')\]]+[^\s<>\"')\].,;:!?])")


@dataclass(frozen=True)
class TextBlock:
    """A block of the text part: a paragraph, heading, list item or quote."""

    kind: str      # "p", "h", "li", "quote", "pre"
    text: str


@dataclass
class Report:
    path: Path
    title: str
    author: str = ""
    date: str = ""
    summary: str = ""
    image: str = ""
    image_alt: str = ""
    html: str = ""
    blocks: list[TextBlock] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    words: int = 0
    warnings: list[str] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)  # ("link" | "image", url) sanitize() dropped

    @property
    def anchor(self) -> str:
        return "r-" + re.sub(r"[^a-z0-9]+", "-", self.path.stem.lower()).strip("-")


def read_report(path: Path, folder: Path | None = None) -> Report:
    """Read one report file into a Report; ComposeError names what is wrong.

    With *folder* (the issue folder), a report that resolves outside it is refused.
    """
    if folder is not None:
        _check_inside(path, folder)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ComposeError(f"{path}: unknown report type {path.suffix!r} (use .md or .txt)")
    text = _read_text(path)
    meta, body, body_line = _split_front_matter(text, path)
    report = Report(path=path, **{"title": "", **meta})
    if kind == "markdown":
        _parse_markdown(report, body)
    else:
        _parse_plain(report, body)
    if not report.title:
        report.title = _title_from_filename(path)
        report.warnings.append(f"{path.name}: no title; using {report.title!r} (add a first line or "
                               "'title:' front matter)")
    report.words = sum(len(b.text.split()) for b in report.blocks)
    if report.words == 0:
        report.warnings.append(f"{path.name}: the report is empty")
    elif not re.search(r"[.!?…\"'”’)\]:]\s*$", report.blocks[-1].text):
        report.warnings.append(f"{path.name}: ends without punctuation; was it cut off?")
    for block in report.blocks:
        if block.kind == "p" and len(block.text) > LONG_PARAGRAPH:
            report.warnings.append(f"{path.name}: a paragraph of {len(block.text):,} characters; "
                                   "readers on phones will thank you for paragraph breaks")
            break
    return report


def _check_inside(path: Path, folder: Path) -> None:
    """Refuse a report that, symbolic links followed, is not inside the issue folder."""
    try:
        real, root = path.resolve(), folder.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise ComposeError(f"{path}: report refused: its symbolic links cannot be followed") from None
    if not real.is_relative_to(root):
        how = "a path" if Path(os.path.normpath(path.absolute())) == real else "a symbolic link"
        raise ComposeError(f"{path}: report refused: {how} leading outside the issue folder (to {real}); "
                           "copy the file into the issue's reports/ folder")


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ComposeError(f"{path}: report not found") from None
    except OSError as exc:
        raise ComposeError(f"{path}: cannot read: {exc.strerror}") from None
    if b"\x00" in data[:8192]:
        raise ComposeError(f"{path}: binary file, not a text report")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ComposeError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                           "save the file as UTF-8") from None
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")


def _split_front_matter(text: str, path: Path) -> tuple[dict[str, str], str, int]:
    """Front matter: `---` with `key: value` lines, or `+++` with TOML."""
    lines = text.split("\n")
    fence = lines[0].strip() if lines else ""
    if fence not in ("---", "+++"):
        return {}, text, 1
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == fence)
    except StopIteration:
        raise ComposeError(f"{path}:1: front matter opened with {fence!r} is never closed") from None
    raw = lines[1:end]
    meta: dict[str, str] = {}
    if fence == "+++":
        try:
            data = tomllib.loads("\n".join(raw))
        except tomllib.TOMLDecodeError as exc:
            raise ComposeError(f"{path}: invalid front matter: {exc}") from None
        items = [(k, v, 2) for k, v in data.items()]
    else:
        items = []
        for offset, line in enumerate(raw, start=2):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, value = line.partition(":")
            if not sep or not key.strip() or " " in key.strip():
                raise ComposeError(f"{path}:{offset}: invalid front matter: expected 'key: value', "
                                   f"got {line.strip()[:60]!r}")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            items.append((key.strip(), value, offset))
    for key, value, offset in items:
        if key not in FRONT_MATTER_KEYS:
            raise ComposeError(f"{path}:{offset}: unknown front matter key {key!r} "
                               f"(known: {', '.join(FRONT_MATTER_KEYS)})")
        meta[key] = " ".join(str(value).split())
    return meta, "\n".join(lines[end + 1:]), end + 2


def _title_from_filename(path: Path) -> str:
    stem = re.sub(r"^\d+[-_ .]*", "", path.stem)
    words = re.sub(r"[-_]+", " ", stem).strip()
    return (words[:1].upper() + words[1:]) if words else "Report"


def render_markdown(text: str) -> tuple[str, list[TextBlock], list[str]]:
    """Markdown (an intro, say) to sanitised HTML, text blocks and their links."""
    tokens = _md.parse(text)
    blocks, links = _text_blocks(tokens)
    return sanitize(_md.renderer.render(tokens, _md.options, {})), blocks, links


def _parse_markdown(report: Report, body: str) -> None:
    tokens = _md.parse(body)
    # a leading level-1 heading is the title, unless front matter gave one
    if len(tokens) >= 3 and tokens[0].type == "heading_open" and tokens[0].tag == "h1":
        heading = tokens[1].content.strip()
        tokens = tokens[3:]
        report.title = report.title or heading
    # report headings sit under the report's own title: shift them down one level
    for tok in tokens:
        if tok.type in ("heading_open", "heading_close"):
            tok.tag = f"h{min(int(tok.tag[1]) + 1, 4)}"
    raw = _md.renderer.render(tokens, _md.options, {})
    report.removed = removed_urls(raw)
    report.html = sanitize(raw)
    report.blocks, report.links = _text_blocks(tokens)


def _text_blocks(tokens: list[Token]) -> tuple[list[TextBlock], list[str]]:
    blocks: list[TextBlock] = []
    links: list[str] = []
    kind = "p"
    for tok in tokens:
        if tok.type == "heading_open":
            kind = "h"
        elif tok.type == "list_item_open":
            kind = "li"
        elif tok.type == "blockquote_open":
            kind = "quote"
        elif tok.type in ("blockquote_close", "list_item_close", "heading_close"):
            kind = "p"
        elif tok.type in ("fence", "code_block"):
            blocks.append(TextBlock("pre", tok.content.rstrip("\n")))
        elif tok.type == "inline":
            blocks.append(TextBlock(kind, _inline_text(tok.children or [], links)))
    return [b for b in blocks if b.text.strip()], links


def _inline_text(children: list[Token], links: list[str]) -> str:
    out: list[str] = []
    href = ""
    for child in children:
        if child.type == "text" or child.type == "code_inline":
            out.append(child.content)
        elif child.type in ("softbreak",):
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
        elif child.type == "link_open":
            href = str(child.attrs.get("href", ""))
        elif child.type == "link_close" and href:
            if href.startswith(("http://", "https://", "mailto:")):
                links.append(href)
                out.append(f" [{len(links)}]")
            href = ""
        elif child.type == "image":
            out.append(f"[image: {child.content or 'no description'}]")
    return "".join(out).strip()


def _parse_plain(report: Report, body: str) -> None:
    """Plain text: a short first line is the title; blank lines (or lines) separate paragraphs."""
    lines = [line.rstrip() for line in body.strip("\n").split("\n")]
    if not any(line.strip() for line in lines):
        return
    first = lines[0].strip()
    rest = lines[1:]
    looks_like_title = (
        not report.title and len(first) <= 100 and rest and any(line.strip() for line in rest)
        and not re.search(r"[.,;:]$", first)
    )
    if looks_like_title:
        report.title = first
        lines = rest
    text = "\n".join(lines).strip("\n")
    if "\n\n" in text:
        raw_paragraphs = re.split(r"\n\s*\n", text)
    else:
        raw_paragraphs = text.split("\n")  # one paragraph per line, as word processors paste
    html_parts = []
    for raw in raw_paragraphs:
        para_lines = [line.strip() for line in raw.split("\n") if line.strip()]
        if not para_lines:
            continue
        wrapped = len(para_lines) > 1 and all(len(line) >= 50 for line in para_lines[:-1])
        joiner = " " if wrapped else "\n"
        paragraph = joiner.join(para_lines)
        report.blocks.append(TextBlock("p", paragraph))
        html_parts.append("<p>" + _linkify(paragraph).replace("\n", "<br>\n") + "</p>")
    report.html = sanitize("\n".join(html_parts))


def _linkify(text: str) -> str:
    """Escape plain text and turn bare http(s) URLs into links."""
    pieces = _URL.split(text)
    out = []
    for i, piece in enumerate(pieces):
        escaped = html.escape(piece, quote=True)
        out.append(f'<a href="{escaped}">{escaped}</a>' if i % 2 else escaped)
    return "".join(out)
