"""`mailer init`, `db`, `lists`, `subscribers` through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
import stat
import tomllib

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailer.bootstrap import config_template
from mailer.cli import cli
from mailer.config import SECRET_FIELDS, Settings, load_settings
from mailer.models import (Base, BounceEvent, BounceKind, Delivery, DeliveryStatus, Subscriber, Send,
                           Submission, SubmissionStatus, Suppression, SuppressionReason)
from tests.conftest import REPO
from tests.helpers import TEST_ENV


@pytest.fixture
def run(db, settings):
    """Invoke `mailer ...` against the `db` fixture; returns the click Result."""
    env = {**TEST_ENV, "MAILER_ROOT": str(settings.root), "MAILER_DATABASE_URL": db.url}

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)

    return invoke


def ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return result.output


def test_init_writes_config_once_secrets_file_0600_gitignored_and_migrates_D5(tmp_path):
    runner = CliRunner()
    root = tmp_path / "group"
    result = runner.invoke(cli, ["--root", str(root), "init"], env={"MAILER_ROOT": None})
    assert result.exit_code == 0, result.output
    config = (root / "mailer.toml").read_text()
    assert "wrote" in result.output and (root / "subscribers" / "mailer.db").exists()
    secrets_path = root / "secrets.toml"
    assert stat.S_IMODE(secrets_path.stat().st_mode) == 0o600
    secrets = tomllib.loads(secrets_path.read_text())
    assert set(secrets) == {"secret_keys", "hash_key"}
    assert len(secrets["hash_key"]) >= 40 and all(len(k) >= 40 for k in secrets["secret_keys"])
    assert secrets["hash_key"] not in result.output and secrets["hash_key"] not in config  # D5
    assert not any(name in config.replace("MAILER_", "").lower() for name in ("hash_key =", "secret_keys ="))
    assert "secrets.toml" in (root / ".gitignore").read_text().splitlines()
    loaded = load_settings(root, environ={})
    assert loaded.hash_key == secrets["hash_key"] and loaded.secret_keys == tuple(secrets["secret_keys"])
    (root / "mailer.toml").write_text(config + "\n# mine\n")
    again = runner.invoke(cli, ["--root", str(root), "init"], env={"MAILER_ROOT": None})
    assert again.exit_code == 0 and again.output.count("left as it is") == 2, again.output
    assert (root / "mailer.toml").read_text().endswith("# mine\n")
    assert tomllib.loads(secrets_path.read_text()) == secrets
    assert (root / ".gitignore").read_text().count("secrets.toml") == 1


def test_config_template_lists_every_setting_and_round_trips(tmp_path):
    template = config_template()
    uncommented = re.sub(r"^# (\w+ = .*?)   # env .*$", r"\1", template, flags=re.M)
    data = tomllib.loads(uncommented)
    (tmp_path / "mailer.toml").write_text(uncommented)
    loaded = load_settings(tmp_path, environ={})
    assert loaded == Settings(root=tmp_path)
    flat = {f"{k}.{kk}" if isinstance(v, dict) else k for k, v in data.items() for kk in (v if isinstance(v, dict) else [k])}
    assert len(flat) == len([n for n in Settings.__dataclass_fields__ if n != "root"]) - len(SECRET_FIELDS)


def test_db_current_downgrade_upgrade(run):
    assert "up to date" in ok(run("db", "current"))
    ok(run("db", "downgrade", "base"))
    assert "behind" in ok(run("db", "current"))
    ok(run("db", "upgrade"))
    assert "up to date" in ok(run("db", "current"))


def test_lists_add_and_counts_per_status(run, tmp_path):
    assert "no lists yet" in ok(run("lists"))
    ok(run("lists", "add", "news", "Monthly newsletter", "--single-opt-in", "--description", "Once a month"))
    bad = run("lists", "add", "news", "Again")
    assert bad.exit_code == 2 and bad.output.strip() == "error: list 'news' exists already"
    assert run("lists", "add", "Bad Slug", "x").exit_code == 2
    ok(run("subscribers", "add", "ana@example.org", "--name", "Ana", "--list", "news", "--confirmed"))
    ok(run("subscribers", "add", "bo@example.org", "--list", "news"))
    output = ok(run("lists"))
    row = next(line for line in output.splitlines() if "news" in line)
    assert re.findall(r"\d+", row) == ["1", "1", "0", "2"] and "single" in row


def test_add_normalises_and_suppressed_add_is_refused_B8(run):
    ok(run("lists", "add", "news", "News"))
    ok(run("subscribers", "add", "Ana@Example.ORG", "--list", "news", "--confirmed"))
    assert "already confirmed" in ok(run("subscribers", "add", "ana@example.org", "--list", "news", "--confirmed"))
    assert "1 subscription(s) unsubscribed" in ok(run("subscribers", "unsubscribe", "ana@example.org"))
    refused = run("subscribers", "add", "ana@example.org", "--list", "news", "--confirmed")
    assert refused.exit_code == 2 and "suppressed" in refused.output
    assert "unsubscribed" in ok(run("subscribers", "list", "--list", "news", "--status", "unsubscribed"))
    bad = run("subscribers", "add", "x@example.org\r\nBcc: y@example.org", "--list", "news")
    assert bad.exit_code == 2 and bad.output.startswith("error: ") and "Traceback" not in bad.output
    assert run("subscribers", "show", "nobody@example.org").exit_code == 2


def test_import_command_exit_codes_and_report(run, settings, tmp_path):
    ok(run("lists", "add", "news", "News"))
    good = tmp_path / "members.csv"
    good.write_text("email;name\nana@example.org;Ana\nbroken;B\n")
    output = ok(run("subscribers", "import", str(good), "--list", "news", "--dry-run"))
    assert "dry run, nothing changed" in output and "line 3:" in output
    assert "news: 0 subscribed" not in output and "0 shown" in ok(run("subscribers", "list"))
    output = ok(run("subscribers", "import", str(good), "--list", "news", "--confirmed"))
    assert "1 subscribed" in output and "1 rejected" in output
    assert (settings.path("subscribers") / "members-rejects.csv").exists()
    allbad = tmp_path / "allbad.csv"
    allbad.write_text("email\nnope\n")
    result = run("subscribers", "import", str(allbad), "--list", "news")
    assert result.exit_code == 2 and "every row was rejected" in result.output
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("name\nAna\n")
    result = run("subscribers", "import", str(nocol), "--list", "news")
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "no email column" in result.output


def test_export_list_and_everything(run, tmp_path):
    ok(run("lists", "add", "news", "News"))
    ok(run("lists", "add", "actions", "Actions"))
    members = tmp_path / "m.csv"
    members.write_text("email,name,city\nana@example.org,Ana,Lisboa\nbo@example.org,=HYPERLINK(1),\n")
    ok(run("subscribers", "import", str(members), "--list", "news", "--confirmed"))
    ok(run("subscribers", "add", "cy@example.org", "--list", "actions"))
    rows = list(csv.DictReader(io.StringIO(ok(run("subscribers", "export", "--list", "news")))))
    assert [(r["email"], r["status"], r["city"]) for r in rows] == [
        ("ana@example.org", "confirmed", "Lisboa"), ("bo@example.org", "confirmed", "")]
    assert rows[1]["name"] == "'=HYPERLINK(1)" and rows[0]["confirmed_at"].endswith("+00:00")
    out = tmp_path / "all.csv"
    ok(run("subscribers", "export", "--output", str(out)))
    everyone = list(csv.DictReader(out.open()))
    assert sorted((r["email"], r["list"], r["status"]) for r in everyone) == [
        ("ana@example.org", "news", "confirmed"), ("bo@example.org", "news", "confirmed"),
        ("cy@example.org", "actions", "pending")]


def test_show_json_holds_everything_about_one_person(run):
    ok(run("lists", "add", "news", "News"))
    ok(run("subscribers", "add", "ana@example.org", "--name", "Ana", "--list", "news", "--confirmed"))
    ok(run("subscribers", "unsubscribe", "ana@example.org", "--list", "news"))
    data = json.loads(ok(run("subscribers", "show", "ANA@example.org", "--json")))
    assert data["subscriber"]["email"] == "ana@example.org" and data["subscriber"]["name"] == "Ana"
    assert [s["status"] for s in data["subscriptions"]] == ["unsubscribed"]
    assert data["consents"][0]["source"] == "admin" and data["consents"][0]["list"] == "news"
    assert [e["action"] for e in data["audit_events"]] == ["subscribe", "unsubscribe"]
    assert [(s["scope"], s["reason"]) for s in data["suppressions"]] == [("news", "admin")]
    assert "Ana" in ok(run("subscribers", "show", "ana@example.org"))


def text_columns_holding(session, needles: list[str]) -> list[str]:
    """Every table.column whose text holds one of *needles* (case-insensitive)."""
    hits = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if column.type.python_type not in (str, dict, list):
                continue
            for (value,) in session.execute(select(column)):
                blob = json.dumps(value) if isinstance(value, (dict, list)) else str(value or "")
                if any(n.lower() in blob.lower() for n in needles):
                    hits.append(f"{table.name}.{column.name}")
    return hits


def test_erase_leaves_no_personal_data_in_any_table_and_refuses_reimport_B8(run, db, settings, tmp_path):
    ok(run("lists", "add", "news", "News"))
    members = tmp_path / "m.csv"
    members.write_text("email,name,city\nzelie.q@example.org,Zélie Quartermain,Quartermainville\n"
                       "other@example.org,Other,\n")
    ok(run("subscribers", "import", str(members), "--list", "news", "--confirmed"))
    with db.session() as s:
        zelie = s.scalar(select(Subscriber).where(Subscriber.email_key == "zelie.q@example.org"))
        send = Send(issue_slug="x", issue_path="x", subject="s", html="h", text="t", content_hash="c")
        s.add(send)
        s.flush()
        s.add(Delivery(send_id=send.id, subscriber_id=zelie.id, email=zelie.email, status=DeliveryStatus.SENT,
                       last_reply="250 ok <zelie.q@example.org>"))
        s.add(BounceEvent(subscriber_id=zelie.id, kind=BounceKind.SOFT, diagnostic="zelie.q@example.org full"))
        s.add(Submission(key="<r1@example.org>", status=SubmissionStatus.REFUSED, sender="Zelie.Q@example.org",
                         details='{"note": "zelie.q@example.org is not an allowed sender"}'))   # a report by mail
    ok(run("subscribers", "unsubscribe", "zelie.q@example.org"))
    with db.session() as s:
        assert "suppression.email" in text_columns_holding(s, ["zelie.q@example.org"])
    ok(run("subscribers", "erase", "zelie.q@example.org", "--yes"))
    with db.session() as s:
        assert text_columns_holding(s, ["zelie.q@example.org", "Zélie", "Quartermain"]) == []
        assert s.scalar(select(Subscriber.email).where(Subscriber.email_key == "other@example.org"))
        kept = s.scalars(select(Suppression).where(Suppression.scope == "*")).all()
        assert [(k.reason, k.email) for k in kept] == [(SuppressionReason.ERASED, None)]
        assert s.scalar(select(Delivery.status)) is DeliveryStatus.SENT
    again = ok(run("subscribers", "import", str(members), "--list", "news", "--confirmed"))
    assert "1 suppressed" in again and "0 new" in again
    refused = run("subscribers", "add", "Zelie.Q@example.org", "--list", "news", "--confirmed")
    assert refused.exit_code == 2 and "suppressed" in refused.output


def test_erase_asks_before_erasing(run, db):
    ok(run("lists", "add", "news", "News"))
    ok(run("subscribers", "add", "ana@example.org", "--list", "news"))
    assert run("subscribers", "erase", "ana@example.org", input="n\n").exit_code != 0
    assert "ana@example.org" in ok(run("subscribers", "show", "ana@example.org"))


def test_every_store_command_option_and_secret_is_documented():
    """Every command and option here, and the secrets, appear in README.md."""
    from mailer.cli.store import COMMANDS

    readme = (REPO / "README.md").read_text()
    missing = []

    def walk(command, path):  # type: ignore[no-untyped-def]
        name = " ".join(path)
        if f"mailer {name}" not in readme:
            missing.append(f"mailer {name}")
        for param in command.params:
            missing.extend(f"{name} {opt}" for opt in param.opts if opt.startswith("--") and opt not in readme)
        for sub_name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, sub_name])

    for command in COMMANDS:
        walk(command, [command.name])
    missing += [s for s in ("MAILER_SECRET_KEYS", "MAILER_HASH_KEY") if s not in readme]
    assert missing == []


def test_a_read_only_command_creates_no_database_under_a_missing_folder(tmp_path):
    """`mailer lists` / `status` on a database whose folder is missing: one line, nothing created."""
    missing = tmp_path / "nowhere" / "sub"
    env = {**TEST_ENV, "MAILER_ROOT": str(tmp_path), "MAILER_DATABASE_URL": f"sqlite:///{missing}/mailer.db"}
    for args in (["lists"], ["status", "issues/x"], ["subscribers", "list"]):
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code != 0 and result.output.count("\n") == 1, result.output
        assert result.output.startswith(f"error: database {missing}/mailer.db: its folder does not exist")
    assert not (tmp_path / "nowhere").exists()
    ok(CliRunner().invoke(cli, ["db", "upgrade"], env=env))
    assert (missing / "mailer.db").exists()


def test_db_downgrade_to_an_unknown_revision_is_one_line(run):
    result = run("db", "downgrade", "garbage")
    assert result.exit_code == 2
    assert result.output == "error: db downgrade garbage: Can't locate revision identified by 'garbage'\n"


def test_a_read_only_database_is_one_error_line(tmp_path, settings):
    from mailer.db import Database

    path = tmp_path / "ro.db"
    Database(f"sqlite:///{path}").upgrade()
    env = {**TEST_ENV, "MAILER_ROOT": str(settings.root),
           "MAILER_DATABASE_URL": f"sqlite:///file:{path}?mode=ro&uri=true"}
    ok(CliRunner().invoke(cli, ["lists"], env=env))   # reading works
    result = CliRunner().invoke(cli, ["lists", "add", "news", "News"], env=env)
    assert result.exit_code == 3
    assert result.output == "error: database error: attempt to write a readonly database\n"
