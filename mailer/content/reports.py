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

from mailer.content.blocks import TextBlock, inline_text, text_blocks
from mailer.content.pasted import (bullets_as_markdown, list_line, split_long_markdown, split_paragraph, title_from_text,
                                   typography, with_typographer)
from mailer.content.sanitize import removed_urls, sanitize
from mailer.errors import ComposeError

FRONT_MATTER_KEYS = ("title", "author", "date", "summary", "image", "image_alt")
SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text"}
LONG_PARAGRAPH = 2000  # what is still this long after splitting has no sentence end to break at
# a short last line such as "Thank you – Jo & the team" or "In solidarity, the committee" is a
# sign-off, which needs no full stop; anything else without one may have been cut off
_SIGN_OFF = re.compile(r"^(?=.{1,80}$)(?:(?:thank|thanks|best|regards|kind regards|warm|with love|love|cheers|"
                       r"yours|in solidarity|solidarity|see you|until|onwards|forward)\b|.*\s[–—-]\s)",
                       re.IGNORECASE)

_md = with_typographer(MarkdownIt("commonmark", {"html": True, "linkify": True}).enable(
    ["table", "strikethrough", "linkify"]))
# every link becomes a link token: sanitize() is the one gate for URL schemes, and what it drops is
# recorded, where markdown-it would leave [click](javascript:...) in the mail as literal text
_md.validateLink = lambda url: True  # type: ignore[method-assign]
_URL = re.compile(r"(https?://[^\s<>\"')\]]+[^\s<>\"')\].,;:!?])")


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


def read_report(path: Path, folder: Path | None = None, language: str = "en") -> Report:
    """Read one report file into a Report; ComposeError names what is wrong.

    With *folder* (the issue folder), a report that resolves outside it is refused. Paragraphs
    longer than pasted.SPLIT_OVER are split between sentences of *language*, with a warning.
    """
    if folder is not None:
        _check_inside(path, folder)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ComposeError(f"{path}: unknown report type {path.suffix!r} (use .md or .txt)")
    text = _read_text(path)
    meta, body, body_line = _split_front_matter(text, path)
    report = Report(path=path, **{"title": "", **meta})
    report.title = typography(report.title)
    if kind == "markdown":
        _parse_markdown(report, body, language)
    else:
        _parse_plain(report, body, language)
    if not report.title:
        first = next((b.text for b in report.blocks if b.kind in ("p", "quote", "li")), "")
        report.title = title_from_text(first, language) or "Untitled report"
        if first:
            report.warnings.append(f"{path.name}: no title; using the first sentence, {report.title!r} (add a "
                                   "first line or 'title:' front matter)")
    report.words = sum(len(b.text.split()) for b in report.blocks)
    last = report.blocks[-1] if report.blocks else None
    if report.words == 0:
        report.warnings.append(f"{path.name}: the report is empty")
    elif last is not None and last.kind == "p" and not _SIGN_OFF.search(last.text) and \
            not re.search(r"[.!?…\"'”’)\]:]\s*$", last.text):
        report.warnings.append(f"{path.name}: ends without punctuation; was it cut off?")
    for block in report.blocks:
        if block.kind == "p" and len(block.text) > LONG_PARAGRAPH:
            report.warnings.append(f"{path.name}: a paragraph of {len(block.text):,} characters with no "
                                   "sentence to break at; readers on phones will thank you for breaks")
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


def render_markdown(text: str) -> tuple[str, list[TextBlock], list[str]]:
    """Markdown (an intro, say) to sanitised HTML, text blocks and their links."""
    tokens = _md.parse(text)
    blocks, links = text_blocks(tokens)
    return sanitize(_md.renderer.render(tokens, _md.options, {})), blocks, links


def _parse_markdown(report: Report, body: str, language: str) -> None:
    body = bullets_as_markdown(body)
    tokens = _md.parse(body)
    body, split = split_long_markdown(body, tokens, language)
    if split:
        tokens = _md.parse(body)
        report.warnings.append(f"{report.path.name}: {split} long paragraph(s) split between sentences; "
                               "check the breaks in the preview")
    # a leading level-1 heading is the title, unless front matter gave one
    if len(tokens) >= 3 and tokens[0].type == "heading_open" and tokens[0].tag == "h1":
        heading = inline_text(tokens[1].children or [], [])
        tokens = tokens[3:]
        report.title = report.title or heading
    # report headings sit under the report's own title: shift them down one level
    for tok in tokens:
        if tok.type in ("heading_open", "heading_close"):
            tok.tag = f"h{min(int(tok.tag[1]) + 1, 4)}"
    raw = _md.renderer.render(tokens, _md.options, {})
    report.removed = removed_urls(raw)
    report.html = sanitize(raw)
    report.blocks, report.links = text_blocks(tokens)


def _parse_plain(report: Report, body: str, language: str) -> None:
    """Plain text: a short first line is the title; blank lines (or lines) separate paragraphs;
    bullet and numbered lines make lists; long paragraphs are split between sentences."""
    lines = [line.rstrip() for line in body.strip("\n").split("\n")]
    if not any(line.strip() for line in lines):
        return
    first = lines[0].strip()
    rest = lines[1:]
    looks_like_title = (
        not report.title and len(first) <= 100 and rest and any(line.strip() for line in rest)
        and not re.search(r"[.,;:]$", first) and list_line(first) is None
    )
    if looks_like_title:
        report.title = typography(first)
        lines = rest
    text = "\n".join(lines).strip("\n")
    if "\n\n" in text:
        raw_paragraphs = re.split(r"\n\s*\n", text)
    else:
        raw_paragraphs = text.split("\n")  # one paragraph per line, as word processors paste
    html_parts: list[str] = []
    items: list[tuple[int | None, str]] = []
    split = 0

    def close_list() -> None:
        if not items:
            return
        numbered = items[0][0] is not None
        start = items[0][0] if numbered else None
        for n, (number, item) in enumerate(items):
            marker = f"{(start or 1) + n}." if numbered else "-"
            report.blocks.append(TextBlock("li", item, marker))
        tag = "ol" if numbered else "ul"
        attrs = f' start="{start}"' if numbered and start != 1 else ""
        html_parts.append(f"<{tag}{attrs}>" + "".join(f"<li>{_linkify(t)}</li>" for _, t in items) + f"</{tag}>")
        items.clear()

    for raw in raw_paragraphs:
        para_lines = [line.strip() for line in raw.split("\n") if line.strip()]
        if not para_lines:
            continue
        prose: list[str] = []
        for line in para_lines:
            item = list_line(line)
            if item is not None and (items or len(para_lines) > 1 or len(raw_paragraphs) > 1):
                split += _add_paragraph(report, prose, html_parts, language)
                prose = []
                if items and (items[-1][0] is None) != (item.number is None):
                    close_list()
                items.append((item.number, typography(item.text)))
            else:
                close_list()
                prose.append(line)
        split += _add_paragraph(report, prose, html_parts, language)
    close_list()
    if split:
        report.warnings.append(f"{report.path.name}: {split} long paragraph(s) split between sentences; "
                               "check the breaks in the preview")
    report.html = sanitize("\n".join(html_parts))


def _add_paragraph(report: Report, lines: list[str], html_parts: list[str], language: str) -> int:
    """Append one pasted paragraph (split when long); 1 when it was split, else 0."""
    if not lines:
        return 0
    wrapped = len(lines) > 1 and all(len(line) >= 50 for line in lines[:-1])
    paragraph = typography((" " if wrapped else "\n").join(lines))
    pieces = split_paragraph(paragraph, language) if "\n" not in paragraph else [paragraph]
    for piece in pieces:
        report.blocks.append(TextBlock("p", piece))
        html_parts.append("<p>" + _linkify(piece).replace("\n", "<br>\n") + "</p>")
    return int(len(pieces) > 1)


def _linkify(text: str) -> str:
    """Escape plain text and turn bare http(s) URLs into links."""
    pieces = _URL.split(text)
    out = []
    for i, piece in enumerate(pieces):
        escaped = html.escape(piece, quote=True)
        out.append(f'<a href="{escaped}">{escaped}</a>' if i % 2 else escaped)
    return "".join(out)
