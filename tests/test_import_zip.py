"""Export zips imported as downloaded (Mailchimp's audience export, Substack's export), on SQLite and
PostgreSQL, through the CLI; zips that are not exports, bombs and `../` names change nothing."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from mailer.cli import cli
from mailer.models import Subscriber, Subscription, SubscriptionStatus, Suppression
from mailer.people.lists import add_list
from tests.helpers import TEST_ENV
from tests.test_import_tools import MAILCHIMP, MC_CLEANED, MC_UNSUB, SUBSTACK


@pytest.fixture
def news(db):  # type: ignore[no-untyped-def]
    with db.session() as s:
        add_list(s, "news", "News")
    return "news"


def make_zip(path: Path, members: dict[str, bytes | str], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def run(project: Path, db_url: str, *args: str):  # type: ignore[no-untyped-def]
    env = {**TEST_ENV, "MAILER_ROOT": str(project), "MAILER_DATABASE_URL": db_url}
    return CliRunner().invoke(cli, ["subscribers", "import", *args], env=env)


def counts(db) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return (s.scalar(select(func.count()).select_from(Subscriber)),
                s.scalar(select(func.count()).select_from(Subscription)),
                s.scalar(select(func.count()).select_from(Suppression)))


def test_a_mailchimp_export_zip_imports_its_three_files_suppressions_first(db, news, project, tmp_path):
    export = make_zip(tmp_path / "audience_export_9f2c.zip", {
        "subscribed_email_audience_export_9f2c.csv": MAILCHIMP,
        "unsubscribed_email_audience_export_9f2c.csv": MC_UNSUB,
        "cleaned_email_audience_export_9f2c.csv": MC_CLEANED,
        "nonsubscribed_email_audience_export_9f2c.csv": MAILCHIMP.splitlines()[0] + "\n",
        "__MACOSX/._subscribed_email_audience_export_9f2c.csv": "junk",
    })
    r = run(project, db.url, str(export), "--list", "news", "--confirmed")
    assert r.exit_code == 0, r.output + r.stderr
    order = [line.split(" > ")[1].split(" (")[0].split(":")[0] for line in r.output.splitlines()
             if " > " in line and not line.startswith(" ")]
    assert order == ["unsubscribed_email_audience_export_9f2c.csv", "cleaned_email_audience_export_9f2c.csv",
                     "subscribed_email_audience_export_9f2c.csv", "nonsubscribed_email_audience_export_9f2c.csv"]
    assert "nonsubscribed_email_audience_export_9f2c.csv: left out" in r.output
    assert "(mailchimp export)" in r.output and "line 4: " in r.stderr          # not-an-address
    with db.session() as s:
        subscribed = set(s.scalars(select(Subscriber.email).join(Subscription).where(
            Subscription.status == SubscriptionStatus.CONFIRMED)))
        assert subscribed == {"bo@example.org"}          # ana unsubscribed in the export, cy's OPTIN_TIME bad
        assert s.scalar(select(func.count()).select_from(Suppression)) == 3   # dee, ana, gone
    rejects = project / "subscribers" / "audience_export_9f2c-subscribed-rejects.csv"
    assert rejects.is_file() and "not-an-address" in rejects.read_text()
    assert not list((project / "subscribers").glob("mailer-export-*"))        # the unpacked CSVs are gone
    again = run(project, db.url, str(export), "--list", "news", "--confirmed")  # idempotent
    assert again.exit_code == 0 and "0 new" in again.output


def test_a_substack_export_zip_imports_its_email_list(db, news, project, tmp_path):
    export = make_zip(tmp_path / "substack.zip", {"email_list.riverside.csv": SUBSTACK,
                                                  "posts.csv": "post_id,title\n1,Hello\n",
                                                  "posts/1.hello.html": "<p>Hello</p>"})
    r = run(project, db.url, str(export), "--list", "news", "--dry-run")
    assert r.exit_code == 0 and "dry run, nothing changed" in r.output and "(substack export)" in r.output
    assert counts(db) == (0, 0, 0)
    r = run(project, db.url, str(export), "--list", "news")
    assert r.exit_code == 0, r.output + r.stderr
    assert "email_list.riverside.csv (subscribers) (substack export): 3 rows" in r.output


@pytest.mark.parametrize("members, message", [
    ({"notes.txt": "hello"}, "not a Mailchimp or Substack export (it holds no CSV at all)"),
    ({"people.csv": "email\na@example.org\n"}, "not a Mailchimp or Substack export (it holds people.csv)"),
    ({"subscribed_x.csv": "name,phone\nAna,1\n"},
     "subscribed_x.csv: line 1: looks like a Mailchimp export but has no 'Email Address'"),
    ({"../subscribed_evil.csv": "email\na@example.org\n"}, "has an unsafe name"),
])
def test_a_zip_that_is_not_a_usable_export_changes_nothing(db, news, project, tmp_path, members, message):
    export = make_zip(tmp_path / "export.zip", {"unsubscribed_ok.csv": MC_UNSUB, **members}
                      if "subscribed_x.csv" in members else members)
    r = run(project, db.url, str(export), "--list", "news")
    assert r.exit_code != 0 and message in r.output + r.stderr, r.output + r.stderr
    assert "Traceback" not in r.output + r.stderr
    assert counts(db) == (0, 0, 0)                                         # not even the good unsubscribed file


def test_a_zip_bomb_and_a_broken_zip_are_refused(db, news, project, tmp_path):
    header = MAILCHIMP.splitlines()[0] + "\n"
    bomb = make_zip(tmp_path / "bomb.zip", {"subscribed_bomb.csv": header + "\n" * (50 * 1024 ** 2)})
    r = run(project, db.url, str(bomb), "--list", "news")
    assert r.exit_code != 0 and "like a zip bomb; refused" in r.output + r.stderr
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    r = run(project, db.url, str(broken), "--list", "news")
    assert r.exit_code != 0 and "not a readable zip file" in r.output + r.stderr
    assert counts(db) == (0, 0, 0)
