"""The secrets file (``secrets.toml``): where `mailer init` keeps the keys, read by every command.

It sits next to mailer.toml (setting ``secrets_file``), is created with mode 0600 and
git-ignored, and holds only secrets (`config.SECRET_FIELDS`)::

    secret_keys = ["newest", "older"]
    hash_key = "..."
    [smtp]
    password = "..."

A file that group or others may read, that names anything but a secret, or that lacks
``secret_keys`` or ``hash_key`` (when the environment does not give them) is refused
with one line naming the file and what to do. The environment (``MAILER_<NAME>`` and
``MAILER_<NAME>_FILE``) still wins over it. The floor: standard library only.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path
from typing import Any, Callable, Mapping

from mailer.errors import ConfigError

REQUIRED = ("secret_keys", "hash_key")
HEADER = """\
# secrets of mailer: the keys that sign links and hash addresses, and passwords.
# Keep this file private (mode 0600), out of git, and in your backups (kept apart from the
# database backups). Never change hash_key. To rotate secret_keys, run `mailer keys rotate` (a new
# key first, the old ones kept). The environment (MAILER_SECRET_KEYS, ...) wins over this file.
"""


def check_mode(path: Path) -> None:
    """Refuse a secrets file that group or others may read or write."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(f"{path}: readable by others (mode {mode:04o}): run `chmod 600 {path}`")


def read_secrets(path: Path, secret_names: Mapping[str, str], given: Callable[[str], bool]) -> dict[str, Any]:
    """The secrets in *path*, by setting name; {} when there is no such file.

    *secret_names* maps each secret's dotted name to its setting name; *given* says whether the
    environment already sets a setting (then the file need not hold it).
    """
    if not path.exists():
        return {}
    try:
        check_mode(path)
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for dotted, value in _flatten(data).items():
        name = secret_names.get(dotted)
        if name is None:
            raise ConfigError(f"{path}: {dotted!r} is not a secret: only "
                              f"{', '.join(sorted(secret_names))} belong here (settings go in mailer.toml)")
        values[name] = value
    for name in REQUIRED:
        if not values.get(name) and not given(name):
            raise ConfigError(f"{path}: no {name!r}: restore this file from your backup, or set "
                              f"MAILER_{name.upper()} (a new key needs `mailer keys accept`)")
    return values


def write_secrets(path: Path, values: Mapping[str, Any], *, replace: bool = False) -> None:
    """Write *values* (secrets, tables for sections) to *path* with mode 0600.

    A new file is never written over an existing one unless *replace*: then the new text goes
    to a temporary file first and takes the old one's place in one rename.
    """
    lines = [HEADER]
    tables = {k: v for k, v in values.items() if isinstance(v, dict)}
    lines += [f"{name} = {_toml(value)}" for name, value in values.items() if name not in tables]
    for table, entries in tables.items():
        lines += ["", f"[{table}]", *(f"{name} = {_toml(value)}" for name, value in entries.items())]
    if "smtp" not in tables:
        lines.append("# [smtp]\n# password = \"\"")
    text = "\n".join(lines) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.with_name(path.name + ".new") if replace else path
    if replace:
        target.unlink(missing_ok=True)          # left by an interrupted rotation
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if replace:
        os.replace(target, path)


def add_signing_key(path: Path, key: str) -> list[str]:
    """Put *key* first in the signing keys of the secrets file *path*, keeping the others; returns them."""
    check_mode(path)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    keys = [key, *data.get("secret_keys", [])]
    write_secrets(path, {**data, "secret_keys": keys}, replace=True)
    return keys


def ignore_in_git(folder: Path, names: list[str]) -> bool:
    """Add *names* to ``folder/.gitignore`` (created if absent) unless listed; True when it changed."""
    path = folder / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    listed = {line.strip() for line in text.splitlines()}
    missing = [n for n in names if n not in listed and f"/{n}" not in listed]
    if not missing:
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    path.write_text(text + "".join(f"{n}\n" for n in missing), encoding="utf-8")
    return True


def _quote(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def _toml(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_quote(str(v)) for v in value) + "]"
    return _quote(str(value))


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
