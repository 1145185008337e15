"""Settings from mailer.toml plus MAILER_* environment variables.

This is the only module that reads the environment. Every setting has a
dotted name (``smtp.host``) used in the TOML file, and an environment name
(``MAILER_SMTP_HOST``) that overrides it. Secrets (``smtp.password``,
``secret_keys``, ``hash_key``, ``bounces.password``, ``submissions.password``) are refused in the TOML file: they come from the secrets file
(``secrets.toml``, written by `mailer init`, read by mailer.secretfile), overridden by the
environment or by a file named by ``MAILER_<NAME>_FILE``. Each value is
checked (and domains IDNA-encoded) by mailer.settingrules as it is read.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from mailer.errors import ConfigError
from mailer.secretfile import read_secrets
from mailer.settingrules import check_settings, check_value

CONFIG_FILE = "mailer.toml"
SECRET_FIELDS = frozenset({"smtp_password", "secret_keys", "hash_key", "bounces_password", "submissions_password"})


@dataclass(frozen=True)
class Settings:
    """Every setting of mailer, flat; TOML sections map to name prefixes."""

    # [group] who sends
    group_name: str = "Riverside Solidarity Network"
    group_address: str = "Riverside Community Hall, 12 Mill Lane, Riverside RS1 2AB"
    group_website: str = "https://example.org"
    language: str = "en"
    # the salutation of every issue: `greeting` with {name}, or `greeting_nameless` for a reader without one
    greeting: str = "Dear {name},"
    greeting_nameless: str = "Hello,"
    # "ltr" or "rtl"; empty: from `language` (RIGHT_TO_LEFT)
    direction: str = ""
    from_name: str = "Riverside Solidarity Network"
    from_email: str = "news@example.org"
    reply_to: str = ""
    transactional_from_email: str = ""
    # where things live
    database_url: str = "sqlite:///subscribers/mailer.db"
    issues_dir: str = "issues"
    templates_path: tuple[str, ...] = ("templates",)
    build_dir: str = "build"
    outbox_dir: str = "outbox"
    media_dir: str = "media"        # images of sent and previewed issues, served at /media/
    # the keys and passwords (mode 0600, git-ignored; `mailer init` writes it)
    secrets_file: str = "secrets.toml"
    # public web address of `mailer serve`, used in every link of every mail
    base_url: str = "http://127.0.0.1:8025"
    # message headers
    sending_domain: str = "example.org"
    bounce_address: str = "bounces@example.org"
    list_id_domain: str = "lists.example.org"
    feedback_id_sender: str = "mailer"
    unsubscribe_mailto: str = ""
    # delivery
    backend: str = "file"
    dev_redirect: str = ""
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout: float = 30.0
    # RFC 5321 4.5.3.2.6: a server may take 10 minutes to answer the end of the data
    smtp_data_timeout: float = 600.0
    # how long a send keeps reopening refused or busy connections before it pauses
    smtp_reconnect_seconds: float = 300.0
    smtp_connections: int = 2
    smtp_ca_file: str = ""
    rate_per_second: float = 0.0
    rate_per_hour: float = 0.0
    rate_per_domain_per_second: float = 0.0
    retry_max_age_hours: float = 72.0
    retry_base_seconds: float = 60.0
    batch_size: int = 100
    max_send_errors: int = 1000
    # soft bounces suppress on this many distinct days, within the window or on the last this-many issues in a row
    bounce_soft_limit: int = 3
    bounce_soft_window_days: float = 14.0
    # the mailbox bounce reports arrive in: a Maildir, mbox or folder path, or an imap(s)/pop3(s) URL
    bounces_mailbox: str = ""
    bounces_password: str = ""
    # how often `mailer worker` polls bounces.mailbox
    bounces_poll_minutes: float = 10.0
    # IMAP: the folder processed reports are moved to ("": flagged \Seen and left in place)
    bounces_done_folder: str = ""
    # CA certificates to verify the mailbox server with ("": the system's)
    bounces_ca_file: str = ""
    # reports by mail (`mailer intake`): the mailbox members mail reports to, read like bounces.mailbox
    submissions_mailbox: str = ""
    submissions_password: str = ""
    submissions_poll_minutes: float = 10.0
    submissions_done_folder: str = ""
    submissions_ca_file: str = ""
    # who may submit: these addresses, and the confirmed members of these lists
    submissions_senders: tuple[str, ...] = ()
    submissions_members_of: tuple[str, ...] = ()
    # the digest folder reports are filed for (held in its inbox/held/ until an editor approves)
    submissions_digest: str = ""
    # your own mail server's authserv-id: its Authentication-Results must show dkim or dmarc pass
    submissions_authserv_id: str = ""
    # answer each filed report with an RFC 3834 auto-reply
    submissions_reply: bool = True
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_private_key_file: str = ""
    # signing keys for links in mails: newest first; old ones still verify
    secret_keys: tuple[str, ...] = ()
    # keys the hashes of suppressed addresses; never rotate it
    hash_key: str = ""
    confirm_max_age_hours: float = 72.0
    # scheduling
    schedule_grace_minutes: float = 60.0
    # the zone `mailer schedule --at` times are in when --tz is not given
    schedule_timezone: str = "UTC"
    # web
    web_host: str = "127.0.0.1"
    web_port: int = 8025
    web_cors_origins: tuple[str, ...] = ()
    web_embed_origins: tuple[str, ...] = ()
    web_rate_per_ip_per_hour: int = 30
    web_confirm_cooldown_minutes: float = 60.0
    web_confirm_max_per_day: int = 3
    web_trust_proxy: bool = False
    # false: the web process only accepts sign-ups; `mailer worker` applies them and sends their mails
    web_background_thread: bool = True
    consent_text: str = (
        "I agree to receive this newsletter by email. I can unsubscribe at any time "
        "with the link in every message."
    )
    consent_version: str = "2026-11"

    # where the settings were read from (not a setting)
    root: Path = field(default=Path("."), compare=False)

    def path(self, value: str) -> Path:
        """Resolve a configured path relative to the project root."""
        p = Path(value)
        return p if p.is_absolute() else self.root / p

    @property
    def resolved_database_url(self) -> str:
        """The database URL with a relative SQLite path made absolute (a ``file:`` URI is left as given)."""
        url = self.database_url
        prefix = "sqlite:///"
        if (url.startswith(prefix) and not url.startswith((prefix + "/", prefix + "file:"))
                and ":memory:" not in url):
            return prefix + str(self.path(url[len(prefix):]))
        return url

    @property
    def text_direction(self) -> str:
        """`dir` of the HTML: the `direction` setting, else rtl for a right-to-left language."""
        return self.direction or text_direction(self.language)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


# languages written right to left (ISO 639 codes), the first subtag of `language`
RIGHT_TO_LEFT = frozenset({"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ks", "nqo", "ps", "sd",
                           "syr", "ug", "ur", "yi"})


def text_direction(language: str) -> str:
    """"rtl" for a language written right to left ("ar", "he-IL", "ku-Arab"), else "ltr"."""
    tag = language.lower()
    # a script subtag decides when given: "az-Arab" is right to left, "sd-Deva" is not
    parts = tag.split("-")
    script = next((p for p in parts[1:] if len(p) == 4 and p.isalpha()), "")
    if script:
        return "rtl" if script in ("arab", "hebr", "syrc", "thaa", "nkoo", "adlm", "rohg") else "ltr"
    return "rtl" if parts[0] in RIGHT_TO_LEFT else "ltr"


SETTING_NAMES = tuple(f.name for f in fields(Settings) if f.name != "root")


def dotted_name(name: str) -> str:
    """``smtp_host`` -> ``smtp.host``: how a setting is spelled in mailer.toml."""
    for section in ("smtp", "rate", "dkim", "web", "schedule", "bounces", "submissions"):
        if name.startswith(section + "_"):
            return f"{section}.{name[len(section) + 1:]}"
    if name.startswith("group_"):
        return f"group.{name[6:]}"
    return name


def env_name(name: str) -> str:
    return "MAILER_" + name.upper()


_BY_DOTTED = {dotted_name(n): n for n in SETTING_NAMES}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _coerce(name: str, value: Any, where: str) -> Any:
    default = getattr(Settings, name, None)
    ftype = type(default) if default is not None else str
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off", ""):
                return False
            raise ValueError("expected true or false")
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = tuple(v.strip() for v in value.split(",") if v.strip())
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                value = tuple(value)
            else:
                raise ValueError("expected a list of strings")
            return check_value(name, dotted_name(name), value)
        if isinstance(default, (int, float)):
            if isinstance(value, bool):
                raise ValueError("expected a number")
            if ftype is int and isinstance(value, float):
                raise ValueError("expected a whole number")
            value = ftype(value)
        elif not isinstance(value, str):
            raise ValueError("expected a string")
        return check_value(name, dotted_name(name), value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"{where}: setting {dotted_name(name)!r}: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_settings(
    root: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | str | None = None,
) -> Settings:
    """Read mailer.toml (if any) under *root*, then apply MAILER_* overrides."""
    environ = os.environ if environ is None else environ
    root = Path(root or environ.get("MAILER_ROOT") or ".").resolve()
    path = Path(config_file or environ.get("MAILER_CONFIG") or root / CONFIG_FILE)
    values: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        for dotted, value in _flatten(data).items():
            name = _BY_DOTTED.get(dotted)
            if name is None:
                raise ConfigError(f"{path}: unknown setting {dotted!r}")
            if name in SECRET_FIELDS:
                raise ConfigError(
                    f"{path}: {dotted!r} is a secret; set {env_name(name)} in the environment or put it "
                    f"in {Settings.secrets_file} (mode 0600) instead"
                )
            values[name] = _coerce(name, value, str(path))
    elif config_file or environ.get("MAILER_CONFIG"):
        raise ConfigError(f"{path}: config file not found")
    for name in SETTING_NAMES:
        env = env_name(name)
        if env in environ:
            values[name] = _coerce(name, environ[env], env)
        elif name in SECRET_FIELDS and env + "_FILE" in environ:
            secret_path = Path(environ[env + "_FILE"])
            try:
                values[name] = _coerce(name, secret_path.read_text(encoding="utf-8").strip(), env + "_FILE")
            except OSError as exc:
                raise ConfigError(f"{env}_FILE: cannot read {secret_path}: {exc.strerror}") from None
    secrets_path = Path(values.get("secrets_file", Settings.secrets_file))
    secrets_path = secrets_path if secrets_path.is_absolute() else root / secrets_path
    names = {dotted_name(n): n for n in SECRET_FIELDS}
    for name, value in read_secrets(secrets_path, names, lambda n: n in values).items():
        values.setdefault(name, _coerce(name, value, str(secrets_path)))
    settings = Settings(root=root, **values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Check the rules between settings and on required values (each value was checked when read)."""
    check_settings(lambda name: getattr(settings, name))


def signing_keys(settings: Settings) -> list[str]:
    """The secret keys, newest first, or a clear error when none is set."""
    if not settings.secret_keys:
        raise ConfigError(
            "no signing key: run `mailer init` (it writes fresh keys to secrets.toml) or set MAILER_SECRET_KEYS"
        )
    return list(settings.secret_keys)
