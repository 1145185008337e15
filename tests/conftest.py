"""Shared fixtures: settings in a temp folder, a database on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from mailer.config import Settings
from mailer.db import Database
from tests import pgserver
from tests.helpers import TEST_HASH_KEY, TEST_SECRET_KEYS

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts from an environment with no MAILER_* setting of the developer's."""
    for key in list(os.environ):
        if key.startswith("MAILER_"):
            monkeypatch.delenv(key)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder: a copy of the repo's templates and example issue."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copytree(REPO / "templates", root / "templates")
    shutil.copytree(REPO / "issues" / "example", root / "issues" / "example")
    (root / "subscribers").mkdir()
    return root


@pytest.fixture
def settings(project: Path) -> Settings:
    """Settings rooted in the temp project, with test secrets and a SQLite database."""
    return Settings(
        root=project,
        database_url="sqlite:///subscribers/test.db",
        secret_keys=TEST_SECRET_KEYS,
        hash_key=TEST_HASH_KEY,
        base_url="https://news.example.org",
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[pgserver.PostgresServer]:
    """One real PostgreSQL server for the whole test session."""
    if not pgserver.available():
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed")
    server = pgserver.PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, settings: Settings) -> str:
    """A fresh, empty database URL: SQLite in the temp project, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return settings.resolved_database_url
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def db(db_url: str, settings: Settings) -> Iterator[Database]:
    """A migrated database (SQLite and PostgreSQL): tests using it run on both."""
    database = Database(db_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def db_settings(settings: Settings, db: Database) -> Settings:
    """Settings pointing at the `db` fixture's database."""
    return settings.replace(database_url=db.url)
