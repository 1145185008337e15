"""Editing one report of an issue in place: its file's text in a form, saved back only when it still
reads as a report.

The form carries the version (a hash) of the text it showed: when the file changed meanwhile (another
editor, or someone on the server), saving is refused with both kept, never overwritten blindly. The
new text is written all at once (issues.write_atomic) and read back with the composer's own reader;
one that would not compose, or is empty, is put back as it was and its error shown.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mailer.content.reports import read_report
from mailer.desk.issuefiles import PASTE_MAX, NoSuchFile, report_names
from mailer.desk.issues import IssueFieldError, folder_lock, write_atomic
from mailer.errors import ComposeError, InputError, MailerError

TEXT_FIELD = "text"
EDITABLE = (".md", ".markdown", ".txt", ".text")


class ChangedMeanwhile(InputError):
    """The report's file changed since the form was shown (409)."""


@dataclass(frozen=True)
class ReportSource:
    name: str
    text: str
    version: str          # what the form sends back: the text it started from
    markdown: bool        # .md (Markdown) or .txt (plain text made into paragraphs)


def _version(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _path(folder: Path, name: str) -> Path:
    """reports/<name> when issue.toml lists it and it is a text report; NoSuchFile otherwise."""
    if name not in report_names(folder):
        raise NoSuchFile(f"no report {name[:80]!r} in this issue")
    path = folder / "reports" / name
    if path.suffix.lower() not in EDITABLE or path.is_symlink() or not path.is_file():
        raise NoSuchFile(f"{name[:80]}: only .md and .txt reports in the issue's reports/ can be edited here")
    return path


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise IssueFieldError(TEXT_FIELD, f"{path.name}: not UTF-8 text; fix it on the server") from None


def report_source(folder: Path, name: str) -> ReportSource:
    """The report's text as it is on disk, with its version."""
    path = _path(folder, name)
    text = _read(path)
    return ReportSource(name, text, _version(text), path.suffix.lower() in (".md", ".markdown"))


def save_report(folder: Path, name: str, text: str, version: str, language: str) -> None:
    """Replace the report's text; ChangedMeanwhile when *version* is not the file's any more,
    IssueFieldError (the file as it was) when the new text is empty or does not read as a report."""
    if len(text) > PASTE_MAX:
        raise IssueFieldError(TEXT_FIELD, f"{TEXT_FIELD}: at most {PASTE_MAX:,} characters")
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip("\n") + "\n"
    with folder_lock(folder):
        path = _path(folder, name)
        before = _read(path)
        if _version(before) != version:
            raise ChangedMeanwhile(f"{name} changed since you opened it (someone else saved it): "
                                   "your text is below; copy it, reload the report and apply your change again")
        if text == before:
            return
        write_atomic(path, text)
        try:
            report = read_report(path, folder, language)
            if report.words == 0:
                raise ComposeError(f"{name}: the report is empty (remove it from the issue instead)")
        except (MailerError, OSError) as exc:
            write_atomic(path, before)
            raise IssueFieldError(TEXT_FIELD, f"{TEXT_FIELD}: {str(exc).replace(str(path), name)}") from None
