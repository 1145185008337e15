"""Pasted HTML and .docx files as a report's Markdown: paragraphs, bold, italics, links and lists.

Word, Google Docs and LibreOffice put formatting on the clipboard as HTML; mammoth turns a
.docx into the same kind of HTML. Either goes through the one sanitiser (mailer.content.sanitize's
nh3, with a narrower set of tags) and then becomes Markdown, so the report is a plain file the
CLI reads like any other. Everything else (fonts, colours, tables, images, scripts, comments)
is dropped; the text inside stays. Google Docs marks bold and italics with styles on <span>,
not with <b> and <i>: those styles are read before the sanitiser drops them.

A .docx is a zip: `check_docx` refuses one with too many members, too much uncompressed data or
a compression ratio no document has (a zip bomb), before mammoth opens it.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Callable

import lxml.etree
import lxml.html
import nh3

from mailer.content.sanitize import URL_SCHEMES

KEPT_TAGS = {"p", "br", "strong", "em", "a", "ul", "ol", "li", "h1", "h2", "h3", "h4", "blockquote"}
DOCX_MAX_MEMBERS = 500
DOCX_MAX_TOTAL = 50_000_000        # bytes once uncompressed
DOCX_MAX_RATIO = 100               # uncompressed / compressed, per member
_BOLD = re.compile(r"font-weight\s*:\s*(bold|[6-9]00)", re.I)
_ITALIC = re.compile(r"font-style\s*:\s*italic", re.I)
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")
_PICTURE_TAG = re.compile(r'<img[^>]*\bsrc="mailer-picture-(\d+)"[^>]*>')
_LINE_START = re.compile(r"^([ \t]*)(?:([-+=])|(\d+)([.)]))([ \t]|$)", re.M)


class RichTextError(ValueError):
    """The pasted HTML or the .docx cannot be read: the message says why."""


def _styles_as_tags(root: lxml.html.HtmlElement) -> None:
    """Google Docs' <span style="font-weight:700"> as <strong>, italic spans as <em>; its
    outer <b style="font-weight:normal"> wrapper is not bold."""
    for el in list(root.iter("span", "b")):
        style = el.get("style", "")
        if el.tag == "b" and re.search(r"font-weight\s*:\s*normal", style, re.I):
            el.tag = "span"
            continue
        bold, italic = bool(_BOLD.search(style)), bool(_ITALIC.search(style))
        if el.tag == "span" and (bold or italic):
            el.tag = "strong" if bold else "em"
            if bold and italic:
                inner = lxml.html.Element("em")
                inner.text, el.text = el.text, None
                for child in list(el):
                    inner.append(child)
                el.append(inner)
    # Word's list paragraphs: the bullet is text in a span marked mso-list:Ignore
    for el in list(root.iter("span")):
        if "mso-list" in el.get("style", "").replace(" ", "").lower() and "ignore" in el.get("style", "").lower():
            el.drop_tree()
    for p in root.iter("p"):
        if "msolistparagraph" in (p.get("class") or "").lower():
            p.tag = "li"       # a lone <li>: written as a bullet line


def clean_html(html: str) -> str:
    """*html* (from a clipboard or mammoth) reduced to the kept tags by the sanitiser."""
    if not html.strip():
        return ""
    try:
        root = lxml.html.fromstring(f"<div>{html}</div>")
    except (ValueError, lxml.etree.ParserError) as exc:
        raise RichTextError(f"the formatted text cannot be read ({exc})") from None
    for bad in root.xpath("//script|//style|//head|//title|//meta|//xml"):
        bad.drop_tree()
    _styles_as_tags(root)
    for el in root.iterdescendants("div", "tr", "section", "article"):
        el.tag = "p"               # blocks the sanitiser would drop keep their text apart
    for el in root.iter("td", "th"):
        el.tail = " " + (el.tail or "")
    for el in root.iter("b"):
        el.tag = "strong"
    for el in root.iter("i"):
        el.tag = "em"
    raw = lxml.html.tostring(root, encoding="unicode")
    return nh3.clean(raw, tags=KEPT_TAGS, attributes={"a": {"href"}}, url_schemes=URL_SCHEMES, link_rel=None)


def _escape(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text)


def _inline(el: lxml.html.HtmlElement) -> str:
    """The Markdown of *el*'s content, inline (bold, italics, links, line breaks)."""
    out = [_escape(el.text or "")]
    for child in el:
        out.append(_child(child))
        out.append(_escape(child.tail or ""))
    return "".join(out)


def _child(child: lxml.html.HtmlElement) -> str:
    """One inline element as Markdown (without its tail)."""
    inner = _inline(child)
    if child.tag == "strong" and inner.strip():
        return _wrap(inner, "**")
    if child.tag == "em" and inner.strip():
        return _wrap(inner, "*")
    if child.tag == "a" and child.get("href") and inner.strip():
        href = child.get("href", "").replace(" ", "%20").replace(")", "%29").replace("(", "%28")
        return f"[{inner.strip()}]({href})"
    if child.tag == "br":
        return "  \n"
    if child.tag in ("ul", "ol", "p", "li", "blockquote", "h1", "h2", "h3", "h4"):
        return " " + inner + " "
    return inner


def _wrap(inner: str, mark: str) -> str:
    """**bold** with the spaces kept outside the marks (Markdown needs them there)."""
    lead, core, trail = re.match(r"^(\s*)(.*?)(\s*)$", inner, re.S).groups()  # type: ignore[union-attr]
    return f"{lead}{mark}{core}{mark}{trail}"


def _line(text: str) -> str:
    text = re.sub(r"[ \t\r\n]+", " ", text.replace("  \n", "\0")).strip().replace("\0", "  \n")
    # a line that would start a list or a heading underline: its marker escaped ("1\." and "\-")
    return _LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}{m[5]}" if m[2] else f"{m[1]}{m[3]}\\{m[4]}{m[5]}", text)


def _blocks(el: lxml.html.HtmlElement, out: list[str], depth: int = 0) -> None:
    """Append the Markdown blocks of *el*'s children to *out*; loose text becomes paragraphs."""
    loose: list[str] = []

    def flush() -> None:
        line = _line("".join(loose))
        if line:
            out.append(line)
        loose.clear()

    loose.append(_escape(el.text or ""))
    for child in el:
        tag = child.tag
        if tag in ("p", "h1", "h2", "h3", "h4", "blockquote", "ul", "ol", "li"):
            flush()
            if tag == "p":
                out.append(_line(_inline(child)))
            elif tag in ("h1", "h2", "h3", "h4"):
                text = _line(_inline(child))
                if text:
                    out.append("#" * min(int(tag[1]), 3) + " " + text)
            elif tag == "blockquote":
                inner: list[str] = []
                _blocks(child, inner, depth)
                out.append("\n>\n".join("> " + b.replace("\n", "\n> ") for b in inner if b))
            elif tag == "li":
                out.append("- " + _line(_inline(child)))
            else:
                _list(child, out, depth)
        else:
            loose.append(_child(child))
        loose.append(_escape(child.tail or ""))
    flush()


def _list(el: lxml.html.HtmlElement, out: list[str], depth: int) -> None:
    """A <ul> or <ol> as one Markdown list (nested lists indented)."""
    lines: list[str] = []
    number = 1
    for li in el.iter("li"):
        if li.getparent() is not el:
            continue
        nested = [c for c in li if c.tag in ("ul", "ol")]
        for c in nested:
            li.remove(c)
        marker = f"{number}." if el.tag == "ol" else "-"
        number += 1
        lines.append("   " * depth + f"{marker} " + _line(_inline(li)))
        for c in nested:
            sub: list[str] = []
            _list(c, sub, depth + 1)
            lines.extend(sub)
    if lines:
        out.append("\n".join(lines))


def html_to_markdown(html: str) -> str:
    """Pasted or converted *html* as Markdown that keeps paragraphs, bold, italics, links and lists."""
    cleaned = clean_html(html)
    if not cleaned.strip():
        return ""
    root = lxml.html.fromstring(f"<div>{cleaned}</div>")
    out: list[str] = []
    _blocks(root, out)
    # consecutive bullet lines from Word's list paragraphs form one list
    text = "\n\n".join(b for b in out if b.strip())
    text = re.sub(r"(?<!\\)!\[", r"\\![", text)      # "Wow![a link]" is not an image
    return re.sub(r"(?m)^(- .*)\n\n(?=- )", r"\1\n", text).strip() + "\n"


def check_docx(data: bytes) -> None:
    """RichTextError unless *data* is a .docx zip of a sane size (see the module's docstring)."""
    if not data.startswith(b"PK\x03\x04"):
        raise RichTextError("this is not a .docx file (a .docx is a zip archive; save the document as .docx)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise RichTextError(f"this .docx cannot be opened ({exc})") from None
    if len(infos) > DOCX_MAX_MEMBERS:
        raise RichTextError(f"this .docx holds {len(infos):,} files; a document has far fewer (refused as a "
                            "possible zip bomb)")
    total = sum(i.file_size for i in infos)
    if total > DOCX_MAX_TOTAL:
        raise RichTextError(f"this .docx unpacks to {total / 1e6:,.0f} MB (at most {DOCX_MAX_TOTAL // 1_000_000} MB; "
                            "refused as a possible zip bomb)")
    for info in infos:
        if info.file_size > 1_000_000 and info.file_size > DOCX_MAX_RATIO * max(info.compress_size, 1):
            raise RichTextError(f"this .docx has a part compressed {info.file_size // max(info.compress_size, 1):,} "
                                "to 1 (refused as a possible zip bomb)")
    if "word/document.xml" not in {i.filename for i in infos}:
        raise RichTextError("this zip is not a Word document (no word/document.xml); save the document as .docx")


KeepImage = Callable[[bytes, str], "str | None"]   # (picture's bytes, alt text) -> its path in the report, or None


def docx_to_markdown(data: bytes, keep_image: KeepImage | None = None) -> str:
    """A checked .docx's text as Markdown. Its pictures are left out, unless *keep_image* keeps them:
    then each kept one is `![alt](path)` where it stood."""
    import mammoth

    check_docx(data)
    pictures: list[tuple[str, str]] = []       # (path, alt) of each kept picture, by number

    def picture(image) -> dict[str, str]:  # type: ignore[no-untyped-def]
        if keep_image is None:
            return {"src": ""}
        with image.open() as stream:
            raw = stream.read(DOCX_MAX_TOTAL + 1)
        alt = " ".join((image.alt_text or "").split())[:200]
        path = keep_image(raw, alt)
        if path is None:
            return {"src": ""}
        pictures.append((path, alt))
        return {"src": f"mailer-picture-{len(pictures) - 1}"}

    try:
        result = mammoth.convert_to_html(io.BytesIO(data), convert_image=mammoth.images.img_element(picture))
    except Exception as exc:     # mammoth raises many kinds for a broken document
        raise RichTextError(f"this .docx cannot be converted ({type(exc).__name__})") from None
    # a kept picture becomes a word of letters and digits, which the sanitiser and the escaping leave alone
    html = _PICTURE_TAG.sub(lambda m: f" MAILERPICTURE{m[1]}X ", result.value)
    markdown = html_to_markdown(html)
    for n, (path, alt) in enumerate(pictures):
        shown = re.sub(r"[\[\]\\]", "", alt) or "picture"
        markdown = markdown.replace(f"MAILERPICTURE{n}X", f"![{shown}]({path})")
    return markdown
