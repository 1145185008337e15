"""What each setting may hold: checked (and normalised) when settings are loaded.

`config.load_settings` applies `check_value` to every value it reads (the file or
the environment) and `check_settings` to the whole, so that `mailer config`
refuses whatever `send` would fail on, and no setting can carry a header
injection (STANDARDS D1): domains are domain names (IDNA: a Unicode name becomes
its A-label), addresses are addresses, names are one line without encoded
words. Every refusal is one ConfigError naming the setting. The floor: imports
the standard library, email_validator and idna only.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable
from urllib.parse import urlsplit

from mailer.errors import ConfigError
from mailer.headers import has_header_trick

_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_MULTILINE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029]")
_LDH_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_SELECTOR_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\Z")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*\Z")
_SENDER_ID = re.compile(r"[A-Za-z0-9._-]{5,15}\Z")

_YEAR_HOURS = 24 * 365.0
# name -> (lowest, highest, lowest allowed itself): numbers outside are refused
NUMBER_RANGES: dict[str, tuple[float, float, bool]] = {
    "smtp_port": (1, 65535, True),
    "web_port": (1, 65535, True),
    "smtp_timeout": (0, 3600, False),
    "smtp_data_timeout": (0, 3600, False),
    "smtp_reconnect_seconds": (0, 86400, True),
    "smtp_connections": (1, 50, True),
    "rate_per_second": (0, 1e6, True),
    "rate_per_hour": (0, 1e9, True),
    "rate_per_domain_per_second": (0, 1e6, True),
    "retry_max_age_hours": (0, 10 * _YEAR_HOURS, True),
    "retry_base_seconds": (0, 3600 * _YEAR_HOURS, True),   # 0: retries are due at once
    "batch_size": (1, 100_000, True),
    "max_send_errors": (1, 10**9, True),
    "bounce_soft_limit": (1, 1000, True),
    "bounce_soft_window_days": (0, 3650, False),
    "bounces_poll_minutes": (0, 60 * 24 * 7, False),
    "submissions_poll_minutes": (0, 60 * 24 * 7, False),
    "confirm_max_age_hours": (0, 10 * _YEAR_HOURS, False),
    "schedule_grace_minutes": (0, 60 * 10 * _YEAR_HOURS, True),
    "web_rate_per_ip_per_hour": (0, 10**9, True),
    "web_confirm_cooldown_minutes": (0, 60 * 10 * _YEAR_HOURS, True),
    "web_confirm_max_per_day": (0, 10**6, True),
}


def check_number(name: str, dotted: str, value: int | float) -> int | float:
    """A finite number within the setting's range."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"setting {dotted!r}: must be a finite number")
    if value < 0:
        raise ConfigError(f"setting {dotted!r}: must not be negative")
    low, high, inclusive = NUMBER_RANGES.get(name, (0, math.inf, True))
    if value > high or value < low or (value == low and not inclusive):
        above = f"at least {low:g}" if inclusive else f"more than {low:g}"
        raise ConfigError(f"setting {dotted!r}: must be {above} and at most {high:g} (got {value:g})")
    return value


def domain_name(dotted: str, value: str) -> str:
    """A domain name as its ASCII (A-label) form; ConfigError naming *dotted* otherwise."""
    import idna

    text = value.strip().rstrip(".")
    if not text or has_header_trick(text) or any(c.isspace() for c in text):
        raise ConfigError(f"setting {dotted!r}: not a domain name: {value[:80]!r}")
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        raise ConfigError(f"setting {dotted!r}: not a domain name: {value[:80]!r}") from None
    if len(ascii_name) > 253 or not all(_LDH_LABEL.match(label) for label in ascii_name.split(".")):
        raise ConfigError(f"setting {dotted!r}: not a domain name: {value[:80]!r}")
    return ascii_name


def email_address(dotted: str, value: str) -> str:
    """An address (syntax only, no DNS), its domain in ASCII when it has one; '' stays ''."""
    from email_validator import EmailNotValidError, validate_email

    if not value:
        return value
    if has_header_trick(value) or value != value.strip() or len(value) > 254:
        raise ConfigError(f"setting {dotted!r}: not an email address: {value[:80]!r}")
    try:
        info = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise ConfigError(f"setting {dotted!r}: not an email address: {exc}") from None
    return info.ascii_email or f"{info.local_part}@{info.ascii_domain}"


def selector(dotted: str, value: str) -> str:
    """A DKIM selector: one or more labels of letters, digits, '-' and '_'."""
    if value and not all(_SELECTOR_LABEL.match(label) for label in value.split(".")):
        raise ConfigError(f"setting {dotted!r}: must be letters, digits, '-' or '_' (dot-separated labels)")
    return value


def header_text(dotted: str, value: str) -> str:
    """Text shown in a header (a display name): one line, no control characters, no encoded words."""
    if has_header_trick(value):
        raise ConfigError(f"setting {dotted!r}: must be one line without control characters or '=?'")
    return " ".join(value.split())


def feedback_sender(dotted: str, value: str) -> str:
    """Feedback-ID's SenderId (A9): empty (no header) or 5-15 letters, digits, '.', '_' or '-'."""
    if value and not _SENDER_ID.match(value):
        raise ConfigError(f"setting {dotted!r}: must be 5-15 letters, digits, '.', '_' or '-'")
    return value


def language(dotted: str, value: str) -> str:
    if not _LANGUAGE.match(value):
        raise ConfigError(f"setting {dotted!r}: must be a language tag such as 'en' or 'pt-BR'")
    return value


MAILBOX_SCHEMES = {"imaps": 993, "imap": 143, "pop3s": 995, "pop3": 110}


def mailbox(dotted: str, value: str) -> str:
    """A mailbox (bounces, submissions): a path, or ``imaps://user@host[:port][/folder]`` (imap,
    pop3s, pop3 alike). The password never goes in the URL: it is a secret (``MAILER_BOUNCES_PASSWORD``,
    ``MAILER_SUBMISSIONS_PASSWORD``).
    """
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError as exc:
        raise ConfigError(f"setting {dotted!r}: not a mailbox URL: {exc}") from None
    if parts.scheme not in MAILBOX_SCHEMES:
        raise ConfigError(f"setting {dotted!r}: the scheme must be one of {', '.join(MAILBOX_SCHEMES)} "
                          f"(got {parts.scheme!r})")
    if parts.password is not None:
        secret = f"MAILER_{(dotted.split('.')[0] if '.' in dotted else 'bounces').upper()}_PASSWORD"
        raise ConfigError(f"setting {dotted!r}: no password in the URL; set {secret} (or {secret}_FILE) instead")
    if not parts.hostname or not parts.username or parts.query or parts.fragment:
        raise ConfigError(f"setting {dotted!r}: must be scheme://user@host[:port][/folder], "
                          f"such as imaps://bounces@mail.example.org/INBOX")
    if parts.scheme.startswith("pop3") and parts.path.strip("/"):
        raise ConfigError(f"setting {dotted!r}: a POP3 mailbox has no folders")
    return value


def imap_folder(dotted: str, value: str) -> str:
    """An IMAP folder name: printable ASCII (non-ASCII names need IMAP's modified UTF-7)."""
    if value and not (value.isascii() and value.isprintable()):
        raise ConfigError(f"setting {dotted!r}: must be printable ASCII, such as Processed or INBOX/done")
    return value


def greeting_text(dotted: str, value: str) -> str:
    """The named greeting: one line holding {name} once, and no other {braces}."""
    if value.count("{name}") != 1 or "{" in value.replace("{name}", "") or "}" in value.replace("{name}", ""):
        raise ConfigError(f"setting {dotted!r}: must hold {{name}} once, e.g. \"Dear {{name}},\"")
    if len(value) > 200:
        raise ConfigError(f"setting {dotted!r}: keep it under 200 characters")
    return value


def short_text(dotted: str, value: str) -> str:
    if not value.strip() or len(value) > 200:
        raise ConfigError(f"setting {dotted!r}: must be 1-200 characters")
    return value


def direction(dotted: str, value: str) -> str:
    """Text direction of the HTML: ltr, rtl, or empty (derived from `language`)."""
    if value not in ("", "ltr", "rtl"):
        raise ConfigError(f"setting {dotted!r}: must be 'ltr', 'rtl' or empty (from 'language'), "
                          f"got {value[:20]!r}")
    return value


def time_zone(dotted: str, value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"setting {dotted!r}: unknown time zone {value[:80]!r}") from None
    return value


STRING_RULES: dict[str, Callable[[str, str], str]] = {
    "sending_domain": domain_name,
    "list_id_domain": domain_name,
    "dkim_domain": lambda dotted, value: domain_name(dotted, value) if value else value,
    "dkim_selector": selector,
    "bounce_address": email_address,
    "from_email": email_address,
    "reply_to": email_address,
    "transactional_from_email": email_address,
    "unsubscribe_mailto": email_address,
    "dev_redirect": email_address,
    "from_name": header_text,
    "group_name": header_text,
    "feedback_id_sender": feedback_sender,
    "language": language,
    "greeting": greeting_text,
    "greeting_nameless": short_text,
    "direction": direction,
    "schedule_timezone": time_zone,
    "bounces_mailbox": mailbox,
    "bounces_done_folder": imap_folder,
    "submissions_mailbox": mailbox,
    "submissions_done_folder": imap_folder,
    "submissions_senders": email_address,
}
# text that may run over several lines (shown on a page, never in a header)
MULTILINE = frozenset({"consent_text", "group_address"})


def check_value(name: str, dotted: str, value: Any) -> Any:
    """One setting's value, checked and normalised; ConfigError naming *dotted* when refused."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return check_number(name, dotted, value)
    if isinstance(value, tuple):
        return tuple(check_value(name, dotted, item) for item in value)
    control = _MULTILINE_CONTROL if name in MULTILINE else _CONTROL
    if control.search(value):
        raise ConfigError(f"setting {dotted!r}: contains a line break or control character")
    rule = STRING_RULES.get(name)
    return rule(dotted, value) if rule else value


def check_settings(get: Callable[[str], Any]) -> None:
    """The rules between settings, and the ones on required values; *get* reads a setting by name."""
    if get("smtp_security") not in ("starttls", "tls", "none"):
        raise ConfigError("setting 'smtp.security': must be starttls, tls or none")
    _check_base_url(get("base_url"))
    for name, dotted in (("from_email", "from_email"), ("bounce_address", "bounce_address")):
        if not get(name):
            raise ConfigError(f"setting {dotted!r}: not an email address")
    if get("smtp_username") and get("smtp_security") == "none":
        raise ConfigError("setting 'smtp.security': 'none' with a username would send the password in clear")
    dkim = (get("dkim_selector"), get("dkim_domain"), get("dkim_private_key_file"))
    if any(dkim) and not all(dkim):
        raise ConfigError("settings 'dkim.selector', 'dkim.domain' and 'dkim.private_key_file' "
                          "must be set together")


def _check_base_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise ConfigError("setting 'base_url': must start with https:// (or http:// for local testing)")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError as exc:
        raise ConfigError(f"setting 'base_url': not a URL: {exc}") from None
    if not parts.hostname or any(c.isspace() for c in url) or parts.query or parts.fragment:
        raise ConfigError(f"setting 'base_url': must be an http(s) URL with a host and no query, "
                          f"such as https://news.example.org (got {url[:80]!r})")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError("setting 'base_url': must be https:// (List-Unsubscribe needs an https link); "
                          "http:// is only for 127.0.0.1 or localhost")


# backends whose messages stay on this machine: they may carry links to a local base_url
LOCAL_BACKENDS = frozenset({"file", "memory"})
_LOCAL_LINKS = ("links in mails point to {url} (setting 'base_url'), which readers cannot open")


def local_links_warning(base_url: str) -> str | None:
    """What compose and preview say when base_url is not a public https address; None when it is."""
    if base_url.startswith("https://"):
        return None
    return _LOCAL_LINKS.format(url=base_url) + ": set it to the public https:// address before a real send"


def require_public_links(base_url: str, backend: str) -> None:
    """Refuse a send through *backend* (a name) with local links: only file and memory may carry them."""
    if backend not in LOCAL_BACKENDS and not base_url.startswith("https://"):
        raise ConfigError(_LOCAL_LINKS.format(url=base_url) + f": set base_url to the public https:// "
                          f"address of `mailer serve` before sending through the {backend!r} backend "
                          "(the file and memory backends may send with local links)")
