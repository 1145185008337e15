"""The desk's CSV import, in two steps: an upload, kept under a random token bound to the session,
shown as the import will read it (the column mapping and the first rows), then imported by
`mailer subscribers import`'s own function, with the rejected rows kept for download.

An upload lives in `subscribers/desk-uploads/<token>/` (git-ignored with the rest of subscribers/)
as the file under its own (cleaned) name, which the consent records name as the CLI's do, and a
meta.json holding the list, the consent choice and the sha256 of the session's CSRF token: another
session's request for it finds nothing. Uploads are removed once imported, and every folder after
an hour.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.people.csvsource import Row, sniff
from mailer.people.exporting import safe_cell
from mailer.people.importformats import detect
from mailer.people.importing import ImportReport, import_csv

UPLOAD_MAX = 5 * 1024 * 1024           # ~100,000 rows, imported in the request; a larger file: the CLI
KEEP_S = 3600
PREVIEW_ROWS = 5
TOKEN = re.compile(r"[A-Za-z0-9_-]{32}\Z")
CHUNK = 64 * 1024


class NoSuchUpload(InputError):
    """No upload of this session has this token (unknown, another session's, imported or expired): 404."""


class UploadTooLarge(InputError):
    """The file is over UPLOAD_MAX (413)."""


@dataclass(frozen=True)
class Upload:
    token: str
    path: Path          # the file, under its cleaned name
    list_slug: str
    confirmed: bool

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class Preview:
    source: str                         # "mailchimp", "substack", "listmonk" or "" for a plain CSV
    columns: list[tuple[str, str]]      # (header name, what the import makes of it)
    rows: list[Row]


def folder(settings: Settings) -> Path:
    return settings.path("subscribers") / "desk-uploads"


def _binding(csrf: str) -> str:
    return hashlib.sha256(f"desk-upload:{csrf}".encode()).hexdigest()


def clean_filename(filename: str) -> str:
    """The uploaded file's own name without any folder, in safe characters ('upload.csv' for none)."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")[:100]
    return base if base and base != "meta.json" else "upload.csv"


def _sweep(root: Path) -> None:
    """Remove the upload folders older than KEEP_S."""
    if not root.is_dir():
        return
    cutoff = time.time() - KEEP_S
    for entry in root.iterdir():
        if entry.is_dir() and TOKEN.match(entry.name) and entry.stat().st_mtime < cutoff:
            shutil.rmtree(entry, ignore_errors=True)


def save(settings: Settings, stream: IO[bytes], filename: str, csrf: str, list_slug: str,
         confirmed: bool) -> Upload:
    """Keep an uploaded file; UploadTooLarge (nothing kept) past UPLOAD_MAX."""
    root = folder(settings)
    _sweep(root)
    token = secrets.token_urlsafe(24)
    where = root / token
    where.mkdir(parents=True, mode=0o700)
    path = where / clean_filename(filename)
    size = 0
    with open(path, "wb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > UPLOAD_MAX:
                out.close()
                shutil.rmtree(where, ignore_errors=True)
                raise UploadTooLarge(f"file: at most {UPLOAD_MAX // (1024 * 1024)} MB here; import a larger "
                                     "file with `mailer subscribers import`")
            out.write(chunk)
    meta = {"binding": _binding(csrf), "list": list_slug, "confirmed": confirmed, "file": path.name}
    (where / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return Upload(token, path, list_slug, confirmed)


def discard(upload: Upload) -> None:
    """Forget an upload (one the preview refused)."""
    shutil.rmtree(upload.path.parent, ignore_errors=True)


def _meta(settings: Settings, token: str, csrf: str) -> tuple[Path, dict]:  # type: ignore[type-arg]
    where = folder(settings) / token
    try:
        if not TOKEN.match(token):
            raise FileNotFoundError
        meta = json.loads((where / "meta.json").read_text(encoding="utf-8"))
        expired = (where / "meta.json").stat().st_mtime < time.time() - KEEP_S
    except (OSError, ValueError):
        raise NoSuchUpload("this upload is gone (imported, or older than an hour): upload the file again") from None
    if expired or not hmac.compare_digest(str(meta.get("binding", "")), _binding(csrf)):
        raise NoSuchUpload("this upload is gone (imported, or older than an hour): upload the file again")
    return where, meta


def load(settings: Settings, token: str, csrf: str) -> Upload:
    """This session's upload *token*, not yet imported; NoSuchUpload otherwise."""
    where, meta = _meta(settings, token, csrf)
    path = where / clean_filename(str(meta.get("file", "")))
    if not path.is_file():
        raise NoSuchUpload("this upload was imported already: upload the file again to import it again")
    return Upload(token, path, str(meta.get("list", "")), bool(meta.get("confirmed")))


def rejects_file(settings: Settings, token: str, csrf: str) -> Path:
    """The rejected rows of this session's import *token*; NoSuchUpload when there are none."""
    where, _ = _meta(settings, token, csrf)
    if not (where / "rejects.csv").is_file():
        raise NoSuchUpload("no rejected rows are kept for this import")
    return where / "rejects.csv"


def _named(exc: InputError, upload: Upload) -> InputError:
    """The error with the upload's own name where the import names the kept file's path."""
    return InputError(str(exc).replace(str(upload.path), upload.name))


def preview(upload: Upload) -> Preview:
    """The columns and first rows as the import will read them; InputError (naming the file) as the
    import would refuse it: no email column, not UTF-8, not a CSV, a known export missing a column."""
    kinds: list[str] = []

    def on_header(line: str) -> None:
        mapper = detect(Path(upload.name), line, None)
        kinds.append(mapper.kind if mapper else "")

    try:
        with open(upload.path, "rb") as f:
            sniffed = sniff(Path(upload.name), f, PREVIEW_ROWS, on_header)
    except InputError as exc:
        raise _named(exc, upload) from None
    source = kinds[0] if kinds else ""
    uses = []
    for i, name in enumerate(sniffed.columns):
        if i == sniffed.email_column:
            use = "email address"
        elif i == sniffed.name_column:
            use = "name"
        elif not name:
            use = "left out (no name in the header)"
        elif name == "tags":
            use = "tags"
        else:
            use = f"{source.capitalize()} column" if source else "attribute"
        uses.append((name, use))
    return Preview(source, uses, sniffed.rows)


def run(db: Database, settings: Settings, upload: Upload) -> ImportReport:
    """Import the upload (`mailer subscribers import`); its rejected rows are kept, each with its
    line, reason and the row itself, and the upload is removed. InputError naming the file."""
    raw = upload.path.parent / "rejects-raw.csv"
    try:
        report = import_csv(db, settings, upload.path, upload.list_slug, confirmed=upload.confirmed,
                            rejects_path=raw)
    except InputError as exc:
        raise _named(exc, upload) from None
    if report.rejects_path is not None:
        _rejected_rows(upload.path, raw, upload.path.parent / "rejects.csv")
        raw.unlink(missing_ok=True)
    upload.path.unlink(missing_ok=True)
    return report


def _rejected_rows(source: Path, raw: Path, out: Path) -> None:
    """rejects.csv: line, reason and the rejected record's own fields under the file's header."""
    with open(raw, encoding="utf-8", newline="") as f:
        reasons = {int(line): reason for line, reason in list(csv.reader(f))[1:]}
    with open(source, "rb") as f:
        delimiter = sniff(source, f, 0).delimiter
    counted = [0]

    def lines(text: IO[str]):  # type: ignore[no-untyped-def]
        for line in text:
            counted[0] += 1
            yield line

    with open(source, encoding="utf-8-sig", errors="replace", newline="") as text, \
            open(out, "w", encoding="utf-8", newline="") as target:
        reader, writer = csv.reader(lines(text), delimiter=delimiter), csv.writer(target)
        header = next(reader, [])
        writer.writerow(["line", "reason", *header])
        while True:
            start = counted[0] + 1
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error:
                fields = []
            if start in reasons:
                writer.writerow([start, reasons.pop(start), *(safe_cell(v) for v in fields)])
        for line, reason in sorted(reasons.items()):     # a line the reader could not split as the import did
            writer.writerow([line, reason])
