"""One SQLite writer at a time inside the process, queued on a lock instead of SQLite's busy handler.

SQLite lets one connection write at a time. When the web app's threads race
for that, the losers sleep in SQLite's busy handler with growing back-offs
(1, 2, 5 ... 100 ms), which wrecks the tail latency long before the CPU is
busy. `gate_sqlite_writes` hooks the engine so that a connection takes a
process-wide lock before its first INSERT/UPDATE/DELETE and gives it back when
its transaction ends: waiting threads are woken the moment the writer
commits (or, for a statement run in AUTOCOMMIT mode, the moment it returns).
Other processes on the same file still meet the busy handler.
PostgreSQL engines are left alone.
"""

from __future__ import annotations

import threading

from sqlalchemy import Engine, event

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_HELD = "mailer_write_gate_held"
WAIT_S = 30.0


def gate_sqlite_writes(engine: Engine) -> None:
    """Install the write gate on a SQLite *engine* (once; no-op for other databases)."""
    if engine.dialect.name != "sqlite" or getattr(engine, "_mailer_write_gate", None) is not None:
        return
    gate = threading.Lock()
    engine._mailer_write_gate = gate  # type: ignore[attr-defined]

    def acquire(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if not conn.info.get(_HELD) and statement.lstrip()[:7].upper().startswith(_WRITES):
            # bounded: a thread writing on two connections at once falls back to SQLite's own wait
            if gate.acquire(timeout=WAIT_S):
                conn.info[_HELD] = True

    def release(conn) -> None:  # type: ignore[no-untyped-def]
        if conn.info.pop(_HELD, False):
            gate.release()

    def release_after_autocommit(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        # a statement run outside a transaction (AUTOCOMMIT) has committed when it returns
        if conn.info.get(_HELD) and not conn.connection.dbapi_connection.in_transaction:
            release(conn)

    def release_on_checkin(dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        if record.info.pop(_HELD, False):
            gate.release()

    event.listen(engine, "before_cursor_execute", acquire)
    event.listen(engine, "after_cursor_execute", release_after_autocommit)
    event.listen(engine, "commit", release)
    event.listen(engine, "rollback", release)
    event.listen(engine.pool, "checkin", release_on_checkin)
