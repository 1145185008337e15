"""Bulk import of subscribers from CSV: streamed, validated, batched, idempotent.

Each batch of rows is one transaction of a few bulk Core statements (look up
suppressions, subscribers and subscriptions for the whole batch, then insert
with ON CONFLICT DO NOTHING), so an interrupted import leaves whole batches
only and re-running it changes nothing more. Suppressed addresses are never
made sendable (STANDARDS B8): they are counted and left alone, as
`subscriptions.subscribe` does for an admin add.

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
import json
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Connection, func, select

from mailer.people.bulksql import BulkSQL
from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.people.importreader import CHILD_MIN_BYTES, Batch, batches_in_child, batches_in_thread
from mailer.models import (AuditEvent, Consent, ConsentSource, MailingList, Reason, Subscriber, Subscription,
                           SubscriptionStatus, sorted_uids, utcnow)
from mailer.people.subscriptions import GLOBAL, email_hasher

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

    def add(self, line: int, reason: str) -> None:
        self.report.rejected += 1
        if len(self.report.first_rejects) < SHOWN_REJECTS:
            self.report.first_rejects.append((line, reason))
        if self.path is None:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path.with_suffix(".tmp"), "w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "reason"])
        self._writer.writerow([line, reason])

    def close(self) -> None:
        if self.path is None:
            return
        if self._file is not None:
            self._file.close()
            os.replace(self.path.with_suffix(".tmp"), self.path)
            self.report.rejects_path = self.path
        elif self.path.exists():
            self.path.unlink()  # a report of an earlier run would mislead


def default_rejects_path(settings: Settings, path: Path) -> Path:
    """subscribers/<name>-rejects.csv (git-ignored)."""
    return settings.path("subscribers") / f"{path.stem}-rejects.csv"


def import_csv(db: Database, settings: Settings, path: Path, list_slug: str, *, confirmed: bool = False,
               dry_run: bool = False, rejects_path: Path | None = None,
               progress: Callable[[int], None] | None = None, batch_size: int = BATCH,
               child_min_bytes: int = CHILD_MIN_BYTES) -> ImportReport:
    """Import *path* into *list_slug*; see the module docstring. Raises InputError for an unusable file.

    Files of *child_min_bytes* and more are read by a child process (see mailer.people.importreader).
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
        with _unit(conn, dry_run):
            mlist = _list_row(conn, list_slug)
            start_id = conn.scalar(select(func.coalesce(func.max(Subscriber.id), 0))) or 0
        rejects = _Rejects(report, None if dry_run else (rejects_path or default_rejects_path(settings, path)))
        writer = _Batch(conn, mlist, confirmed, start_id, report, f"import:{path.name}"[:100])
        if os.fstat(f.fileno()).st_size >= child_min_bytes:
            batches = batches_in_child(path, hash_key, batch_size)
        else:
            batches = batches_in_thread(path, f, hash_key, batch_size)
        try:
            for batch in batches:  # InputError for the header comes before any write
                report.rows += batch.read
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


def _unit(conn: Connection, dry_run: bool) -> Any:
    """A transaction per unit of work; in a dry run, all of it is in one outer transaction rolled back."""
    return nullcontext() if dry_run else conn.begin()


def _list_row(conn: Connection, slug: str) -> MailingList:
    row = conn.execute(select(MailingList.id, MailingList.slug).where(MailingList.slug == slug)).first()
    if row is None:
        raise InputError(f"unknown list {slug!r} (see `mailer lists`)")
    return MailingList(id=row.id, slug=row.slug)


class _Batch:
    """Applies one batch of valid rows in one transaction."""

    def __init__(self, conn: Connection, mlist: MailingList, confirmed: bool, start_id: int,
                 report: ImportReport, form_id: str) -> None:
        self.conn, self.mlist, self.confirmed = conn, mlist, confirmed
        self.start_id, self.report, self.form_id = start_id, report, form_id
        self.sql = BulkSQL(conn)

    def apply(self, batch: Batch) -> None:
        with _unit(self.conn, self.report.dry_run):
            self._apply(batch)

    def _apply(self, batch: Batch) -> None:
        report = self.report
        rows = {row[2]: row for row in batch.rows}     # key -> (line, email, key, name, attributes, hash)
        for key in self._suppressed(batch):
            if rows.pop(key, None) is not None:
                report.suppressed += 1
        if not rows:
            return
        now = self.sql.ts(utcnow())
        ids = self._merge_existing(rows, now)
        existing = list(ids.values())
        new = [row for key, row in rows.items() if key not in ids]   # still in key order
        span = self._insert_new(new, now, ids) if new else None
        self._subscribe(rows, ids, existing, span, now, (batch.first_line, batch.last_line))

    def _suppressed(self, batch: Batch) -> list[str]:
        """Keys of the batch suppressed for this list or everywhere (STANDARDS B8).

        A suppression list smaller than the batch is read whole (one index scan); a bigger
        one is probed with the batch's hashes.
        """
        hashes = {row[5]: row[2] for row in batch.rows}
        scopes = (GLOBAL, self.mlist.slug)
        ph = self.sql.ph
        found = self.conn.exec_driver_sql(
            f"SELECT email_hash FROM suppression WHERE scope IN ({ph}, {ph}) LIMIT {ph}",
            (*scopes, len(hashes) + 1)).all()
        if len(found) > len(hashes):
            found = self.sql.select_in(
                "SELECT email_hash FROM suppression WHERE scope IN ({ph}, {ph}) AND email_hash IN ({in})",
                list(hashes), *scopes)
        return [hashes[digest] for (digest,) in found if digest in hashes]

    def _insert_new(self, new: list[tuple[Any, ...]], now: Any, ids: dict[str, int]) -> range | None:
        """Insert the new subscribers and add their ids to *ids*; their id range when it is contiguous.

        On SQLite the batch's transaction holds the write lock from the first insert on, so
        when every row went in, they took the ids up to last_insert_rowid() in order.
        """
        inserted = self.sql.insert(
            Subscriber.__table__, ["uid", "email", "email_key", "name", "attributes", "created_at", "updated_at"],
            [(uid, email, key, name, attributes, now, now)
             for uid, (_, email, key, name, attributes, _) in zip(sorted_uids(len(new)), new)],
            conflict="email_key", json_cols=("attributes",))
        self.report.new_subscribers += inserted
        if self.sql.sqlite and inserted == len(new):
            last = self.conn.exec_driver_sql("SELECT last_insert_rowid()").scalar_one()
            span = range(last - len(new) + 1, last + 1)
            ids.update(zip((row[2] for row in new), span))
            return span
        for sid, key in self.sql.select_in("SELECT id, email_key FROM subscriber WHERE email_key IN ({in})",
                                           [row[2] for row in new]):
            ids[key] = sid
        return None

    def _merge_existing(self, rows: dict[str, tuple[Any, ...]], now: Any) -> dict[str, int]:
        ids: dict[str, int] = {}
        changes = []
        for sid, key, name, attributes in self.sql.select_in(
                "SELECT id, email_key, name, attributes FROM subscriber WHERE email_key IN ({in})", list(rows)):
            ids[key] = sid
            if sid > self.start_id:
                self.report.duplicates_in_file += 1
            else:
                self.report.existing_subscribers += 1
            _, _, _, row_name, row_attributes, _ = rows[key]
            old = self.sql.json_load(attributes)
            merged = {**old, **json.loads(row_attributes)}
            new_name = name or row_name
            if merged != old or new_name != name:
                changes.append((new_name, json.dumps(merged), now, sid))
        if changes:
            ph = self.sql.ph
            self.conn.exec_driver_sql(f"UPDATE subscriber SET name = {ph}, attributes = {self.sql.json_ph()}, "
                                      f"updated_at = {ph} WHERE id = {ph}", changes)
            self.report.updated_subscribers += len(changes)
        return ids

    def _subscribe(self, rows: dict[str, tuple[Any, ...]], ids: dict[str, int], existing: list[int],
                   span: range | None, now: Any, lines: tuple[int, int]) -> None:
        """Subscribe each row's subscriber; *existing* are the ids that were there before this batch,
        *span* the contiguous ids of the new ones (their rows are copied by INSERT ... SELECT)."""
        report, list_id, sql = self.report, self.mlist.id, self.sql
        status = {sid: SubscriptionStatus(value) for sid, value in sql.select_in(
            "SELECT subscriber_id, status FROM subscription WHERE list_id = {ph} AND subscriber_id IN ({in})",
            existing, list_id)} if existing else {}
        fresh, upgraded = [], []
        for key, row in rows.items():
            sid = ids[key]
            if span is not None and sid in span:
                continue
            current = status.get(sid)
            if current is None:
                fresh.append((sid, row[1]))
            elif current is SubscriptionStatus.PENDING and self.confirmed:
                upgraded.append((sid, row[1]))
            elif current is SubscriptionStatus.UNSUBSCRIBED:
                report.kept_unsubscribed += 1
            else:
                report.already_subscribed += 1
        fresh.sort()  # ids ascending: the indexes on subscriber_id append
        target = SubscriptionStatus.CONFIRMED if self.confirmed else SubscriptionStatus.PENDING
        confirmed_at = now if self.confirmed else None
        ph = sql.ph
        subscription = [list_id, target.value, Reason.IMPORT.value, now, now, confirmed_at]
        consent = [list_id, now, ConsentSource.IMPORT.value, self.form_id, confirmed_at]
        if span is not None:
            self.conn.exec_driver_sql(
                "INSERT INTO subscription (subscriber_id, list_id, status, reason, created_at, status_at, "
                f"confirmed_at) SELECT id, {ph}, {ph}, {ph}, {ph}, {ph}, {ph} FROM subscriber "
                f"WHERE id BETWEEN {ph} AND {ph} ORDER BY id", (*subscription, span[0], span[-1]))
            self.conn.exec_driver_sql(
                "INSERT INTO consent (subscriber_id, list_id, email, at, source, form_id, ip, user_agent, "
                f"text_version, text, confirmed_at, confirmed_ip) SELECT id, {ph}, email, {ph}, {ph}, {ph}, "
                f"'', '', '', '', {ph}, '' FROM subscriber WHERE id BETWEEN {ph} AND {ph} ORDER BY id",
                (*consent, span[0], span[-1]))
        if fresh:
            sql.insert(Subscription.__table__,
                       ["subscriber_id", "list_id", "status", "reason", "created_at", "status_at", "confirmed_at"],
                       [(sid, *subscription) for sid, _ in fresh], conflict="subscriber_id, list_id")
        if upgraded:
            self.conn.exec_driver_sql(
                f"UPDATE subscription SET status = {ph}, reason = {ph}, status_at = {ph}, confirmed_at = {ph} "
                f"WHERE list_id = {ph} AND subscriber_id = {ph}",
                [(target.value, Reason.IMPORT.value, now, now, list_id, sid) for sid, _ in upgraded])
            report.confirmed += len(upgraded)
        changed = sorted(fresh + upgraded)
        if changed:
            sql.insert(Consent.__table__,
                       ["subscriber_id", "list_id", "at", "source", "form_id", "confirmed_at", "email", "ip",
                        "user_agent", "text_version", "text", "confirmed_ip"],
                       [(sid, *consent, email, "", "", "", "", "") for sid, email in changed])
        subscribed = len(fresh) + (len(span) if span is not None else 0)
        report.subscribed += subscribed
        if not subscribed and not upgraded:
            return
        detail = (f"{self.form_id} lines {lines[0]}-{lines[1]}: {subscribed} subscribed, "
                  f"{len(upgraded)} pending now confirmed")
        sql.insert(AuditEvent.__table__,
                   ["at", "subscriber_id", "list_id", "action", "old_status", "new_status", "reason", "actor",
                    "detail"],
                   [(now, None, list_id, "import", "", target.value, Reason.IMPORT.value, "import", detail)])
