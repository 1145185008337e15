"""The text part's structure: Markdown tokens as blocks (paragraphs, headings, numbered and nested
list items, quotes, code, tables) with links as numbered footnotes.

The text template wraps these blocks at 72 columns (content.templating's `blocks` filter); a
table becomes aligned columns, or one row per line when the columns would not fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from markdown_it.token import Token

TABLE_WIDTH = 72


@dataclass(frozen=True)
class TextBlock:
    """A block of the text part: a paragraph, heading, list item or quote."""

    kind: str        # "p", "h", "li", "quote", "pre", "table" (lines kept as they are)
    text: str
    marker: str = ""  # a list item's "-" or "3."; "" for a further paragraph of the same item
    depth: int = 0    # list nesting, 0 for a top-level item


def text_blocks(tokens: list[Token]) -> tuple[list[TextBlock], list[str]]:
    """Blocks and footnote links of a Markdown token stream."""
    blocks: list[TextBlock] = []
    links: list[str] = []
    lists: list[list[int | None]] = []   # per open list: [next number] or [None] for bullets
    item_marker: str | None = None       # the marker the next paragraph of an item takes
    kind = "p"
    quote = 0
    rows: list[list[str]] | None = None
    for tok in tokens:
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            start = tok.attrGet("start")
            lists.append([int(start) if start is not None else 1] if tok.type == "ordered_list_open" else [None])
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif tok.type == "list_item_open" and lists:
            number = lists[-1][0]
            item_marker = f"{number}." if number is not None else "-"
            if number is not None:
                lists[-1][0] = number + 1
        elif tok.type == "heading_open":
            kind = "h"
        elif tok.type == "heading_close":
            kind = "p"
        elif tok.type == "blockquote_open":
            quote += 1
        elif tok.type == "blockquote_close":
            quote -= 1
        elif tok.type == "table_open":
            rows = []
        elif tok.type == "tr_open" and rows is not None:
            rows.append([])
        elif tok.type == "table_close" and rows is not None:
            blocks.append(TextBlock("table", format_table(rows)))
            rows = None
        elif tok.type in ("fence", "code_block"):
            blocks.append(TextBlock("pre", tok.content.rstrip("\n")))
        elif tok.type == "inline":
            text = inline_text(tok.children or [], links)
            if rows is not None:
                rows[-1].append(" ".join(text.split()))
            elif kind == "h":
                blocks.append(TextBlock("h", text))
            elif lists:
                blocks.append(TextBlock("li", text, item_marker or "", len(lists) - 1))
                item_marker = None
            else:
                blocks.append(TextBlock("quote" if quote else "p", text))
    return [b for b in blocks if b.text.strip()], links


def inline_text(children: list[Token], links: list[str]) -> str:
    """The text of an inline token; each http(s)/mailto link gets a footnote number [n]."""
    out: list[str] = []
    href = ""
    for child in children:
        if child.type == "text" or child.type == "code_inline":
            out.append(child.content)
        elif child.type == "softbreak":
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


def format_table(rows: list[list[str]]) -> str:
    """Aligned columns when they fit in TABLE_WIDTH, else one row per line as "head: cell; ..."."""
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(width)]
    if sum(widths) + 2 * (width - 1) <= TABLE_WIDTH:
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)
    head, body = rows[0], rows[1:]
    return "\n".join("; ".join(f"{h}: {c}" if h else c for h, c in zip(head, r) if c) for r in body)
