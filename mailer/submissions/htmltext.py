"""HTML (a mail's body, a .docx converted by mammoth) to a Markdown report: paragraphs, bold,
italics, links and lists survive, everything else goes.

nh3 (the project's sanitiser library) first keeps only those tags, drops `<script>` and
`<style>` with their content and every attribute but a link's http(s) or mailto target; the
small tree walk after it writes the Markdown, escaping the text so nothing in it is read as markup.
"""

from __future__ import annotations

import re

import lxml.html
import nh3

KEEP = {"p", "div", "br", "strong", "b", "em", "i", "a", "ul", "ol", "li",
        "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "tr", "td", "th"}
BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "tr", "td", "th"}
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_SPECIAL = re.compile(r"([\\`*_\[\]<>&!|~])")
_LINE_START = re.compile(r"^(\s*)([#+=-]|\d+[.)])(?=\s|$)")


def sanitise(html: str) -> str:
    """Only the tags above, links with http(s)/mailto targets; scripts and styles with their content gone."""
    return nh3.clean(html, tags=KEEP, attributes={"a": {"href"}, "ol": {"start"}},
                     url_schemes={"http", "https", "mailto"}, link_rel=None, strip_comments=True,
                     clean_content_tags={"script", "style", "title", "head", "template", "noscript"})


def to_markdown(html: str) -> str:
    """The Markdown of *html* after `sanitise`; "" when no text is left."""
    clean = sanitise(html).strip()
    if not clean:
        return ""
    root = lxml.html.fragment_fromstring(clean, create_parent="div")
    blocks: list[str] = []
    _blocks(root, blocks)
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _escape(text: str) -> str:
    return _SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", text))


def _paragraph(pieces: list[str]) -> str:
    lines = [line.strip() for line in "".join(pieces).split("\n")]
    text = "\n".join(line for line in lines if line)
    return "\n".join(_LINE_START.sub(r"\1\\\2", line) for line in text.split("\n"))


def _blocks(element: lxml.html.HtmlElement, out: list[str]) -> None:
    """Append the Markdown blocks of *element*'s children to *out*."""
    pieces: list[str] = [_escape(element.text or "")]

    def flush() -> None:
        text = _paragraph(pieces)
        pieces.clear()
        if text:
            out.append(text)

    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in ("ul", "ol"):
            flush()
            listed = _list(child)
            if listed:
                out.append(listed)
        elif tag in HEADINGS:
            flush()
            text = _paragraph([_inline(child)])
            if text:
                out.append(_wrap("**", text.replace("\n", " ")))
        elif tag in BLOCKS:
            flush()
            _blocks(child, out)
        else:
            pieces.append(_inline(child))
        pieces.append(_escape(child.tail or ""))
    flush()


def _wrap(mark: str, text: str) -> str:
    """*text* between *mark*s, its outer spaces kept outside (``** x**`` is no emphasis)."""
    match = re.fullmatch(r"(\s*)(.*?)(\s*)", text, re.DOTALL)
    assert match is not None
    lead, core, trail = match.groups()
    return f"{lead}{mark}{core}{mark}{trail}" if core else text


def _inline(element: lxml.html.HtmlElement) -> str:
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag == "br":
        return "\n"
    inner = _escape(element.text or "") + "".join(_inline(c) + _escape(c.tail or "") for c in element)
    if tag in ("strong", "b"):
        return _wrap("**", inner)
    if tag in ("em", "i"):
        return _wrap("*", inner)
    if tag == "a":
        href = (element.get("href") or "").strip()
        if not href or not inner.strip():
            return inner
        href = href.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20")
        return f"[{inner.strip()}](<{href}>)"
    if tag in ("ul", "ol"):      # a list inside a line: its items as text
        return " " + " ".join(_inline(li) for li in element) + " "
    return inner


def _list(element: lxml.html.HtmlElement) -> str:
    """One Markdown list, tight; nested lists and later blocks of an item indented under it."""
    number = int(element.get("start") or 1) if (element.get("start") or "1").isdigit() else 1
    items = []
    for child in element:
        if child.tag != "li":
            continue
        marker = f"{number}. " if element.tag == "ol" else "- "
        number += 1
        parts: list[str] = []
        _blocks(child, parts)
        if not parts:
            continue
        pad = " " * len(marker)
        text = "\n".join(parts)
        lines = text.split("\n")
        items.append(marker + lines[0] + "".join("\n" + pad + line for line in lines[1:]))
    return "\n".join(items)
