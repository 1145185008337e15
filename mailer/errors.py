"""Errors that reach the user as one clear line."""

from __future__ import annotations


class MailerError(Exception):
    """Base for every error the CLI prints as one line and exits non-zero on."""

    exit_code = 1


class ConfigError(MailerError):
    """A setting is missing or wrong; the message names it."""

    exit_code = 2


class InputError(MailerError):
    """A file, row, address or argument given by the user is wrong."""

    exit_code = 2


class ComposeError(InputError):
    """An issue folder, report or template cannot be composed."""


class DeliveryError(MailerError):
    """The delivery backend cannot work at all (unreachable, bad credentials, TLS)."""

    exit_code = 3


class MailboxError(MailerError):
    """A bounce mailbox cannot be reached or read (unreachable, refused password, TLS, no such folder)."""

    exit_code = 3


class DatabaseError(MailerError):
    """The database failed under a command (read-only, disk full, I/O error, gone, locked too long)."""

    exit_code = 3


def database_error(exc: BaseException) -> DatabaseError | None:
    """*exc* as one line when it is a database driver's error (through SQLAlchemy), else None.

    Looked up without importing SQLAlchemy, so that commands that never touch the
    database don't pay for it.
    """
    import sys

    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig if exc.orig is not None else exc
    elif _driver_error(exc):          # the ledger's hot path writes through the driver's own cursor
        orig = exc
    else:
        return None
    detail = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    return DatabaseError(f"database error: {detail}")


def _driver_error(exc: BaseException) -> bool:
    """*exc* is an error of a database driver already loaded (sqlite3, psycopg)."""
    import sys

    for module, name in (("sqlite3", "Error"), ("psycopg", "Error")):
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False
