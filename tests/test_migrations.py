"""Migrations: empty -> head -> base -> head on SQLite and PostgreSQL; models and migrations agree."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from mailer.db import Database
from mailer.models import Base


def test_empty_to_head_to_base_and_back(db_url):
    database = Database(db_url)
    try:
        assert not inspect(database.engine).get_table_names()
        database.upgrade()
        assert database.is_current()
        assert set(Base.metadata.tables) <= set(inspect(database.engine).get_table_names())
        database.downgrade("base")
        assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}
        assert not database.is_current()
        database.upgrade()
        assert database.is_current()
        database.require_schema()
    finally:
        database.dispose()


def test_models_and_migrations_agree(db):
    """Autogenerate against a migrated database finds nothing to add: no model change lacks a migration."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []
