"""`mailer init`: a commented mailer.toml, a migrated database, and fresh secrets to export."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from mailer.config import CONFIG_FILE, SECRET_FIELDS, SETTING_NAMES, Settings, dotted_name, env_name

HEADER = """\
# mailer.toml: settings of mailer. Every setting is listed with its default, commented out.
# Uncomment and change what you need. Any setting can also be given in the environment as
# MAILER_<NAME> (e.g. MAILER_SMTP_HOST), which wins over this file.
# Secrets (MAILER_SECRET_KEYS, MAILER_HASH_KEY, MAILER_SMTP_PASSWORD) are never read from this
# file: set them in the environment, or in a file outside the repository named by MAILER_<NAME>_FILE.
"""


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
    missing_secrets: dict[str, str]


def init_project(settings: Settings) -> InitResult:
    """Write mailer.toml if absent, create and migrate the database; idempotent."""
    config_path = settings.root / CONFIG_FILE
    written = False
    if not config_path.exists():
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(config_template(), encoding="utf-8")
        written = True
    from mailer.db import Database

    db = Database.from_settings(settings)
    try:
        db.upgrade()
    finally:
        db.dispose()
    missing = {}
    if not settings.secret_keys:
        missing[env_name("secret_keys")] = secrets.token_urlsafe(32)
    if not settings.hash_key:
        missing[env_name("hash_key")] = secrets.token_urlsafe(32)
    return InitResult(config_path, written, settings.database_url, missing)
