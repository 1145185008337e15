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


def test_every_migration_keeps_the_rows_of_every_table_up_and_down(db_url):
    """SQLite alters a table by copying it: with foreign keys on, dropping the old copy cascaded and
    deleted every subscription of a list (0006 and 0008 did). Rows written at 0004 survive each step
    up to head and back down, on both databases."""
    from alembic.script import ScriptDirectory
    from sqlalchemy import MetaData, Table, func, select

    from mailer.db import alembic_config

    database = Database(db_url)
    try:
        database.upgrade("0004")
        meta = MetaData()
        t = {name: Table(name, meta, autoload_with=database.engine)
             for name in ("mailing_list", "subscriber", "subscription", "consent")}
        with database.engine.begin() as conn:
            lid = conn.execute(t["mailing_list"].insert().values(
                slug="news", name="News", description="", opt_in="double", created_at=func.now())).inserted_primary_key[0]
            for i in range(3):
                sid = conn.execute(t["subscriber"].insert().values(
                    uid=f"u{i}", email=f"p{i}@example.org", email_key=f"p{i}@example.org", name="", attributes={},
                    created_at=func.now(), updated_at=func.now())).inserted_primary_key[0]
                conn.execute(t["subscription"].insert().values(
                    subscriber_id=sid, list_id=lid, status="confirmed", reason="admin", created_at=func.now(),
                    status_at=func.now(), confirmed_at=func.now()))
                conn.execute(t["consent"].insert().values(
                    subscriber_id=sid, list_id=lid, email=f"p{i}@example.org", source="admin", form_id="",
                    ip="", user_agent="", text_version="", text="", confirmed_ip="", at=func.now()))

        def counts() -> dict[str, int]:
            with database.engine.connect() as conn:
                return {name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                        for name, table in t.items()}

        before = counts()
        assert before == {"mailing_list": 1, "subscriber": 3, "subscription": 3, "consent": 3}
        script = ScriptDirectory.from_config(alembic_config(db_url))
        revisions = [r.revision for r in reversed(list(script.walk_revisions("0004", "heads")))][1:]
        for revision in revisions:
            database.upgrade(revision)
            assert counts() == before, f"after upgrade to {revision}"
        for revision in reversed(["0004", *revisions[:-1]]):
            database.downgrade(revision)
            assert counts() == before, f"after downgrade to {revision}"
    finally:
        database.dispose()
