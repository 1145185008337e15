"""`mailer init`: a commented mailer.toml, a migrated database, and fresh secrets in secrets.toml."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from mailer.config import CONFIG_FILE, SECRET_FIELDS, SETTING_NAMES, Settings, dotted_name, env_name

HEADER = """\
# mailer.toml: settings of mailer. Every setting is listed with its default, commented out.
# Uncomment and change what you need. Any setting can also be given in the environment as
# MAILER_<NAME> (e.g. MAILER_SMTP_HOST), which wins over this file.
# Secrets (secret_keys, hash_key, smtp.password) are never read from this file: `mailer init`
# writes them to secrets.toml (mode 0600, git-ignored); MAILER_<NAME> or MAILER_<NAME>_FILE win.
"""
# what a project folder keeps out of git
IGNORED = ["subscribers/*.db", "subscribers/*.db-*", "subscribers/*.lock", "build/", "outbox/"]


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def config_template() -> str:
    """Every non-secret setting with its default, commented out, grouped by TOML section."""
    defaults = Settings()
    top: list[str] = []
    sections: dict[str, list[str]] = {}
    for name in SETTING_NAMES:
        if name in SECRET_FIELDS:
            continue
        dotted = dotted_name(name)
        section, _, key = dotted.rpartition(".")
        line = f"# {key} = {_toml(getattr(defaults, name))}   # env {env_name(name)}"
        (sections.setdefault(section, []) if section else top).append(line)
    parts = [HEADER, *top]
    for section, lines in sections.items():
        parts += ["", f"[{section}]", *lines]
    return "\n".join(parts) + "\n"


@dataclass
class InitResult:
    config_path: Path
    config_written: bool
    database_url: str
    secrets_path: Path
    # the secrets written to secrets_path (fresh values, by setting name); empty: none written
    secrets_written: list[str] = field(default_factory=list)
    gitignore_changed: bool = False


def init_project(settings: Settings) -> InitResult:
    """Write mailer.toml and secrets.toml if absent, create and migrate the database; idempotent.

    secrets.toml gets fresh keys for the secrets the environment does not set (none when it sets
    them all); the database then records their fingerprints (mailer.keyring).
    """
    from mailer.db import Database
    from mailer.keyring import check_keys
    from mailer.secretfile import ignore_in_git, write_secrets

    config_path = settings.root / CONFIG_FILE
    written = False
    if not config_path.exists():
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(config_template(), encoding="utf-8")
        written = True
    secrets_path = settings.path(settings.secrets_file)
    db = Database.from_settings(settings)
    fresh: dict[str, object] = {}
    try:
        db.upgrade()
        check_keys(db, settings)            # a database that knows other keys: refused before writing any
        if not secrets_path.exists():
            if not settings.secret_keys:
                fresh["secret_keys"] = (secrets.token_urlsafe(32),)
            if not settings.hash_key:
                fresh["hash_key"] = secrets.token_urlsafe(32)
            if fresh:
                write_secrets(secrets_path, fresh)
                settings = settings.replace(**fresh)
                check_keys(db, settings)
    finally:
        db.dispose()
    root = settings.root.resolve()
    inside = secrets_path.resolve().is_relative_to(root)
    names = ([secrets_path.resolve().relative_to(root).as_posix()] if inside else []) + IGNORED
    ignored = ignore_in_git(root, names)
    return InitResult(config_path, written, settings.database_url, secrets_path, list(fresh), ignored)
