"""Bulk import of subscribers from CSV: streamed, validated, batched, idempotent.

Each batch of rows is one transaction (mailer.people.importwriter) of a few bulk Core statements (look up
suppressions, subscribers and subscriptions for the whole batch, then insert
with ON CONFLICT DO NOTHING), so an interrupted import leaves whole batches
only and re-running it changes nothing more. Suppressed addresses are never
made sendable (STANDARDS B8): what a row does is decided by `rules.decide`, the
rule `subscriptions.subscribe` applies to one person too.

Each person's record of the import is their consent row (source import, the
file as form_id, the time); the audit log gets one event per batch that changed
something (no subscriber, the file, its line range and counts), not a row per
person repeating the consent.

Reading and validating is mailer.people.importreader's: for a large file it runs in a
child process, so that it uses the second core while this process writes. Rows
come in email_key order and get time-ordered uids (models.sorted_uids), so the
unique indexes take each batch in order and the uid index grows at its end.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func, select

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.models import Subscriber
from mailer.people.importreader import CHILD_MIN_BYTES, batches_in_child, batches_in_thread
from mailer.people.importwriter import BatchWriter, unit
from mailer.people.lists import get_list
from mailer.people.subscriptions import email_hasher

BATCH = 20000
SHOWN_REJECTS = 10
SQLITE_CACHE_KIB = 65536


@dataclass
class ImportReport:
    """What an import did (or, with dry_run, would do)."""

    path: Path
    list_slug: str
    dry_run: bool = False
    rows: int = 0
    new_subscribers: int = 0
    existing_subscribers: int = 0
    updated_subscribers: int = 0
    duplicates_in_file: int = 0
    subscribed: int = 0
    confirmed: int = 0
    already_subscribed: int = 0
    kept_unsubscribed: int = 0
    suppressed: int = 0
    export_suppressed: int = 0        # rows another tool's export says must not be mailed
    suppressions_added: int = 0
    subscriptions_ended: int = 0
    tags_normalised: int = 0
    source: str = ""                  # the tool whose export this is (mailer.people.importformats), or ""
    rejected: int = 0
    rejects_path: Path | None = None
    first_rejects: list[tuple[int, str]] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.rows - self.rejected


class _Rejects:
    """The reject report (line, reason), written to a temp file and moved in place at the end."""

    def __init__(self, report: ImportReport, path: Path | None) -> None:
        self.report, self.path = report, path
        self._file: Any = None
        self._writer: Any = None
        if path is not None:  # an unwritable path is refused before any row is read or written
            if path.is_dir():
                raise InputError(f"{path}: is a folder; --rejects names the file to write")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(path.with_suffix(".tmp"), "w", encoding="utf-8", newline="")
            except OSError as exc:
                raise InputError(f"{path}: cannot write the rejects file: {exc.strerror or exc}") from None

    def add(self, line: int, reason: str) -> None:
        self.report.rejected += 1
        if len(self.report.first_rejects) < SHOWN_REJECTS:
            self.report.first_rejects.append((line, reason))
        if self.path is None:
            return
        if self._writer is None:
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "reason"])
        self._writer.writerow([line, reason])

    def close(self) -> None:
        if self.path is None:
            return
        self._file.close()
        if self._writer is not None:
            os.replace(self.path.with_suffix(".tmp"), self.path)
            self.report.rejects_path = self.path
            return
        self.path.with_suffix(".tmp").unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)  # a report of an earlier run would mislead


def default_rejects_path(settings: Settings, path: Path) -> Path:
    """subscribers/<name>-rejects.csv (git-ignored)."""
    return settings.path("subscribers") / f"{path.stem}-rejects.csv"


def import_csv(db: Database, settings: Settings, path: Path, list_slug: str, *, confirmed: bool = False,
               dry_run: bool = False, rejects_path: Path | None = None,
               progress: Callable[[int], None] | None = None, batch_size: int = BATCH,
               child_min_bytes: int = CHILD_MIN_BYTES, source: str | None = None) -> ImportReport:
    """Import *path* into *list_slug*; see the module docstring. Raises InputError for an unusable file.

    Files of *child_min_bytes* and more are read by a child process (see mailer.people.importreader).
    *source* ("mailchimp", "substack", "listmonk") reads the file as that tool's export; by default
    its header tells (mailer.people.importformats).
    """
    report = ImportReport(path=path, list_slug=list_slug, dry_run=dry_run)
    hash_key = settings.hash_key
    email_hasher(hash_key)   # a missing key is one clear error before anything is read
    try:
        f = open(path, "rb", buffering=64 * 1024)
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None
    with f, db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":  # room for the unique indexes: 3x faster, still bounded
            conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            conn.exec_driver_sql("PRAGMA temp_store=MEMORY")  # WAL + synchronous=NORMAL stay (db.py)
            conn.commit()
        outer = conn.begin() if dry_run else None
        with unit(conn, dry_run):
            mlist = get_list(conn, list_slug)
            start_id = conn.scalar(select(func.coalesce(func.max(Subscriber.id), 0))) or 0
        rejects = _Rejects(report, None if dry_run else (rejects_path or default_rejects_path(settings, path)))
        writer = BatchWriter(conn, mlist, confirmed, start_id, report, f"import:{path.name}"[:100])
        if os.fstat(f.fileno()).st_size >= child_min_bytes:
            batches = batches_in_child(path, hash_key, batch_size, source)
        else:
            batches = batches_in_thread(path, f, hash_key, batch_size, source)
        try:
            for batch in batches:  # InputError for the header comes before any write
                report.rows += batch.read
                report.source = report.source or batch.source
                report.duplicates_in_file += batch.duplicates
                for line, reason in batch.rejects:
                    rejects.add(line, reason)
                if batch.rows:
                    writer.apply(batch)
                if progress:
                    progress(batch.position)
        finally:
            batches.close()  # stops and joins the reader before the rejects file is closed
            rejects.close()
            if outer is not None:
                outer.rollback()
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA cache_size=-2000")
                conn.exec_driver_sql("PRAGMA temp_store=DEFAULT")
    return report
