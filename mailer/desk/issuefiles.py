"""An issue's reports and images as the desk adds, orders and removes them.

Reports are files in reports/, as the CLI reads them: pasted plain text becomes a .txt file (the
report reader makes paragraphs, lists and a title of it), pasted formatting and .docx files become
Markdown (.md, through mailer.desk.richtext), an uploaded .md or .txt is kept as it is. A title
typed on the form goes into front matter. Each new report is read back with the composer's own
reader before it counts: one that would not compose is removed again and its error shown. Their
order is issue.toml's `reports` list, which the desk writes out in full.

A .docx's pictures go into images/ through mailer.desk.issueimages, the home of an issue's images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mailer.content.folders import read_spec, slugify
from mailer.content.reports import read_report
from mailer.desk.issues import IssueFieldError, folder_lock, update_toml, write_atomic
from mailer.desk.richtext import KeepImage, RichTextError, docx_to_markdown, html_to_markdown
from mailer.errors import ComposeError, InputError, MailerError

REPORT_UPLOAD_MAX = 10_000_000     # a .docx with photos in it
PASTE_MAX = 2_000_000              # characters of pasted text or HTML
UPLOAD_KINDS = (".md", ".txt", ".docx")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class NoSuchFile(InputError):
    """No report or image by that name in this issue (404)."""


class FileExists(InputError):
    """A file by that name is there already (409)."""


@dataclass(frozen=True)
class ReportRow:
    name: str
    title: str
    words: int
    problem: str = ""


def report_names(folder: Path) -> list[str]:
    """The reports in the order issue.toml gives (or the folder's, when it gives none)."""
    return [p.name for p in read_spec(folder).reports]


def report_rows(folder: Path, language: str) -> list[ReportRow]:
    """Each report with its title and word count, or what is wrong with it."""
    return [_row(folder, name, language) for name in report_names(folder)]


_rows: dict[tuple[str, str, int, int], ReportRow] = {}   # (path, language, mtime, size): read once


def _row(folder: Path, name: str, language: str) -> ReportRow:
    path = folder / "reports" / name
    try:
        stat = path.stat()
        key = (str(path), language, stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    if key is not None and key in _rows:
        return _rows[key]
    try:
        report = read_report(path, folder, language)
        row = ReportRow(name, report.title, report.words)
    except ComposeError as exc:
        row = ReportRow(name, "", 0, str(exc).replace(str(folder) + "/", ""))
    if key is not None and not path.is_symlink():
        if len(_rows) > 500:
            _rows.clear()
        _rows[key] = row
    return row


def unlisted_reports(folder: Path) -> list[str]:
    """Report files in reports/ that issue.toml's `reports` leaves out (dropped in by hand, say)."""
    listed = set(report_names(folder))
    reports = folder / "reports"
    if not reports.is_dir():
        return []
    return sorted(p.name for p in reports.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() in (".md", ".markdown", ".txt", ".text") and p.name not in listed)


def include_reports(folder: Path) -> list[str]:
    """Append the unlisted report files to the order; the names added."""
    with folder_lock(folder):
        extra = unlisted_reports(folder)
        if extra:
            update_toml(folder, {"reports": [*report_names(folder), *extra]})
    return extra


def upload_name(filename: str, field: str) -> tuple[str, str]:
    """An uploaded file's name as (stem, suffix), made safe; a name with a path in it is refused."""
    name = filename.strip()
    if not name:
        raise IssueFieldError(field, f"{field}: choose a file")
    if "/" in name or "\\" in name or ".." in name or "\0" in name:
        raise IssueFieldError(field, f"{field}: the name {name[:80]!r} has a path in it; upload the file "
                                     "under a plain name")
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        raise IssueFieldError(field, f"{field}: the name {name[:80]!r} has no extension")
    safe = _SAFE.sub("-", stem).strip("-.")[:60] or "file"
    return safe, "." + suffix.lower()


def _title_lines(title: str) -> str:
    title = title.strip()
    if not title:
        return ""
    if re.search(r"[\x00-\x1f\x7f]", title) or len(title) > 200:
        raise IssueFieldError("title", "title: one line of at most 200 characters")
    return f'---\ntitle: "{title}"\n---\n\n'


def _report_text(title: str, body: str) -> str:
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if not title.strip() and body.lstrip("\n")[:3] in ("---", "+++"):
        body = "\n" + body                # not front matter: a line of dashes the author wrote
    return _title_lines(title) + body.strip("\n") + "\n"


def new_name(directory: Path, title: str, suffix: str) -> str:
    """NN-title.suffix, numbered after the last file of *directory*, unused there."""
    numbers = [int(m.group(1)) for p in directory.glob("*") if (m := re.match(r"(\d+)-", p.name))]
    number = max(numbers, default=0) + 1
    stem = slugify(title)[:40].strip("-") if title.strip() else "report"
    while True:
        name = f"{number:02d}-{stem}{suffix}"
        if not (directory / name).exists():
            return name
        number += 1


def _add(folder: Path, title: str, text: str, suffix: str, language: str, field: str = "text") -> str:
    """Write a new report and append it to the order; read it back as compose would, or undo."""
    with folder_lock(folder):
        names = report_names(folder)
        (folder / "reports").mkdir(exist_ok=True)
        name = new_name(folder / "reports", title, suffix)
        path = folder / "reports" / name
        write_atomic(path, text)
        try:
            report = read_report(path, folder, language)
            if report.words == 0:
                raise ComposeError(f"{name}: the report is empty")
            update_toml(folder, {"reports": [*names, name]})
        except (MailerError, OSError) as exc:
            path.unlink(missing_ok=True)
            raise IssueFieldError(field if isinstance(exc, ComposeError) else "",
                                  f"{field}: {str(exc).replace(str(path), name)}") from None
    return name


@dataclass(frozen=True)
class NewReport:
    """A report file to write: the words its name is made of, its text and its suffix."""

    hint: str
    text: str
    suffix: str


def pasted_report(title: str, text: str, html: str) -> NewReport:
    """The report the paste form makes: its HTML (when the script caught any) as Markdown, else its text."""
    if len(text) > PASTE_MAX or len(html) > PASTE_MAX:
        raise IssueFieldError("text", f"text: at most {PASTE_MAX:,} characters")
    if html.strip():
        try:
            markdown = html_to_markdown(html)
        except RichTextError as exc:
            raise IssueFieldError("text", f"text: {exc}") from None
        if markdown.strip():
            return NewReport(title or _first_line(markdown), _report_text(title, markdown), ".md")
    if not text.strip():
        raise IssueFieldError("text", "text: paste the report's text")
    return NewReport(title or _first_line(text), _report_text(title, text), ".txt")


def add_pasted(folder: Path, title: str, text: str, html: str, language: str) -> str:
    """A report from the paste form, added at the end of the issue."""
    new = pasted_report(title, text, html)
    return _add(folder, new.hint, new.text, new.suffix, language)


def _first_line(text: str) -> str:
    """The first words of a report, for its file name."""
    line = next((x for x in text.splitlines() if x.strip()), "")
    line = re.sub(r"\]\([^)]*\)", "]", line)          # a Markdown link's text, not its address
    return " ".join(line.split()[:6])


def add_uploaded(folder: Path, title: str, filename: str, data: bytes, language: str) -> tuple[str, int]:
    """A report from an uploaded .md, .txt or .docx, added at the end of the issue; a .docx's pictures
    go into images/ (JPEG, PNG, GIF or WebP up to 5 MB; others are left out). Returns the report's
    file name and how many pictures were left out. Nothing stays behind when it is refused."""
    from mailer.desk.issueimages import IMAGE_SUFFIXES, image_kind   # (issueimages builds on this module)

    kept: list[Path] = []
    left_out = [0]

    def keep_picture(raw: bytes, alt: str) -> str | None:
        try:
            kind = image_kind(raw, "picture")
        except IssueFieldError:
            left_out[0] += 1
            return None
        stem = upload_name(filename, "file")[0][:40] or "picture"
        (folder / "images").mkdir(exist_ok=True)
        n = len(kept) + 1
        while (target := folder / "images" / f"{stem}-{n}{IMAGE_SUFFIXES[kind][0]}").exists():
            n += 1
        target.write_bytes(raw)
        kept.append(target)
        return f"images/{target.name}"

    try:
        new = uploaded_report(title, filename, data, keep_picture)
        return _add(folder, new.hint, new.text, new.suffix, language, "file"), left_out[0]
    except BaseException:
        for path in kept:
            path.unlink(missing_ok=True)
        raise


def uploaded_report(title: str, filename: str, data: bytes, keep_image: KeepImage | None = None) -> NewReport:
    """The report an uploaded .md, .txt or .docx makes, once its content is what its name says
    (a .docx's pictures through *keep_image*, else left out)."""
    stem, suffix = upload_name(filename, "file")
    if suffix not in UPLOAD_KINDS:
        raise IssueFieldError("file", f"file: {suffix} is not a report; upload .md, .txt or .docx")
    if len(data) > REPORT_UPLOAD_MAX:
        raise IssueFieldError("file", f"file: at most {REPORT_UPLOAD_MAX // 1_000_000} MB")
    hint = title.strip() or stem.replace("-", " ")      # the new file's name
    if suffix == ".docx":
        try:
            markdown = docx_to_markdown(data, keep_image)
        except RichTextError as exc:
            raise IssueFieldError("file", f"file {filename[:80]!r}: {exc}") from None
        if not markdown.strip():
            raise IssueFieldError("file", f"file {filename[:80]!r}: the document has no text")
        return NewReport(hint, _report_text(title, markdown), ".md")
    if data.startswith(b"PK\x03\x04") or b"\0" in data[:8192]:
        raise IssueFieldError("file", f"file {filename[:80]!r}: not a text file; a {suffix} report is text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IssueFieldError("file", f"file {filename[:80]!r}: not UTF-8 text; save it as UTF-8") from None
    own_front_matter = text[:3] in ("---", "+++")
    body = text.replace("\r\n", "\n") if own_front_matter or not title.strip() else _report_text(title, text)
    return NewReport(hint, body, suffix)


def move_report(folder: Path, name: str, step: int) -> None:
    """Move report *name* one place up (-1) or down (+1); at either end it stays."""
    with folder_lock(folder):
        names = report_names(folder)
        if name not in names:
            raise NoSuchFile(f"no report {name[:80]!r} in this issue")
        i = names.index(name)
        j = max(0, min(len(names) - 1, i + step))
        names[i], names[j] = names[j], names[i]
        update_toml(folder, {"reports": names})


def remove_report(folder: Path, name: str) -> None:
    """Take report *name* out of the order and delete its file."""
    with folder_lock(folder):
        names = report_names(folder)
        if name not in names:
            raise NoSuchFile(f"no report {name[:80]!r} in this issue")
        update_toml(folder, {"reports": [n for n in names if n != name]})
        (folder / "reports" / name).unlink(missing_ok=True)
