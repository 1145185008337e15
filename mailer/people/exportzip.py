"""Export archives of other tools, imported as they are downloaded: a Mailchimp audience export
(a zip of subscribed, unsubscribed and cleaned CSVs) or a Substack export (a zip holding
email_list.<publication>.csv beside the posts).

The zip is checked before anything is read (member count, names, declared and actual sizes, so a
zip bomb or a `../` name does nothing), its CSVs are copied out to a private temporary folder
(counting the bytes really written), and each goes through `import_csv` like a CSV given alone:
the unsubscribed and cleaned files first, so their people are suppressions before the subscribed
file is read. Mailchimp's non-subscribed contacts (never opted in) are left out and said so.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.people.importing import ImportReport, default_rejects_path, import_csv

MAX_MEMBERS = 200                 # Substack zips carry the posts too
MAX_CSV_BYTES = 2 * 1024 ** 3     # per CSV, as copied out
MAX_RATIO = 200                   # CSVs compress ~5-20x; a bomb by thousands
# what each CSV of a Mailchimp export is, by its name's first word, in the order they are imported
MAILCHIMP = (("unsubscribed", "unsubscribed"), ("cleaned", "cleaned"), ("subscribed", "subscribed"))
SKIPPED = ("nonsubscribed", "transactional")
SUBSTACK = re.compile(r"email_list\.[^/]*\.csv")


@dataclass
class ZipImport:
    """What importing an export zip did: one report per CSV imported, and the CSVs left out."""

    path: Path
    source: str
    reports: list[tuple[str, ImportReport]] = field(default_factory=list)   # (kind, report)
    skipped: list[str] = field(default_factory=list)


def is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)


def _members(path: Path) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable zip file ({exc})") from None
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        archive.close()
        raise InputError(f"{path}: {len(infos)} files in the zip; an export has at most {MAX_MEMBERS}")
    return archive, infos


def _plan(path: Path, infos: list[zipfile.ZipInfo]) -> tuple[str, list[tuple[str, zipfile.ZipInfo]], list[str]]:
    """Which CSVs to import, in order, as which kind; and which are left out."""
    csvs = [i for i in infos if not i.is_dir() and i.filename.lower().endswith(".csv")
            and not PurePosixPath(i.filename).name.startswith((".", "__MACOSX"))
            and "__MACOSX/" not in i.filename]
    substack = [i for i in csvs if SUBSTACK.fullmatch(PurePosixPath(i.filename).name)]
    if substack:
        return "substack", [("subscribers", i) for i in substack], []
    chosen: list[tuple[str, zipfile.ZipInfo]] = []
    skipped: list[str] = []
    for kind, prefix in MAILCHIMP:
        chosen += [(kind, i) for i in csvs if PurePosixPath(i.filename).name.lower().startswith(prefix)]
    skipped = [i.filename for i in csvs if PurePosixPath(i.filename).name.lower().startswith(SKIPPED)]
    if not chosen:
        names = ", ".join(i.filename for i in csvs[:5]) or "no CSV at all"
        raise InputError(f"{path}: not a Mailchimp or Substack export (it holds {names}); "
                         f"unzip it and import the CSV")
    return "mailchimp", chosen, skipped


def _check(path: Path, info: zipfile.ZipInfo) -> None:
    name = PurePosixPath(info.filename)
    if name.is_absolute() or ".." in name.parts:
        raise InputError(f"{path}: member {info.filename!r} has an unsafe name")
    if info.file_size > MAX_CSV_BYTES:
        raise InputError(f"{path}: {info.filename} would unpack to {info.file_size} bytes "
                         f"(at most {MAX_CSV_BYTES})")
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1024 ** 2:
        raise InputError(f"{path}: {info.filename} is compressed {info.file_size // info.compress_size}:1, "
                         f"like a zip bomb; refused")


def _copy_out(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, folder: Path, index: int) -> Path:
    """Copy one member out under a name of ours, never more than it declared."""
    target = folder / f"{index}-{re.sub(r'[^A-Za-z0-9._-]', '_', PurePosixPath(info.filename).name)}"
    written = 0
    try:
        with archive.open(info) as source, open(target, "wb") as out:
            while chunk := source.read(1024 * 1024):
                written += len(chunk)
                if written > info.file_size or written > MAX_CSV_BYTES:
                    raise InputError(f"{path}: {info.filename} unpacks to more than it declares; refused")
                out.write(chunk)
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
        raise InputError(f"{path}: {info.filename}: cannot be read ({exc})") from None
    return target


def _check_header(path: Path, name: str, csv_path: Path, source: str) -> None:
    """The CSV's header is usable (an email column, this tool's export): else nothing is imported."""
    from mailer.people.csvsource import read_rows
    from mailer.people.importformats import detect

    with open(csv_path, "rb") as f:
        try:
            next(read_rows(csv_path, f, on_header=lambda line: detect(csv_path, line, source)), None)
        except InputError as exc:
            raise InputError(f"{path}: {name}: {str(exc).split(': ', 1)[-1]}") from None


def import_export_zip(db: Database, settings: Settings, path: Path, list_slug: str, *, confirmed: bool = False,
                      dry_run: bool = False, rejects_dir: Path | None = None,
                      progress: Callable[[str], None] | None = None) -> ZipImport:
    """Import every subscriber CSV of the export zip *path* into *list_slug* (see the module docstring).
    Nothing is imported when the zip or a CSV's header fails its checks; rejected rows of each CSV go to
    <rejects_dir or subscribers/>/<zip name>-<kind>-rejects.csv."""
    archive, infos = _members(path)
    with archive:
        source, chosen, skipped = _plan(path, infos)
        for _, info in chosen:
            _check(path, info)
        result = ZipImport(path=path, source=source, skipped=skipped)
        with tempfile.TemporaryDirectory(prefix="mailer-export-", dir=settings.path("subscribers")) as tmp:
            files = [(kind, info, _copy_out(path, archive, info, Path(tmp), n))
                     for n, (kind, info) in enumerate(chosen)]
            for _, info, csv_path in files:
                _check_header(path, info.filename, csv_path, source)
            for kind, info, csv_path in files:
                if progress:
                    progress(info.filename)
                rejects = (rejects_dir or default_rejects_path(settings, path).parent) / f"{path.stem}-{kind}-rejects.csv"
                report = import_csv(db, settings, csv_path, list_slug, confirmed=confirmed, dry_run=dry_run,
                                    rejects_path=rejects, source=source)
                report.path = Path(info.filename)
                result.reports.append((kind, report))
            shutil.rmtree(tmp, ignore_errors=True)
    return result
