"""Text as people paste it: typography, sentences, paragraph breaks, bullet lines, titles.

Reports arrive from word processors as one long paragraph with straight or curly quotes and `•`
bullets. This module makes such text read well without changing a word: the same typographer
for every kind of report (markdown-it's smartquotes and replacements), long paragraphs split
between sentences (sentencex, a maintained segmenter for ~300 languages: abbreviations,
initials, numbers and quotes do not end a sentence), bullet and numbered lines recognised as
list items, and a title taken from the first sentence when a report has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.rules_core.replacements import RARE_RE, replace_rare
from markdown_it.rules_core.state_core import StateCore
from markdown_it.token import Token

# a paragraph longer than this is split; the pieces aim at TARGET and stop growing at MAX
SPLIT_OVER = 900
TARGET = 450
MAX = 800
TITLE_MAX = 70



def _dashes_and_ellipses(state: StateCore) -> None:
    """markdown-it's replacements without (c), (r) and (tm): in reports "(c)" labels a point."""
    if not state.md.options.typographer:
        return
    for token in state.tokens:
        if token.type == "inline" and token.children is not None and RARE_RE.search(token.content):
            replace_rare(token.children)


def _linkify_trailing_colon(state: StateCore) -> None:
    """A bare URL ending a clause ("see https://x.org/minutes:") links without its colon."""
    for token in state.tokens:
        children = token.children or []
        i = 0
        while i + 2 < len(children):
            link, text, close = children[i], children[i + 1], children[i + 2]
            href = str(link.attrs.get("href", ""))
            if (link.type == "link_open" and link.markup == "linkify" and href.endswith(":")
                    and text.type == "text" and text.content.endswith(":") and close.type == "link_close"):
                link.attrs["href"], text.content = href[:-1], text.content[:-1]
                colon = Token("text", "", 0)
                colon.content = ":"
                children.insert(i + 3, colon)
            i += 1


def with_typographer(md: MarkdownIt) -> MarkdownIt:
    """*md* with the one typographer every report kind gets (quotes, dashes, ellipses)."""
    md.options["typographer"] = True
    md.enable(["replacements", "smartquotes"])
    md.core.ruler.at("replacements", _dashes_and_ellipses)
    if "linkify" in md.core.ruler.get_active_rules():
        md.core.ruler.after("linkify", "linkify_trailing_colon", _linkify_trailing_colon)
    return md


# only the typographer: no emphasis, links, entities or escapes, so plain text stays as written
_typographer = with_typographer(MarkdownIt("zero"))
BULLET_GLYPHS = "•◦▪‣●○■□"
_BULLET = re.compile(r"^\s*(?:[" + BULLET_GLYPHS + r"*+-]|(\d{1,3})[.)])\s+(?=\S)")
_TITLES = ("Mr.", "Mrs.", "Ms.", "Dr.", "Cllr.", "Prof.", "Rev.", "Sr.", "Sra.")
_CLAUSE = re.compile(r"[,;:–—]\s|\s[–—-]\s")


@dataclass(frozen=True)
class ListLine:
    """A pasted line that is a list item: its number (None for a bullet) and its text."""

    number: int | None
    text: str


def typography(text: str) -> str:
    """Curly quotes and apostrophes, dashes and ellipses; nothing else changes."""
    if not text.strip():
        return text
    out: list[str] = []
    for token in _typographer.parseInline(text):
        for child in token.children or []:
            if child.type == "text":
                out.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                out.append("\n")
    typed = "".join(out)
    # parseInline trims the ends; keep the original's surrounding whitespace
    lead = text[: len(text) - len(text.lstrip())]
    trail = text[len(text.rstrip()):]
    return lead + typed.strip() + trail


def list_line(line: str) -> ListLine | None:
    """The line as a list item when it starts with a bullet or `1.`/`1)`, else None."""
    match = _BULLET.match(line)
    if match is None:
        return None
    number = int(match.group(1)) if match.group(1) else None
    return ListLine(number, line[match.end():].strip())


def sentences(text: str, language: str = "en") -> list[str]:
    """*text* cut into sentences; joined again they give *text* back exactly."""
    from sentencex import segment

    parts = list(segment(_segmenter_language(language), text))
    if "".join(parts) != text:      # never lose a character, whatever the segmenter does
        return [text]
    return parts


def split_paragraph(text: str, language: str = "en") -> list[str]:
    """A paragraph longer than SPLIT_OVER as paragraphs of a few sentences, else [text].

    Breaks fall between sentences only, preferably where a new speaker or named subject opens a
    sentence (a quote, or a title or two capitalised words first), once a piece has reached
    TARGET characters; a piece never grows past MAX unless one sentence is longer.
    """
    if len(text) <= SPLIT_OVER:
        return [text]
    parts = sentences(text, language)
    pieces: list[str] = []
    current = ""
    for sentence in parts:
        size = len(current)
        if current and (size + len(sentence) > MAX or (size >= TARGET and _opens_subject(sentence))):
            pieces.append(current)
            current = ""
        current += sentence
    if current:
        # a short tail joins the piece before it rather than stand alone
        if pieces and len(current) < TARGET // 3 and len(pieces[-1]) + len(current) <= MAX:
            pieces[-1] += current
        else:
            pieces.append(current)
    return [p.strip() for p in pieces if p.strip()]


def title_from_text(text: str, language: str = "en") -> str:
    """A title from the first sentence: at most TITLE_MAX characters, cut at a clause or word."""
    first = " ".join(text.split())
    if not first:
        return ""
    first = sentences(first, language)[0].strip()
    first = first.rstrip(".!?…:;,").strip()
    if len(first) <= TITLE_MAX:
        return first
    clauses = [m.start() for m in _CLAUSE.finditer(first) if 20 <= m.start() <= TITLE_MAX]
    if clauses:
        return first[: clauses[-1]].rstrip(" ,;:–—-")
    cut = first.rfind(" ", 0, TITLE_MAX)
    return first[: cut if cut > 20 else TITLE_MAX].rstrip(" ,;:–—-") + "…"


def bullets_as_markdown(body: str) -> str:
    """Word-processor bullets (•, ◦, ▪ ...) as Markdown list items; `-`, `*`, `1.` already are."""
    lines = body.split("\n")
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped[:1] in BULLET_GLYPHS and list_line(line) is not None:
            lines[i] = line[: len(line) - len(stripped)] + "- " + stripped[1:].lstrip()
    return "\n".join(lines)


def split_long_markdown(body: str, tokens: list[Token], language: str) -> tuple[str, int]:
    """*body* with each long top-level paragraph split between sentences (where the inline
    markup allows a break), and how many were split."""
    lines = body.split("\n")
    replaced = 0
    for i in reversed(range(len(tokens))):
        tok = tokens[i]
        if tok.type != "paragraph_open" or tok.level != 0 or tok.map is None:
            continue
        start, end = tok.map
        source = " ".join(line.strip() for line in lines[start:end])
        pieces = _balanced(split_paragraph(source, language))
        if len(pieces) > 1:
            lines[start:end] = "\n\n".join(pieces).split("\n")
            replaced += 1
    return "\n".join(lines), replaced


def _balanced(pieces: list[str]) -> list[str]:
    """Join pieces until none opens a link, code span or emphasis that the next one closes."""
    out: list[str] = []
    for piece in pieces:
        if out and not _closed(out[-1]):
            out[-1] += " " + piece
        else:
            out.append(piece)
    return out


def _closed(text: str) -> bool:
    return (text.count("[") == text.count("]") and text.count("`") % 2 == 0
            and text.count("**") % 2 == 0 and text.replace("**", "").count("*") % 2 == 0)


def _opens_subject(sentence: str) -> bool:
    """Whether a sentence opens with a new speaker or subject: a quote, a title, or a name."""
    s = sentence.lstrip()
    if s[:1] in "\"“‘'«„":
        return True
    if s.startswith(_TITLES):
        return True
    words = s.split(None, 2)
    return len(words) >= 2 and all(w[:1].isupper() and w[1:2].islower() for w in words[:2])


def _segmenter_language(language: str) -> str:
    return language.split("-")[0].lower() or "en"
