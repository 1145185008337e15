"""Engine and sessions; migrations applied with Alembic."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mailer.config import Settings
from mailer.errors import ConfigError, InputError, MailerError
from mailer.shipped import MIGRATIONS


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for *url*; SQLite gets WAL, foreign keys and a busy timeout.

    Nothing is created here: the folder of a SQLite file is made by `Database.upgrade`
    (`mailer init`, `mailer db upgrade`) only, so a read-only command never leaves one behind.
    """
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"setting 'database_url': {exc}") from None
    except ModuleNotFoundError as exc:
        raise ConfigError(f"setting 'database_url': driver not installed ({exc.name}); "
                          "for PostgreSQL: pip install 'psycopg[binary]'") from None


class Database:
    """One engine and its session factory: pass it around, don't make globals."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> "Database":
        return cls(settings.resolved_database_url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: committed on success, rolled back on error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def is_current(self) -> bool:
        """True when the schema is at the newest migration."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
        return set(current) == set(ScriptDirectory.from_config(alembic_config(self.url)).get_heads())

    def sqlite_file(self) -> Path | None:
        """The file of a SQLite database (None for PostgreSQL or an in-memory one)."""
        if self.dialect != "sqlite":
            return None
        name = self.engine.url.database or ""
        if not name or name == ":memory:" or self.engine.url.query.get("mode") == "memory":
            return None
        return Path(name[len("file:"):].split("?", 1)[0] if name.startswith("file:") else name)

    def require_schema(self) -> None:
        """Fail with one clear line when the database was never initialised (creating nothing)."""
        path = self.sqlite_file()
        if path is not None and not path.exists():
            where = "its folder does not exist" if not path.parent.is_dir() else "the file does not exist"
            raise MailerError(f"database {path}: {where}: run `mailer init` (or `mailer db upgrade`)")
        try:
            if not inspect(self.engine).has_table("subscriber"):
                raise MailerError(f"database {self.engine.url!r} has no tables: run `mailer init` "
                                  "(or `mailer db upgrade`)")
        except OperationalError as exc:
            raise MailerError(f"cannot open database {self.engine.url!r}: {exc.orig}") from None

    def upgrade(self, revision: str = "head") -> None:
        """Migrate up to *revision*, creating the SQLite file's folder when missing."""
        path = self.sqlite_file()
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise MailerError(f"database {path}: cannot create its folder: {exc.strerror}") from None
        self._migrate("upgrade", revision)

    def downgrade(self, revision: str) -> None:
        self._migrate("downgrade", revision)

    def _migrate(self, direction: str, revision: str) -> None:
        """Run alembic's upgrade or downgrade; an unknown revision is one InputError line."""
        from alembic import command
        from alembic.util import CommandError

        cfg = alembic_config(self.url)
        sqlite = self.engine.dialect.name == "sqlite"
        try:
            with self.engine.connect() as conn:
                if sqlite:
                    # SQLite alters a table by copying it and dropping the old one: with foreign
                    # keys on, that drop would cascade (subscriptions deleted with their list). Off
                    # for the migration (it must be said outside a transaction), checked before commit.
                    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
                    conn.commit()
                try:
                    with conn.begin():
                        cfg.attributes["connection"] = conn
                        getattr(command, direction)(cfg, revision)
                        if sqlite:
                            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                            if broken:
                                raise MailerError(f"db {direction} {revision}: {len(broken)} row(s) would break a "
                                                  f"foreign key (first in table {broken[0][0]}); nothing changed")
                finally:
                    if sqlite:
                        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                        conn.commit()
        except CommandError as exc:
            raise InputError(f"db {direction} {revision}: {str(exc).splitlines()[0]}") from None

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg
