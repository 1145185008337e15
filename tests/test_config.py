"""Settings from mailer.toml and MAILER_* environment variables; bad config is one clear line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mailer.cli import cli
from mailer.config import dotted_name, load_settings
from mailer.errors import ConfigError


def test_defaults_file_and_environment_in_that_order(tmp_path):
    (tmp_path / "mailer.toml").write_text('from_name = "Our Group"\n[smtp]\nhost = "mail.example.org"\nport = 465\n')
    settings = load_settings(tmp_path, environ={"MAILER_SMTP_PORT": "2525", "MAILER_SECRET_KEYS": "a,b"})
    assert settings.from_name == "Our Group"
    assert settings.smtp_host == "mail.example.org"
    assert settings.smtp_port == 2525
    assert settings.secret_keys == ("a", "b")
    assert settings.batch_size == 100


def test_relative_sqlite_path_is_under_the_root(tmp_path):
    settings = load_settings(tmp_path, environ={})
    assert settings.resolved_database_url == f"sqlite:///{tmp_path}/subscribers/mailer.db"


def test_secret_from_a_file_outside_the_repo(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    settings = load_settings(tmp_path, environ={"MAILER_SMTP_PASSWORD_FILE": str(secret)})
    assert settings.smtp_password == "s3cret"


@pytest.mark.parametrize("toml, env, message", [
    ("[smtp\n", {}, r"mailer.toml: invalid TOML"),
    ('smtp_hots = "x"\n', {}, r"unknown setting 'smtp_hots'"),
    ('[smtp]\npassword = "x"\n', {}, r"'smtp.password' is a secret; set MAILER_SMTP_PASSWORD"),
    ('[smtp]\nport = "many"\n', {}, r"setting 'smtp.port': .*many"),
    ("", {"MAILER_BATCH_SIZE": "-3"}, r"MAILER_BATCH_SIZE: setting 'batch_size': must not be negative"),
    ("", {"MAILER_SMTP_SECURITY": "maybe"}, r"'smtp.security': must be starttls, tls or none"),
    ("", {"MAILER_BASE_URL": "example.org"}, r"'base_url': must start with https://"),
    ("", {"MAILER_WEB_TRUST_PROXY": "perhaps"}, r"expected true or false"),
])
def test_bad_config_names_the_key(tmp_path, toml, env, message):
    (tmp_path / "mailer.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, environ=env)


def test_cli_reports_bad_config_as_one_line(tmp_path):
    (tmp_path / "mailer.toml").write_text("[smtp\n")
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "compose", "x"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "mailer.toml: invalid TOML" in result.output
    assert "Traceback" not in result.output


def test_base_url_must_be_https_except_on_this_machine(tmp_path):
    """STANDARDS A5: the List-Unsubscribe URL is https; plain http only for local testing."""
    with pytest.raises(ConfigError, match="must be https://"):
        load_settings(tmp_path, environ={"MAILER_BASE_URL": "http://news.example.org"})
    assert load_settings(tmp_path, environ={"MAILER_BASE_URL": "http://localhost:8025"}).base_url


@pytest.mark.parametrize("env, message", [
    ({"MAILER_SMTP_PORT": "99999"}, r"^MAILER_SMTP_PORT: setting 'smtp.port': must be at least 1 and at most 65535"),
    ({"MAILER_WEB_PORT": "0"}, r"setting 'web.port': must be at least 1"),
    ({"MAILER_SMTP_TIMEOUT": "0"}, r"setting 'smtp.timeout': must be more than 0"),
    ({"MAILER_SMTP_CONNECTIONS": "100000"}, r"setting 'smtp.connections': .* at most 50"),
    ({"MAILER_RETRY_BASE_SECONDS": "nan"}, r"setting 'retry_base_seconds': must be a finite number"),
    ({"MAILER_RATE_PER_SECOND": "inf"}, r"setting 'rate.per_second': must be a finite number"),
    ({"MAILER_RETRY_MAX_AGE_HOURS": "1e308"}, r"setting 'retry_max_age_hours': .* at most"),
    ({"MAILER_MAX_SEND_ERRORS": "0"}, r"setting 'max_send_errors': must be at least 1"),
    ({"MAILER_BASE_URL": "not a url"}, r"setting 'base_url': must start with https://"),
    ({"MAILER_BASE_URL": "https://"}, r"setting 'base_url': must be an http\(s\) URL with a host"),
    ({"MAILER_BASE_URL": "https://news.example.org:99999"}, r"setting 'base_url': not a URL"),
    ({"MAILER_SCHEDULE_TIMEZONE": "Mars/Olympus"}, r"setting 'schedule.timezone': unknown time zone"),
    ({"MAILER_FROM_EMAIL": "not-an-address"}, r"setting 'from_email': not an email address"),
])
def test_every_value_is_checked_when_loaded(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path, environ=env)


def test_a_number_in_the_file_is_checked_too(tmp_path):
    (tmp_path / "mailer.toml").write_text("[smtp]\nport = 99999\n")
    with pytest.raises(ConfigError, match=r"mailer.toml: setting 'smtp.port': must be at least 1"):
        load_settings(tmp_path, environ={})
    (tmp_path / "mailer.toml").write_text("batch_size = 2.5\n")
    with pytest.raises(ConfigError, match=r"setting 'batch_size': expected a whole number"):
        load_settings(tmp_path, environ={})
    (tmp_path / "mailer.toml").write_text("retry_base_seconds = nan\n")
    with pytest.raises(ConfigError, match=r"setting 'retry_base_seconds': must be a finite number"):
        load_settings(tmp_path, environ={})


@pytest.mark.parametrize("name, value", [("SMTP_PORT", "99999"), ("SMTP_TIMEOUT", "0"), ("BASE_URL", "not a url"),
                                         ("SENDING_DOMAIN", "x.org>\r\nBcc: e@x.org")])
def test_mailer_config_refuses_what_send_would(tmp_path, monkeypatch, name, value):
    """README: a bad value stops every command with one line naming the setting; `config` included."""
    monkeypatch.setenv(f"MAILER_{name}", value)
    result = CliRunner().invoke(cli, ["--root", str(tmp_path), "config"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert f"setting '{dotted_name(name.lower())}'" in result.output
