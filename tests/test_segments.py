"""Tags and segments (SQLite and PostgreSQL): the filter language, the audience it selects, and the
send options that freeze it; an import's `tags` column."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from mailer.backends.memory import MemoryBackend
from mailer.cli import cli
from mailer.config import Settings
from mailer.db import Database
from mailer.errors import InputError
from mailer.models import Delivery, Schedule, ScheduleKind, Send, Subscriber, SubscriberTag, utcnow
from mailer.people import tagging
from mailer.people.importing import import_csv
from mailer.people.segments import parse
from mailer.scheduling.runs import execute
from tests.helpers import TEST_ENV, add_subscribers, make_list


@pytest.fixture
def people(db: Database, settings: Settings) -> Database:
    """news: user0..user5; press: user4..user7. Tags, attributes and an old subscriber."""
    add_subscribers(db, "news", 6, settings=settings)
    add_subscribers(db, "press", 4, settings=settings, start=4)
    for i, tags in {0: ["eastfield"], 1: ["eastfield", "volunteer"], 2: ["millane"], 5: ["eastfield"]}.items():
        tagging.tag(db, f"user{i}@example.net", tags)
    with db.session() as session:
        for i, attrs in {0: {"branch": "Eastfield", "age": "34"}, 1: {"branch": "Mill Lane", "age": "71"},
                         2: {"branch": "Eastfield North", "age": "x"}}.items():
            session.execute(update(Subscriber).where(Subscriber.email == f"user{i}@example.net").values(attributes=attrs))
        session.execute(update(Subscriber).where(Subscriber.email == "user3@example.net")
                        .values(created_at=utcnow() - timedelta(days=400)))
    return db


def selected(db: Database, expression: str) -> list[str]:
    emails = tagging.sample_of(db, expression, limit=100)
    assert tagging.count_of(db, expression) == len(emails)
    return sorted(e.split("@")[0] for e in emails)


@pytest.mark.parametrize("expression, expected", [
    ("tag = eastfield", ["user0", "user1", "user5"]),
    ("tag = eastfield and not tag = volunteer", ["user0", "user5"]),
    ("tag = volunteer or tag = millane", ["user1", "user2"]),
    ("(tag = eastfield or tag = millane) and list = press", ["user5"]),
    ("list = news and list != press", ["user0", "user1", "user2", "user3"]),
    ('attr.branch = "Mill Lane"', ["user1"]),
    ("attr.branch contains Eastfield", ["user0", "user2"]),
    ("attr.age > 50", ["user1"]),                       # "x" is no number: not selected
    ("attr.branch != Eastfield and attr.age >= 0", ["user1"]),
    ('email contains "user1"', ["user1"]),
    ("created < 2025-12-31", ["user3"]),
    ("status = confirmed and tag = millane", ["user2"]),
    ("status = pending", []),
])
def test_the_language_selects_what_it_says(people: Database, expression: str, expected: list[str]):
    assert selected(people, expression) == expected


@pytest.mark.parametrize("expression, message", [
    ("tag =", "at the end: expected a value after tag ="),
    ("tag == x", "position 6: expected a value after tag =, got '='"),
    ("colour = red", "position 1: unknown field"),
    ("status = active", "position 10: status is one of pending, confirmed, unsubscribed"),
    ("created > 2026-13-01", "position 11: '2026-13-01' is not a date"),
    ("name = x; DROP TABLE subscriber", "position 9: unexpected ';'"),
    ('tag = "a b"', "tag 'a b': use letters, digits"),
    ("tag = eastfield and", "at the end: expected a field"),
    ("(tag = a", "at the end: expected ')'"),
    ("tag < b", "position 5: tag takes = or !=, not <"),
    ("x" * 3000, "3,000 characters"),
])
def test_a_mistake_is_one_line_naming_the_position(expression: str, message: str):
    with pytest.raises(InputError) as caught:
        parse(expression)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_values_are_bound_never_pasted_into_sql(people: Database):
    assert selected(people, "name = \"x' OR '1'='1\"") == []
    assert selected(people, 'attr.branch = "\' OR 1=1 --"') == []
    assert people.engine.dialect.name in ("sqlite", "postgresql")


def test_saved_segments_and_the_cli(people: Database, project: Path, db_url: str):
    env = {**TEST_ENV, "MAILER_ROOT": str(project), "MAILER_DATABASE_URL": db_url, "MAILER_BACKEND": "memory"}
    run = CliRunner()
    r = run.invoke(cli, ["segments", "add", "east", "tag = eastfield and list != press"], env=env)
    assert r.exit_code == 0 and "segment east: 2 subscriber(s) now" in r.output, r.output
    r = run.invoke(cli, ["segments", "add", "east", "tag = x"], env=env)
    assert r.exit_code != 0 and "segment 'east' exists" in r.stderr
    r = run.invoke(cli, ["segments", "add", "bad", "tag ="], env=env)
    assert r.exit_code != 0 and r.stderr.strip() == "error: segment expression: at the end: expected a value after tag ="
    r = run.invoke(cli, ["segments"], env=env)
    assert "east" in r.output and "tag = eastfield and list != press" in r.output
    r = run.invoke(cli, ["segments", "show", "east"], env=env)
    assert "user0@example.net" in r.output and "user5" not in r.output
    r = run.invoke(cli, ["segments", "edit", "east", "tag = eastfield and list != press and email != user0@example.net"], env=env)
    assert r.exit_code == 0 and "segment east: 1 subscriber(s) now" in r.output, r.output
    r = run.invoke(cli, ["segments", "edit", "east", "tag = (oops"], env=env)
    assert r.exit_code != 0 and "segment expression: position 7" in r.stderr
    r = run.invoke(cli, ["segments", "edit", "nope", "tag = x"], env=env)
    assert r.exit_code != 0 and "no segment 'nope'" in r.stderr
    r = run.invoke(cli, ["segments", "show", "east"], env=env)
    assert r.output.endswith("1 subscriber(s)\n  user1@example.net\n"), r.output
    r = run.invoke(cli, ["subscribers", "tag", "user3@example.net", "Eastfield", "press-contact"], env=env)
    assert r.exit_code == 0 and "tags: eastfield, press-contact" in r.output, r.output
    r = run.invoke(cli, ["subscribers", "tag", "user3@example.net", "no spaces please"], env=env)
    assert r.exit_code != 0 and "use letters, digits" in r.stderr
    r = run.invoke(cli, ["subscribers", "untag", "user3@example.net", "press-contact"], env=env)
    assert r.exit_code == 0 and "1 tag(s) removed; tags: eastfield" in r.output
    r = run.invoke(cli, ["segments", "remove", "east"], env=env)
    assert r.exit_code == 0 and run.invoke(cli, ["segments", "show", "east"], env=env).exit_code != 0


def test_send_freezes_the_audience_its_options_ask_for_and_the_count_shown_is_what_is_frozen(
        people: Database, project: Path, db_url: str):
    env = {**TEST_ENV, "MAILER_ROOT": str(project), "MAILER_DATABASE_URL": db_url, "MAILER_BACKEND": "memory"}
    run = CliRunner()
    assert run.invoke(cli, ["segments", "add", "old", "created < 2025-12-31"], env=env).exit_code == 0
    args = ["send", "issues/example", "--list", "news", "--tag", "eastfield", "--tag", "millane",
            "--exclude-list", "press"]
    r = run.invoke(cli, [*args, "--dry-run"], env=env)
    assert r.exit_code == 0 and "would send" in r.output and "to 3 subscriber(s)" in r.output, r.output
    MemoryBackend.reset()
    r = run.invoke(cli, [*args, "--yes"], env=env)
    assert r.exit_code == 0, r.output + r.stderr
    assert sorted(m.recipient.split("@")[0] for m in MemoryBackend.outbox) == ["user0", "user1", "user2"]
    with people.session() as session:
        send = session.scalars(select(Send)).one()
        assert send.audience == {"tags": ["eastfield", "millane"], "exclude_lists": ["press"]}
        assert session.scalar(select(func.count()).select_from(Delivery)) == 3
    MemoryBackend.reset()
    r = run.invoke(cli, ["send", "issues/example", "--list", "news", "--again", "--exclude-segment", "old",
                         "--segment", "nobody-here", "--yes"], env=env)
    assert r.exit_code != 0 and "--segment nobody-here: no such segment" in r.stderr
    r = run.invoke(cli, ["send", "issues/example", "--list", "news", "--again", "--exclude-segment", "old",
                         "--yes"], env=env)
    assert r.exit_code == 0 and len(MemoryBackend.outbox) == 5          # all of news but user3
    MemoryBackend.reset()


def test_schedule_at_keeps_the_audience_and_cron_runs_freeze_it(people: Database, project: Path, db_url: str,
                                                                  db_settings: Settings):
    env = {**TEST_ENV, "MAILER_ROOT": str(project), "MAILER_DATABASE_URL": db_url, "MAILER_BACKEND": "memory"}
    r = CliRunner().invoke(cli, ["schedule", "issues/example", "--list", "news", "--tag", "volunteer",
                                 "--at", "tomorrow 09:00"], env=env)
    assert r.exit_code == 0, r.output + r.stderr
    with people.session() as session:
        assert session.scalars(select(Send)).one().audience == {"tags": ["volunteer"]}
    r = CliRunner().invoke(cli, ["schedule", "issues/example", "--list", "press", "--tag", "eastfield",
                                 "--exclude-segment", "nobody", "--cron", "0 9 * * FRI"], env=env)
    assert r.exit_code != 0 and "--exclude-segment nobody: no such segment" in r.stderr      # nothing planned
    r = CliRunner().invoke(cli, ["schedule", "issues/example", "--list", "press", "--tag", "eastfield",
                                 "--cron", "0 9 * * FRI", "--again"], env=env)
    assert r.exit_code == 0, r.output + r.stderr
    with people.session() as session:
        row = session.scalars(select(Schedule).where(Schedule.kind == ScheduleKind.CRON)).one()
        assert row.audience == {"tags": ["eastfield"]}
    tagging.tag(people, "user4@example.net", ["eastfield"])   # tagged after planning: the run sees it
    MemoryBackend.reset()
    assert "done" in execute(people, db_settings.replace(backend="memory"), row.id, now=row.next_run_at)
    with people.session() as session:
        send = session.scalars(select(Send).where(Send.id != 1).order_by(Send.id.desc())).first()
        assert send.audience == {"tags": ["eastfield"]}
        got = sorted(session.scalars(select(Subscriber.email).join(Delivery, Delivery.subscriber_id == Subscriber.id)
                                     .where(Delivery.send_id == send.id)))
    assert got == ["user4@example.net", "user5@example.net"]     # press (user4..7) tagged eastfield
    MemoryBackend.reset()


def test_a_digest_schedule_sends_each_run_to_its_audience(people: Database, project: Path, db_url: str,
                                                           db_settings: Settings):
    folder = project / "issues" / "weekly"
    (folder / "inbox").mkdir(parents=True)
    (folder / "issue.toml").write_text('subject = "Weekly, {date}"\nlists = ["news"]\n', encoding="utf-8")
    (folder / "inbox" / "a.md").write_text("---\ntitle: Food bank\n---\n\nOpen on Tuesday. Thank you.\n",
                                           encoding="utf-8")
    env = {**TEST_ENV, "MAILER_ROOT": str(project), "MAILER_DATABASE_URL": db_url, "MAILER_BACKEND": "memory"}
    r = CliRunner().invoke(cli, ["digest", "issues/weekly", "--cron", "0 9 * * FRI", "--segment", "nobody"], env=env)
    assert r.exit_code != 0 and "--segment nobody: no such segment" in r.stderr
    r = CliRunner().invoke(cli, ["digest", "issues/weekly", "--preview", "--tag", "eastfield"], env=env)
    assert r.exit_code != 0 and "go with --cron" in r.stderr
    r = CliRunner().invoke(cli, ["digest", "issues/weekly", "--cron", "0 9 * * FRI", "--tag", "eastfield",
                                 "--exclude-list", "press"], env=env)
    assert r.exit_code == 0, r.output + r.stderr
    with people.session() as session:
        row = session.scalars(select(Schedule)).one()
    assert row.audience == {"tags": ["eastfield"], "exclude_lists": ["press"]}
    listing = CliRunner().invoke(cli, ["schedule", "list"], env=env).output
    assert "weekly  lists=news (tagged eastfield; not on press)  digest" in listing
    MemoryBackend.reset()
    assert "done" in execute(people, db_settings.replace(backend="memory"), row.id, now=row.next_run_at)
    with people.session() as session:
        send = session.scalars(select(Send)).one()
        got = sorted(session.scalars(select(Subscriber.email).join(Delivery, Delivery.subscriber_id == Subscriber.id)
                                     .where(Delivery.send_id == send.id)))
    assert send.audience == {"tags": ["eastfield"], "exclude_lists": ["press"]}
    assert got == ["user0@example.net", "user1@example.net"]     # user5 is in press
    MemoryBackend.reset()


def test_an_import_tags_column_gives_tags_and_a_bad_tag_rejects_its_row(db: Database, settings: Settings,
                                                                         tmp_path: Path):
    make_list(db, "news")
    csv = tmp_path / "people.csv"
    csv.write_text("email,name,tags\nana@example.org,Ana,\"Eastfield; volunteer\"\nbo@example.org,Bo,"
                   "has space\ncy@example.org,,\n", encoding="utf-8")
    report = import_csv(db, settings, csv, "news", confirmed=True, rejects_path=tmp_path / "rejects.csv")
    assert report.accepted == 2 and report.rejected == 1
    assert "line 3" in (tmp_path / "rejects.csv").read_text() or report.first_rejects[0][0] == 3
    assert "column 'tags': tag 'has space'" in report.first_rejects[0][1]
    with db.session() as session:
        rows = session.execute(select(Subscriber.email, SubscriberTag.tag).join(SubscriberTag)
                               .order_by(SubscriberTag.tag)).all()
        assert [tuple(r) for r in rows] == [("ana@example.org", "eastfield"), ("ana@example.org", "volunteer")]
        assert session.scalar(select(Subscriber.attributes).where(Subscriber.email == "ana@example.org")) == {}
