"""The keys in force against the ones the database was set up with: refuse a stranger's keys.

The database keeps, per kind of key, a random salt and a keyed hash of each key
(``HMAC-SHA256(key, salt)``, truncated): never a key. Every command that opens the
database, and the web app, calls `check_keys` first:

- no fingerprint yet: the keys in force are recorded (first use, `mailer init`);
- the hash key differs, or a key the database knows is not set at all: refused;
- signing keys: accepted while one known key is still listed (a rotation: a new key
  first, old ones kept), and the new set is recorded; none known: refused.

`accept_keys` records the keys in force whatever was there (`mailer keys accept`, after
a loss). The floor: imports config, db, models and errors.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from mailer.config import Settings
from mailer.db import Database
from mailer.errors import ConfigError
from mailer.models import KeyFingerprint

HASH, SIGNING = "hash_key", "secret_keys"
ENV = {HASH: "MAILER_HASH_KEY", SIGNING: "MAILER_SECRET_KEYS"}
FIX = ("restore secrets.toml from your backup (or set the key that was in use), "
       "or run `mailer keys accept` to make the keys in force the database's keys")


class KeyMismatch(ConfigError):
    """The keys in force are not the database's."""


@dataclass(frozen=True)
class KeyState:
    """One kind of key: what the database remembers and how the keys in force compare."""

    name: str
    recorded: int        # keys the database knows (0: none recorded)
    given: int           # keys in force
    known: int           # keys in force the database knows


def fingerprint(key: str, salt: str) -> str:
    return hmac.new(key.encode(), b"mailer.keyring.v1:" + salt.encode(), hashlib.sha256).hexdigest()[:32]


def _keys(settings: Settings) -> dict[str, tuple[str, ...]]:
    return {HASH: (settings.hash_key,) if settings.hash_key else (), SIGNING: tuple(settings.secret_keys)}


def _compare(row: KeyFingerprint | None, name: str, keys: tuple[str, ...]) -> KeyState:
    if row is None:
        return KeyState(name, 0, len(keys), 0)
    recorded = [f for f in row.fingerprints.split(",") if f]
    known = sum(1 for k in keys if fingerprint(k, row.salt) in recorded)
    return KeyState(name, len(recorded), len(keys), known)


def key_states(db: Database, settings: Settings) -> list[KeyState]:
    """How the keys in force compare with the database's, per kind."""
    with db.session() as session:
        rows = {r.name: r for r in session.scalars(select(KeyFingerprint))}
    return [_compare(rows.get(name), name, keys) for name, keys in _keys(settings).items()]


def _refusal(state: KeyState) -> str | None:
    env = ENV[state.name]
    if state.recorded == 0:
        return None
    if state.given == 0:
        return f"{state.name}: none set ({env} or secrets.toml), but this database was set up with one: {FIX}"
    if state.name == HASH and state.known == 0:
        return f"{env} is not the hash key this database was set up with: {FIX}"
    if state.known == 0:
        return (f"{env}: none of these signing keys is one this database knows (to rotate, put the new "
                f"key first and keep an old one listed): {FIX}")
    return None


def _record(session, name: str, keys: tuple[str, ...], row: KeyFingerprint | None) -> bool:  # type: ignore[no-untyped-def]
    """Store the fingerprints of *keys* under *name*; True when something changed."""
    salt = row.salt if row is not None else os.urandom(16).hex()
    prints = ",".join(fingerprint(k, salt) for k in keys)
    if row is None:
        session.add(KeyFingerprint(name=name, salt=salt, fingerprints=prints))
    elif row.fingerprints != prints:
        row.fingerprints = prints
    else:
        return False
    return True


def _newer(row: KeyFingerprint | None, keys: tuple[str, ...]) -> bool:
    """Whether *keys* should replace the recorded set: they hold its newest key, or a new key comes
    first. A process still on an older set (it lacks the newest key) is accepted but not recorded,
    so it cannot bring back a key that a rotation has since dropped."""
    if row is None:
        return True
    recorded = row.fingerprints.split(",")
    mine = [fingerprint(k, row.salt) for k in keys]
    return recorded[0] in mine or mine[0] not in recorded


def check_keys(db: Database, settings: Settings) -> None:
    """Refuse keys that are not the database's (KeyMismatch, one line); record first use and rotations.

    Recording is best effort: a read-only database still gets the comparison.
    """
    try:
        with db.sessions() as session:
            rows = {r.name: r for r in session.scalars(select(KeyFingerprint))}
            changed = False
            for name, keys in _keys(settings).items():
                row = rows.get(name)
                problem = _refusal(_compare(row, name, keys))
                if problem:
                    raise KeyMismatch(problem)
                if keys and _newer(row, keys):
                    changed = _record(session, name, keys, row) or changed
            if changed:
                try:
                    session.commit()
                except OperationalError:            # read-only: nothing recorded this time
                    session.rollback()
    except (OperationalError, ProgrammingError) as exc:
        if "key_fingerprint" in str(exc.orig):      # a database not upgraded yet: `mailer db upgrade`
            return
        raise
    except IntegrityError:                          # another process recorded them first: compare with theirs
        check_keys(db, settings)


def accept_keys(db: Database, settings: Settings) -> list[KeyState]:
    """Make the keys in force the database's (after a loss); returns how they compared before."""
    states = key_states(db, settings)
    with db.session() as session:
        rows = {r.name: r for r in session.scalars(select(KeyFingerprint))}
        for name, keys in _keys(settings).items():
            if keys:
                _record(session, name, keys, rows.get(name))
            elif name in rows:
                session.delete(rows[name])
    return states
