"""One mail to report files: the body or the attached documents become reports, images are kept,
anything else is dropped and named.

The subject is the title. With no document attached, the body is the report: a text/plain body
as a .txt report (the pasted-text rules of mailer.content.reports apply), a text/html one
sanitised to Markdown (`htmltext`). Attached `.md` and `.txt` files are reports as they are (a
title from the subject is added when they have none), a `.docx` is converted by mammoth after
its zip passed the bomb checks, and the body is then kept only as a note for the editor. Images
are kept when Pillow reads them as JPEG, PNG, GIF or WebP (whatever their name says).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

from mailer.content.images import FORMATS, MAX_BYTES as IMAGE_BYTES
from mailer.headers import clean_header
from mailer.submissions.htmltext import to_markdown

MAX_ATTACHMENT = 10_000_000
# a .docx is a zip: refused past these, before anything is unpacked
ZIP_MEMBERS = 500
ZIP_TOTAL = 50_000_000
ZIP_RATIO = 100
TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".text")


@dataclass
class Converted:
    """What a mail files: report files and images (name, bytes), what was dropped and why, a note."""

    title: str
    reports: list[tuple[str, bytes]] = field(default_factory=list)
    images: list[tuple[str, bytes]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""


def safe_name(name: str, fallback: str = "attachment") -> str:
    """A file name that is only a name: no folders, no leading dot, plain characters, bounded."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name.replace("\\", "/").rsplit("/", 1)[-1]).strip("-.")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = stem[:60] or fallback
    return f"{stem}.{suffix[:10].lower()}" if suffix else stem


def front_matter(title: str) -> str:
    """TOML front matter setting the title (a JSON string is a TOML string), or "" without one."""
    return f"+++\ntitle = {json.dumps(title, ensure_ascii=False)}\n+++\n" if title else ""


def title_of(msg: EmailMessage) -> str:
    """The subject, one clean line; "" when there is none."""
    try:
        subject = str(msg.get("Subject", "") or "")
    except (ValueError, TypeError):      # an unreadable encoded word: no title
        subject = ""
    return clean_header(subject, 200)


def _payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _text(part: Message) -> str:
    charset = part.get_content_charset() or "utf-8"
    try:
        return _payload(part).decode(charset, errors="replace")
    except LookupError:
        return _payload(part).decode("utf-8", errors="replace")


def _cut_signature(text: str) -> str:
    """The body without its signature (after the standard "-- " line)."""
    text = text.replace("\r\n", "\n")
    head, sep, _ = text.partition("\n-- \n")
    return head if sep else text


def convert(msg: EmailMessage) -> Converted:
    """The report files, images and dropped attachments of *msg*."""
    out = Converted(title_of(msg))
    plain, html, documents = "", "", []
    for part in msg.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        kind = part.get_content_type()
        if filename or part.get_content_disposition() == "attachment":
            _attachment(out, part, safe_name(filename or "attachment"), documents)
        elif kind == "text/plain" and not plain:
            plain = _text(part)
        elif kind == "text/html" and not html:
            html = _text(part)
        elif kind.startswith("image/"):
            _attachment(out, part, safe_name(f"image.{kind.split('/')[1]}"), documents)
    body = to_markdown(html) if html.strip() else ""
    suffix = ".md" if body else ".txt"
    body = body or _cut_signature(plain).strip()
    if documents:
        out.note = body
    elif body:
        documents.append((f"report{suffix}", body))
    for number, (name, text) in enumerate(documents, 1):
        title = out.title if len(documents) == 1 else f"{out.title} ({number})" if out.title else ""
        stem, suffix = name.rsplit(".", 1)
        out.reports.append((f"{number:02d}-{stem}.{suffix}", _with_title(text, suffix, title).encode("utf-8")))
    return out


def _with_title(text: str, suffix: str, title: str) -> str:
    """*text* with front matter giving *title*, unless it has front matter or a leading # heading."""
    first = text.lstrip("\ufeff").lstrip("\n")
    if first.startswith(("---\n", "+++\n")) or (suffix in ("md", "markdown") and first.startswith("# ")):
        return text
    return front_matter(title) + text.rstrip() + "\n"


def _attachment(out: Converted, part: Message, name: str, documents: list[tuple[str, str]]) -> None:
    """Keep one attachment as a document or an image, or record why it was dropped."""
    data = _payload(part)
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if len(data) > MAX_ATTACHMENT:
        out.dropped.append((name, f"{len(data) / 1e6:.1f} MB, over the {MAX_ATTACHMENT / 1e6:.0f} MB allowed"))
    elif suffix in TEXT_SUFFIXES:
        try:
            documents.append((name, data.decode("utf-8-sig")))
        except UnicodeDecodeError:
            out.dropped.append((name, "not UTF-8 text"))
    elif suffix == ".docx":
        try:
            documents.append((name[:-5] + ".md", docx_markdown(data)))
        except ValueError as exc:
            out.dropped.append((name, str(exc)))
    else:
        kind = image_kind(data)
        if kind and len(data) <= IMAGE_BYTES:
            stem = name.rsplit(".", 1)[0] if "." in name else name
            taken, unique, n = {i for i, _ in out.images}, f"{stem}.{FORMATS[kind]}", 2
            while unique in taken:        # two photo.jpg attachments: photo.jpg, photo-2.jpg
                unique, n = f"{stem}-{n}.{FORMATS[kind]}", n + 1
            out.images.append((unique, data))
        elif kind:
            out.dropped.append((name, f"an image of {len(data) / 1e6:.1f} MB (mail needs images under 5 MB)"))
        else:
            out.dropped.append((name, f"not accepted (reports: .md, .txt, .docx; images: JPEG, PNG, GIF, "
                                      f"WebP){f'; its content is not an image' if part.get_content_maintype() == 'image' else ''}"))


def image_kind(data: bytes) -> str:
    """JPEG, PNG, GIF or WEBP when Pillow reads *data* as one of them, else ""."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            kind = img.format or ""
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return ""
    return kind if kind in FORMATS else ""


def docx_markdown(data: bytes) -> str:
    """A .docx as Markdown (mammoth's HTML, sanitised); ValueError naming what is wrong."""
    import mammoth

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ValueError("not a .docx file (not a zip archive)") from None
    total = sum(m.file_size for m in members)
    if len(members) > ZIP_MEMBERS:
        raise ValueError(f"a .docx of {len(members)} parts (at most {ZIP_MEMBERS}); not unpacked")
    if total > ZIP_TOTAL:
        raise ValueError(f"a .docx that unpacks to {total / 1e6:.0f} MB (at most {ZIP_TOTAL / 1e6:.0f} MB); not unpacked")
    if any(m.file_size > ZIP_RATIO * max(m.compress_size, 1) and m.file_size > 1_000_000 for m in members):
        raise ValueError(f"a .docx part compressed more than {ZIP_RATIO}:1 (a zip bomb?); not unpacked")
    if "word/document.xml" not in {m.filename for m in members}:
        raise ValueError("not a .docx file (no word/document.xml)")
    try:
        html = mammoth.convert_to_html(io.BytesIO(data)).value
    except Exception as exc:   # noqa: BLE001  (mammoth raises many kinds for a damaged file)
        raise ValueError(f"cannot read the .docx: {type(exc).__name__}") from None
    markdown = to_markdown(html)
    if not markdown.strip():
        raise ValueError("the .docx holds no text")
    return markdown
