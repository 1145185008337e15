"""Plain parameterised SQL for bulk paths, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from mailer.models import Subscriber


class BulkSQL:
    """Plain parameterised SQL for the hot path: SQLAlchemy's per-row bind processing costs
    more than the database itself here. Values are converted once per batch by the models'
    own column types; table and column names come from the models.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn, dialect = conn, conn.dialect
        self.pg = dialect.name == "postgresql"
        self.sqlite = dialect.name == "sqlite"
        self.ph = "%s" if self.pg else "?"
        column_type = Subscriber.__table__.c.created_at.type.dialect_impl(dialect)
        self._ts = column_type.bind_processor(dialect) or (lambda v: v)

    def ts(self, value: datetime) -> Any:
        return self._ts(value)

    def utc_text_value(self, text: str) -> Any:
        """The parameter for a UTC time written as SQLite stores it ("2021-03-04 10:11:12.000000",
        mailer.people.importformats.utc_text): as is for SQLite, with its zone for PostgreSQL."""
        return text if self.sqlite else text + "+00:00"

    def json_ph(self) -> str:
        return "CAST(%s AS JSON)" if self.pg else "?"

    @staticmethod
    def json_load(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else (json.loads(value) if value else {})

    def placeholders(self, n: int) -> str:
        return ", ".join([self.ph] * n)

    def insert(self, table: Any, columns: list[str], rows: list[tuple[Any, ...]], conflict: str = "",
               json_cols: tuple[str, ...] = ()) -> int:
        """executemany of one INSERT; returns the number of rows inserted (conflicts skipped)."""
        marks = ", ".join(self.json_ph() if c in json_cols else self.ph for c in columns)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})"
        if conflict:
            sql += f" ON CONFLICT ({conflict}) DO NOTHING"
        return self.conn.exec_driver_sql(sql, rows).rowcount

    def select_in(self, sql: str, values: list[Any], *params: Any) -> list[Any]:
        """Run *sql* whose last condition is ``IN ({in})`` over *values*, after *params*."""
        return self.conn.exec_driver_sql(sql.format(ph=self.ph, **{"in": self.placeholders(len(values))}),
                                         (*params, *values)).all()
