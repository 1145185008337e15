"""One thread writes the sign-up intake rows: the INSERTs of many requests in one transaction.

A request hands its row to `IntakeWriter.store` and waits for the answer. The
writer thread takes every row waiting, runs one pre-compiled INSERT per row on
a plain DBAPI connection from the pool and commits them together (group
commit), then answers each request. While it commits, the next rows pile up,
so the busier the app, the more rows share a commit; a lone row is committed
at once. On SQLite it holds the process's write gate (`mailer.signups.writegate`)
for the inserts and the commit only. The thread stops when idle for a while
and starts again with the next row.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Mapping

from sqlalchemy import Engine
from sqlalchemy.sql import Insert

log = logging.getLogger(__name__)
MAX_BATCH = 200
IDLE_S = 30.0
WAIT_S = 30.0
RETRY_S = 0.0005
BUSY_TIMEOUT_MS = 30000   # what mailer.db sets on every SQLite connection


class _Prepared:
    """A statement compiled once for the engine's driver, with its parameters' converters."""

    def __init__(self, engine: Engine, statement: Insert) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.names = list(compiled.positiontup or []) if compiled.positional else list(compiled.binds)
        self.positional = compiled.positional
        self.converters: list[tuple[str, Callable[[Any], Any] | None]] = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in self.names]

    def params(self, values: Mapping[str, Any]) -> Any:
        converted = [(name, convert(values[name]) if convert else values[name]) for name, convert in self.converters]
        return [value for _, value in converted] if self.positional else dict(converted)


class IntakeWriter:
    """Stores rows with one INSERT statement (which may match no row) through one writer thread."""

    def __init__(self, engine: Engine, statement: Insert) -> None:
        self.engine = engine
        self._prepared = _Prepared(engine, statement)
        self._returning = bool(statement._returning)  # an INSERT ... SELECT ... RETURNING (no rowcount)
        self._queue: queue.SimpleQueue[tuple[Any, Future[bool]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def store(self, values: Mapping[str, Any]) -> bool:
        """Insert one row, committed when this returns; False when the statement matched nothing."""
        done: Future[bool] = Future()
        self._queue.put((self._prepared.params(values), done))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mailer-intake-writer", daemon=True)
                self._thread.start()
        return done.result(WAIT_S)

    def _run(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=IDLE_S)]
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)

    def _write(self, batch: list[tuple[Any, Future[bool]]]) -> None:
        try:
            stored = self._insert([params for params, _ in batch])
        except Exception as exc:
            if len(batch) > 1:   # one bad row must not fail the others: each on its own
                for item in batch:
                    self._write([item])
                return
            log.warning("sign-up intake: could not store a row: %s", exc)
            batch[0][1].set_exception(exc)
            return
        for (_, done), ok in zip(batch, stored):
            done.set_result(ok)

    def _insert(self, rows: list[Any]) -> list[bool]:
        gate = getattr(self.engine, "_mailer_write_gate", None) or contextlib.nullcontext()
        sqlite = self.engine.dialect.name == "sqlite"
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            if sqlite:
                # SQLite's own busy handler sleeps in steps of up to 100 ms while another process
                # (`mailer worker`) writes; retrying every half millisecond keeps the wait as short
                # as the other writer's transaction
                cursor.execute("PRAGMA busy_timeout = 0")
            deadline = time.monotonic() + WAIT_S
            try:
                while True:
                    try:
                        with gate:
                            return self._insert_once(conn, cursor, rows)
                    except sqlite3.OperationalError as exc:
                        if not sqlite or "locked" not in str(exc) or time.monotonic() > deadline:
                            raise
                    time.sleep(RETRY_S)
            finally:
                if sqlite:
                    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                cursor.close()
        finally:
            conn.close()

    def _insert_once(self, conn: Any, cursor: Any, rows: list[Any]) -> list[bool]:
        stored = []
        try:
            for params in rows:
                cursor.execute(self._prepared.sql, params)
                stored.append(cursor.fetchone() is not None if self._returning else cursor.rowcount == 1)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return stored
