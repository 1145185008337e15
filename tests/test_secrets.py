"""Secrets that stay put: secrets.toml written by `mailer init`, read by every command, refused when
others may read it or it lacks a key; the database's key fingerprints refuse a stranger's keys
(STANDARDS D5)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from mailer.cli import cli
from mailer.config import load_settings
from mailer.db import Database
from mailer.errors import ConfigError
from mailer.keyring import KeyMismatch, accept_keys, check_keys, fingerprint, key_states
from mailer.models import KeyFingerprint, MailingList
from mailer.secretfile import write_secrets


def mailer(root: Path, *args: str, **env: str) -> Result:
    """`mailer ARGS` in *root*, with only the MAILER_* variables given."""
    return CliRunner().invoke(cli, list(args), env={"MAILER_ROOT": str(root), **env})


def one_error_line(result: Result, *parts: str) -> str:
    """The command failed (exit 2) with exactly one `error:` line holding *parts*, no traceback."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def group(tmp_path: Path) -> Path:
    """A project folder after `mailer init` (no secret in the environment)."""
    root = tmp_path / "group"
    result = mailer(root, "init")
    assert result.exit_code == 0, result.output
    return root


def secrets_of(root: Path) -> dict:
    return tomllib.loads((root / "secrets.toml").read_text())


def lists_in(root: Path) -> list[str]:
    db = Database(f"sqlite:///{root}/subscribers/mailer.db")
    try:
        with db.session() as session:
            return list(session.scalars(select(MailingList.slug)))
    finally:
        db.dispose()


def test_init_writes_secrets_0600_that_every_command_reads(group: Path) -> None:
    assert stat.S_IMODE((group / "secrets.toml").stat().st_mode) == 0o600
    assert "secrets.toml" in (group / ".gitignore").read_text().splitlines()
    assert secrets_of(group)["hash_key"] not in (group / "mailer.toml").read_text()
    ok = mailer(group, "lists", "add", "news", "News")       # no MAILER_* secret anywhere
    assert ok.exit_code == 0, ok.output
    shown = mailer(group, "config").output
    assert "(1 set)" in shown and secrets_of(group)["hash_key"] not in shown
    assert mailer(group, "keys").output.count("set, the database's") == 2


def test_environment_and_file_variables_win_over_the_secrets_file(group: Path, tmp_path: Path) -> None:
    stored = secrets_of(group)
    assert load_settings(group, environ={}).hash_key == stored["hash_key"]
    settings = load_settings(group, environ={"MAILER_SECRET_KEYS": "from-env,second"})
    assert settings.secret_keys == ("from-env", "second") and settings.hash_key == stored["hash_key"]
    key_file = tmp_path / "hash.key"
    key_file.write_text("from-a-file\n")
    assert load_settings(group, environ={"MAILER_HASH_KEY_FILE": str(key_file)}).hash_key == "from-a-file"


def test_an_existing_gitignore_is_extended_once(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / ".gitignore").write_text("notes/")
    assert mailer(root, "init").exit_code == 0
    assert mailer(root, "init").exit_code == 0
    lines = (root / ".gitignore").read_text().splitlines()
    assert lines[0] == "notes/" and lines.count("secrets.toml") == 1


def test_a_secrets_file_others_may_read_is_refused_with_one_line(group: Path) -> None:
    os.chmod(group / "secrets.toml", 0o644)
    line = one_error_line(mailer(group, "lists"), "secrets.toml", "mode 0644", "chmod 600")
    assert str(group / "secrets.toml") in line
    one_error_line(mailer(group, "config"), "chmod 600")       # every command, even `config`
    os.chmod(group / "secrets.toml", 0o640)
    one_error_line(mailer(group, "lists"), "mode 0640")


@pytest.mark.parametrize("text, missing", [
    ('secret_keys = ["abc"]\n', "'hash_key'"),
    ('hash_key = "abc"\nsecret_keys = []\n', "'secret_keys'"),
])
def test_a_secrets_file_missing_a_key_is_refused_with_one_line(group: Path, text: str, missing: str) -> None:
    (group / "secrets.toml").unlink()
    write_secrets(group / "secrets.toml", tomllib.loads(text))
    one_error_line(mailer(group, "lists"), "secrets.toml", f"no {missing}", "restore this file")


def test_settings_and_unknown_names_in_the_secrets_file_are_refused(group: Path) -> None:
    path = group / "secrets.toml"
    path.write_text(path.read_text() + 'base_url = "https://x.example"\n')
    one_error_line(mailer(group, "lists"), "'base_url' is not a secret", "mailer.toml")
    path.write_text("hash_key = [broken\n")
    one_error_line(mailer(group, "lists"), "secrets.toml: invalid TOML")


def test_the_environment_may_supply_what_the_file_lacks(group: Path) -> None:
    stored = secrets_of(group)
    (group / "secrets.toml").unlink()
    write_secrets(group / "secrets.toml", {"secret_keys": stored["secret_keys"]})
    assert mailer(group, "lists", MAILER_HASH_KEY=stored["hash_key"]).exit_code == 0


def test_a_hash_key_the_database_does_not_know_is_refused(group: Path) -> None:
    line = one_error_line(mailer(group, "lists", "add", "news", "News", MAILER_HASH_KEY="another-key"),
                          "MAILER_HASH_KEY is not the hash key this database was set up with",
                          "restore secrets.toml", "mailer keys accept")
    assert "another-key" not in line
    assert lists_in(group) == []                         # nothing done


def test_signing_keys_none_of_which_it_knows_are_refused_but_a_rotation_is_accepted(group: Path) -> None:
    old = secrets_of(group)["secret_keys"][0]
    one_error_line(mailer(group, "lists", MAILER_SECRET_KEYS="brand-new"),
                   "none of these signing keys is one this database knows", "new key first")
    rotated = mailer(group, "lists", "add", "news", "News", MAILER_SECRET_KEYS=f"brand-new,{old}")
    assert rotated.exit_code == 0, rotated.output
    # recorded: the new key alone is now known, the old one still too
    assert mailer(group, "lists", MAILER_SECRET_KEYS="brand-new").exit_code == 0
    one_error_line(mailer(group, "lists", MAILER_SECRET_KEYS="yet-another"), "none of these signing keys")


def test_a_lost_secrets_file_is_refused_not_replaced_by_fresh_keys(group: Path) -> None:
    (group / "secrets.toml").unlink()
    one_error_line(mailer(group, "lists"), "hash_key: none set", "restore secrets.toml")
    one_error_line(mailer(group, "init"), "hash_key: none set")
    assert not (group / "secrets.toml").exists()           # init wrote no fresh keys over the loss


def test_keys_accept_makes_new_keys_the_database_s(group: Path) -> None:
    (group / "secrets.toml").unlink()
    write_secrets(group / "secrets.toml", {"secret_keys": ["replacement"], "hash_key": "replacement-hash"})
    one_error_line(mailer(group, "lists"), "mailer keys accept")
    assert "refused" in mailer(group, "keys").output
    assert mailer(group, "keys", "accept", input="n\n").exit_code != 0        # asks first
    one_error_line(mailer(group, "lists"), "mailer keys accept")
    accepted = mailer(group, "keys", "accept", "--yes")
    assert accepted.exit_code == 0, accepted.output
    assert mailer(group, "lists", "add", "news", "News").exit_code == 0
    assert lists_in(group) == ["news"]


def test_services_refuse_to_start_with_foreign_keys(group: Path) -> None:
    """worker, scheduler and the WSGI entry point check the keys as every command does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILER_")}
    env.update(MAILER_ROOT=str(group), MAILER_HASH_KEY="intruder")
    for args in (["worker", "--until-idle"], ["scheduler", "--once"]):
        proc = subprocess.run([sys.executable, "-m", "mailer", *args], env=env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert "MAILER_HASH_KEY is not the hash key" in proc.stderr
    code = "from mailer.web import make_wsgi_app\nmake_wsgi_app()"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.startswith("error: MAILER_HASH_KEY is not"), proc.stderr
    assert proc.stderr.count("\n") == 1


def test_fingerprints_never_hold_a_key_and_work_on_both_databases(db, settings) -> None:
    check_keys(db, settings)                              # first use: recorded
    with db.session() as session:
        rows = {r.name: r for r in session.scalars(select(KeyFingerprint))}
    stored = " ".join(r.fingerprints + r.salt for r in rows.values())
    assert all(k not in stored for k in (settings.hash_key, *settings.secret_keys))
    assert rows["hash_key"].fingerprints == fingerprint(settings.hash_key, rows["hash_key"].salt)
    assert len(rows["secret_keys"].fingerprints.split(",")) == len(settings.secret_keys)
    with pytest.raises(KeyMismatch, match="MAILER_HASH_KEY is not"):
        check_keys(db, settings.replace(hash_key="other"))
    with pytest.raises(KeyMismatch, match="none of these signing keys"):
        check_keys(db, settings.replace(secret_keys=("other",)))
    check_keys(db, settings.replace(secret_keys=("newest", settings.secret_keys[1])))   # rotation
    assert [s.known for s in key_states(db, settings.replace(secret_keys=("newest",)))] == [1, 1]
    check_keys(db, settings.replace(secret_keys=(settings.secret_keys[1],)))   # a machine still on the old set
    check_keys(db, settings.replace(secret_keys=("newest",)))                    # the old key is dropped
    with pytest.raises(KeyMismatch):                                            # the stale one no longer fits
        check_keys(db, settings.replace(secret_keys=(settings.secret_keys[1],)))
    accept_keys(db, settings.replace(hash_key="other", secret_keys=("other",)))
    check_keys(db, settings.replace(hash_key="other", secret_keys=("other",)))
    with pytest.raises(ConfigError):
        check_keys(db, settings)


def test_keys_rotate_puts_a_fresh_key_first_and_keeps_the_rest(group: Path) -> None:
    path = group / "secrets.toml"
    path.write_text(path.read_text() + '[smtp]\npassword = "pa\\"ss"\n')
    before = secrets_of(group)
    ok = mailer(group, "keys", "rotate")
    assert ok.exit_code == 0, ok.output
    after = secrets_of(group)
    assert after["secret_keys"][1:] == before["secret_keys"] and after["secret_keys"][0] not in before["secret_keys"]
    assert after["hash_key"] == before["hash_key"] and after["smtp"]["password"] == 'pa"ss'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and not (group / "secrets.toml.new").exists()
    assert mailer(group, "keys").output.count("set, the database's") == 2      # the new set is recorded
    one_error_line(mailer(group, "keys", "rotate", MAILER_SECRET_KEYS="x"), "rotate it there")
