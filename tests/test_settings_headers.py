"""STANDARDS D1 through settings: a header payload in any string setting is refused or comes out clean.

Every string setting gets every payload, once from mailer.toml and once from MAILER_*:
either loading refuses it with one line naming the setting, or the newsletter and the
confirmation mail built with it carry no injected header and no line break inside one.
"""

from __future__ import annotations

from dataclasses import fields
from email import message_from_bytes, policy

import pytest

from mailer.config import SECRET_FIELDS, Settings, dotted_name, env_name, load_settings
from mailer.errors import ConfigError
from mailer.mail.message import MessageFactory, Recipient, transactional_message

PAYLOADS = ["\r\nBcc: x@y", "\n", "=?utf-8?q?=0d=0aBcc:?=", "\u2028", "x>\r\nBcc: e@x.org", "a\x00b",
            "x.org>\r\nBcc: e@x.org", "\rBcc: x@y", "x\u0085Bcc: x@y"]
STRING_SETTINGS = [f.name for f in fields(Settings)
                   if f.name != "root" and isinstance(f.default, (str, tuple))]
BASE_ENV = {"MAILER_SECRET_KEYS": "k1", "MAILER_HASH_KEY": "h1"}


def toml_string(value: str) -> str:
    return '"' + "".join(c if c.isalnum() or c in " .:>@=?-_" else f"\\u{ord(c):04x}" for c in value) + '"'


def toml_line(name: str, value: str) -> str:
    default = getattr(Settings, name)
    text = f"[{toml_string(value)}]" if isinstance(default, tuple) else toml_string(value)
    return f"{dotted_name(name)} = {text}\n"


def built_messages(settings: Settings) -> list[bytes]:
    """The bytes of a newsletter and a confirmation mail built with *settings*."""
    factory = MessageFactory(settings, subject="Hello", html="<p>Hello</p>", text="Hello", issue_slug="2026-01")
    recipient = Recipient(key=7, email="alice@example.net", name="Alice", subscriber_uid="Qx7vR2pLk9",
                          list_slug="news", list_name="Riverside News")
    confirm = transactional_message(settings, to="alice@example.net", to_name="Alice", subject="Confirm",
                                    text="Confirm")
    return [m.data for m in (factory.render(recipient), confirm)]


def assert_clean(data: bytes) -> None:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line and b"\x00" not in line, line
        assert "\u2028".encode() not in line and "\u0085".encode() not in line, line
    message = message_from_bytes(data, policy=policy.default)
    assert message.get_all("Bcc") is None and not message.defects, message.defects


def check(name: str, load) -> None:  # type: ignore[no-untyped-def]
    """Refused in one line naming the setting (when loaded, or when a message is built), or clean."""
    try:
        messages = built_messages(load())
    except ConfigError as exc:
        text = str(exc)
        assert "\n" not in text and "\r" not in text, text
        assert dotted_name(name) in text or env_name(name) in text, text
        return
    for data in messages:
        assert_clean(data)


@pytest.mark.parametrize("name", STRING_SETTINGS)
def test_every_string_setting_from_the_file(tmp_path, name):
    for payload in PAYLOADS:
        (tmp_path / "mailer.toml").write_text(toml_line(name, payload), encoding="utf-8")
        check(name, lambda: load_settings(tmp_path, environ=BASE_ENV))


@pytest.mark.parametrize("name", STRING_SETTINGS)
def test_every_string_setting_from_the_environment(tmp_path, name):
    for payload in PAYLOADS:
        check(name, lambda: load_settings(tmp_path, environ={**BASE_ENV, env_name(name): payload}))


def test_the_payloads_reach_a_header_setting_unchanged(tmp_path):
    """The TOML spelling carries the payload as it is (else the test above would prove nothing)."""
    (tmp_path / "mailer.toml").write_text(toml_line("consent_version", "a\r\nb=?x?="), encoding="utf-8")
    with pytest.raises(ConfigError, match="consent_version"):
        load_settings(tmp_path, environ=BASE_ENV)
    (tmp_path / "mailer.toml").write_text(toml_line("consent_text", "a\r\nb=?x?="), encoding="utf-8")
    assert load_settings(tmp_path, environ=BASE_ENV).consent_text == "a\r\nb=?x?="


def test_header_domains_and_addresses_are_refused_or_made_ascii(tmp_path):
    with pytest.raises(ConfigError, match="^MAILER_SENDING_DOMAIN: setting 'sending_domain'"):
        load_settings(tmp_path, environ={"MAILER_SENDING_DOMAIN": "x.org>\r\nBcc: e@x.org"})
    with pytest.raises(ConfigError, match="setting 'list_id_domain': not a domain name"):
        load_settings(tmp_path, environ={"MAILER_LIST_ID_DOMAIN": "lists.example.org> x"})
    with pytest.raises(ConfigError, match="setting 'dkim.selector'"):
        load_settings(tmp_path, environ={"MAILER_DKIM_SELECTOR": "s1>"})
    with pytest.raises(ConfigError, match="setting 'reply_to': not an email address"):
        load_settings(tmp_path, environ={"MAILER_REPLY_TO": "Bob <bob@example.org>"})
    settings = load_settings(tmp_path, environ={"MAILER_SENDING_DOMAIN": "Bücher.Example",
                                                "MAILER_LIST_ID_DOMAIN": "listen.bücher.example",
                                                "MAILER_DKIM_DOMAIN": "bücher.example",
                                                "MAILER_DKIM_SELECTOR": "s1",
                                                "MAILER_DKIM_PRIVATE_KEY_FILE": "/keys/dkim.pem",
                                                "MAILER_FROM_EMAIL": "news@bücher.example"})
    assert settings.sending_domain == "xn--bcher-kva.example"
    assert settings.list_id_domain == "listen.xn--bcher-kva.example"
    assert settings.dkim_domain == "xn--bcher-kva.example"
    assert settings.from_email == "news@xn--bcher-kva.example"


def test_secrets_are_still_refused_in_the_file(tmp_path):
    for name in SECRET_FIELDS:
        (tmp_path / "mailer.toml").write_text(toml_line(name, "x"), encoding="utf-8")
        with pytest.raises(ConfigError, match="is a secret"):
            load_settings(tmp_path, environ={})
