"""Digests: an inbox of reports composed at each run into a new dated issue, each report sent once.

Runs are driven by calling the run function with successive occurrences (cron has no seconds),
by two real processes racing for one occurrence, and once by the real `mailer scheduler` daemon.
Mails are counted as the .eml files of the file backend.
"""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from mailer.cli import cli
from mailer.models import Schedule, ScheduleKind, Send, SendStatus
from mailer.scheduling import digest
from mailer.scheduling.plans import schedule_digest
from tests.helpers import wait_for
from tests.schedule_support import Daemon, add_list, emls, env_for

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
T0 = datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc)
SUBSCRIBERS = 3


@pytest.fixture
def weekly(project: Path) -> Path:
    folder = project / "issues" / "weekly"
    (folder / "inbox").mkdir(parents=True)
    (folder / "issue.toml").write_text('subject = "Weekly reports, {date}"\nlists = ["news"]\n'
                                       'intro = "What happened this week."\n', encoding="utf-8")
    return folder


def drop(folder: Path, name: str, title: str) -> Path:
    """A report arriving in the inbox the way writers should: written aside, renamed in."""
    tmp = folder / "inbox" / f".{name}.part"
    tmp.write_text(f"---\ntitle: {title}\n---\n\nThe {title.lower()} went well. Thank you all.\n",
                   encoding="utf-8")
    return tmp.rename(folder / "inbox" / name)


def titles_sent(project: Path) -> list[str]:
    """Every report title in every mail the file backend wrote (one entry per mail and report)."""
    found = []
    for path in emls(project):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_content()
        found += [line.strip() for line in text.splitlines() if line.strip().startswith("Report ")]
    return found


def run(db, settings, folder: Path, when: datetime, min_reports: int = 1) -> digest.DigestRun:  # type: ignore[no-untyped-def]
    result = digest.run_digest(db, settings, folder, ["news"], when, "Europe/London", min_reports)
    digest.send_run(db, settings, result)
    return result


@pytest.fixture
def news(db, db_settings):  # type: ignore[no-untyped-def]
    add_list(db, db_settings, subscribers=SUBSCRIBERS)
    return db_settings


def test_reports_dropped_between_runs_each_go_out_in_exactly_one_digest(db, news, project, weekly):
    drop(weekly, "a.md", "Report Alpha")
    drop(weekly, "b.md", "Report Beta")
    first = run(db, news, weekly, T0)
    drop(weekly, "c.md", "Report Gamma")
    second = run(db, news, weekly, T0 + timedelta(seconds=5))
    third = run(db, news, weekly, T0 + timedelta(seconds=10))   # nothing arrived: skipped
    assert (first.status, second.status, third.status) == ("sent", "sent", "skipped")
    assert first.issue == project / "issues" / "weekly-2026-12-04"
    assert second.issue == project / "issues" / "weekly-2026-12-04-090005"
    assert sorted(p.name for p in (first.issue / "reports").iterdir()) == ["a.md", "b.md"]
    assert [p.name for p in (second.issue / "reports").iterdir()] == ["c.md"]
    assert digest.inbox_files(weekly) == []
    assert len(emls(project)) == 2 * SUBSCRIBERS
    sent = titles_sent(project)
    assert sorted(set(sent)) == ["Report Alpha", "Report Beta", "Report Gamma"]
    assert all(sent.count(t) == SUBSCRIBERS for t in set(sent))     # once per subscriber, in one digest
    spec = (first.issue / "issue.toml").read_text(encoding="utf-8")
    assert 'subject = "Weekly reports, 4 December 2026"' in spec and 'date = "2026-12-04"' in spec
    with db.session() as session:
        sends = list(session.scalars(select(Send).order_by(Send.id)))
    assert [(s.issue_slug, s.status) for s in sends] == [("weekly-2026-12-04", SendStatus.DONE),
                                                         ("weekly-2026-12-04-090005", SendStatus.DONE)]


def test_a_run_with_too_few_reports_is_skipped_and_they_wait_for_the_next(db, news, project, weekly):
    drop(weekly, "a.md", "Report Alpha")
    skipped = run(db, news, weekly, T0, min_reports=2)
    assert skipped.status == "skipped" and "1 report(s), fewer than the 2 needed" in skipped.message
    assert [p.name for p in digest.inbox_files(weekly)] == ["a.md"] and emls(project) == []
    drop(weekly, "b.md", "Report Beta")
    sent = run(db, news, weekly, T0 + timedelta(seconds=5), min_reports=2)
    assert sent.status == "sent" and sent.reports == ["a.md", "b.md"]
    assert len(emls(project)) == SUBSCRIBERS


def test_the_same_occurrence_run_twice_sends_once(db, news, project, weekly):
    drop(weekly, "a.md", "Report Alpha")
    assert run(db, news, weekly, T0).status == "sent"
    drop(weekly, "b.md", "Report Beta")
    again = run(db, news, weekly, T0)
    assert again.status == "claimed" and len(emls(project)) == SUBSCRIBERS
    assert [p.name for p in digest.inbox_files(weekly)] == ["b.md"]    # left for the next run


RACER = textwrap.dedent("""
    import sys, time
    from datetime import datetime, timezone
    from pathlib import Path
    from mailer.config import Settings
    from mailer.db import Database
    from mailer.scheduling import digest
    root, url, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    settings = Settings(root=root, database_url=url, secret_keys=("test-secret-key-newest",),
                        hash_key="test-hash-key", base_url="https://news.example.org")
    db = Database(url)
    while not go.exists():
        time.sleep(0.005)
    run = digest.run_digest(db, settings, root / "issues" / "weekly", ["news"],
                            datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc), "UTC", 1)
    digest.send_run(db, settings, run)
    print(run.status)
""")


@sqlite_only
def test_two_processes_racing_for_one_occurrence_send_once(db, news, project, weekly, tmp_path):
    for i in range(4):
        drop(weekly, f"r{i}.md", f"Report {i}")
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(project), db.url, str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(1.0)   # both started and waiting
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sorted(o.strip() for o, _ in outs) == ["claimed", "sent"]
    assert len(emls(project)) == SUBSCRIBERS
    assert sorted(set(titles_sent(project))) == [f"Report {i}" for i in range(4)]
    assert len(list((project / "issues").glob("weekly-*"))) == 1


def test_a_run_staged_before_a_crash_is_finished_by_recovery_once(db, news, project, weekly):
    schedule_digest(db, news, weekly, ("news",), "0 9 * * FRI", "Europe/London", 1)
    drop(weekly, "a.md", "Report Alpha")
    drop(weekly, "b.md", "Report Beta")
    # what run_digest does up to the crash: claim the occurrence and stage the inbox, nothing more
    stage = weekly / digest.RUNS / "2026-12-04T090000Z"
    stage.mkdir(parents=True)
    (stage / digest.RUN_FILE).write_text(json.dumps({"occurrence": "2026-12-04T09:00:00Z", "lists": ["news"],
                                                     "zone": "UTC", "min_reports": 1}), encoding="utf-8")
    for path in digest.inbox_files(weekly):
        path.rename(stage / path.name)
    assert digest.unfinished(weekly) == [stage]
    recovered = digest.recover(db, news)
    assert [r.status for r in recovered] == ["sent"]
    digest.send_run(db, news, recovered[0])
    assert digest.recover(db, news) == [] and digest.unfinished(weekly) == []
    assert run(db, news, weekly, T0).status == "claimed"   # the late scheduler's run of the same time
    assert len(emls(project)) == SUBSCRIBERS
    assert sorted(set(titles_sent(project))) == ["Report Alpha", "Report Beta"]


def test_a_crash_after_the_send_was_made_does_not_make_a_second(db, news, project, weekly):
    drop(weekly, "a.md", "Report Alpha")
    first = digest.run_digest(db, news, weekly, ["news"], T0, "UTC", 1)
    (weekly / digest.RUNS / "2026-12-04T090000Z" / digest.STATE_FILE).unlink()   # died before recording it
    again = digest.finish(db, news, weekly / digest.RUNS / "2026-12-04T090000Z")
    assert again.status == "claimed" and again.send_id == first.send_id
    digest.send_run(db, news, first)
    with db.session() as session:
        assert session.scalar(select(Send.id).where(Send.id != first.send_id)) is None
    assert len(emls(project)) == SUBSCRIBERS


def test_a_bad_report_is_set_aside_with_its_error_and_the_rest_go_out(db, news, project, weekly):
    drop(weekly, "a.md", "Report Alpha")
    (weekly / "inbox" / "notes.pdf").write_bytes(b"%PDF-1.4")
    (weekly / "inbox" / "broken.md").write_bytes(b"\xff\xfe not utf-8 \xff")
    result = run(db, news, weekly, T0)
    assert result.status == "sent" and result.reports == ["a.md"]
    rejected = weekly / "inbox" / "rejected"
    assert sorted(p.name for p in rejected.iterdir()) == ["broken.md", "broken.md.error", "notes.pdf",
                                                          "notes.pdf.error"]
    assert "unknown report type '.pdf'" in (rejected / "notes.pdf.error").read_text()
    assert "UTF-8" in (rejected / "broken.md.error").read_text()
    assert digest.inbox_files(weekly) == []
    assert len(emls(project)) == SUBSCRIBERS and set(titles_sent(project)) == {"Report Alpha"}


def test_preview_composes_the_next_digest_and_moves_nothing(db, news, project, weekly):
    drop(weekly, "a.md", "Report Alpha")
    drop(weekly, "b.md", "Report Beta")
    (weekly / "inbox" / "notes.pdf").write_bytes(b"%PDF-1.4")
    before = sorted(p.name for p in (weekly / "inbox").iterdir())
    env = env_for(project, db.url)
    out = CliRunner().invoke(cli, ["digest", "issues/weekly", "--preview"], env=env)
    assert out.exit_code == 0, out.output
    assert "next digest of weekly: 'Weekly reports, " in out.output and "2 report(s)" in out.output
    assert "set aside: notes.pdf: " in out.output
    assert sorted(p.name for p in (weekly / "inbox").iterdir()) == before
    assert not (weekly / digest.RUNS).exists() and list((project / "issues").glob("weekly-*")) == []
    short = CliRunner().invoke(cli, ["digest", "issues/weekly", "--preview", "--min-reports", "3"], env=env)
    assert "would be skipped: 2 report(s), fewer than the 3 needed" in short.output
    assert emls(project) == []


def test_the_digest_command_plans_a_digest_schedule(db, news, project, weekly):
    env = env_for(project, db.url)
    out = CliRunner().invoke(cli, ["digest", "issues/weekly", "--list", "news", "--cron", "0 9 * * FRI",
                                   "--tz", "Europe/London", "--min-reports", "2"], env=env)
    assert out.exit_code == 0, out.output
    with db.session() as session:
        row = session.scalars(select(Schedule)).one()
    assert (row.kind, row.cron, row.timezone, row.min_reports, row.list_slugs) == (
        ScheduleKind.DIGEST, "0 9 * * FRI", "Europe/London", 2, ["news"])
    listing = CliRunner().invoke(cli, ["schedule", "list"], env=env).output
    assert f"{row.id}  weekly  lists=news  digest (cron '0 9 * * FRI') next" in listing
    bad = CliRunner().invoke(cli, ["digest", "issues/weekly", "--cron", "0 9 * * FRI", "--min-reports", "0"],
                             env=env)
    assert bad.exit_code != 0 and "--min-reports: 0 must be at least 1" in bad.output
    missing = CliRunner().invoke(cli, ["digest", "issues/nothing", "--cron", "0 9 * * FRI"], env=env)
    assert missing.exit_code != 0 and "issue.toml: missing" in missing.output
    assert "Traceback" not in bad.output + missing.output


@sqlite_only
def test_the_scheduler_daemon_runs_a_digest_every_few_seconds(db, news, project, weekly, tmp_path):
    """The real daemon: a run due every few seconds (next_run_at moved ahead by hand, as cron has no
    seconds); one with too few reports is skipped and says so; each report goes out once."""
    row = schedule_digest(db, news, weekly, ("news",), "0 9 * * FRI", "UTC", 1)

    def due_in(seconds: float) -> datetime:
        when = (datetime.now(timezone.utc) + timedelta(seconds=seconds)).replace(microsecond=0)
        with db.session() as session:
            session.execute(update(Schedule).where(Schedule.id == row.id).values(next_run_at=when))
        return when

    def reason() -> str:
        with db.session() as session:
            return session.get(Schedule, row.id).status_reason

    daemon = Daemon(env_for(project, db.url), log=tmp_path / "d.log")
    try:
        daemon.wait_log("jobs: ")
        drop(weekly, "a.md", "Report Alpha")
        drop(weekly, "b.md", "Report Beta")
        due_in(2)
        wait_for(lambda: len(emls(project)) == SUBSCRIBERS and "send" in reason(), 30, "the first digest")
        skipped = due_in(2)
        wait_for(lambda: "skipped" in reason(), 30, "the skipped run")
        assert f"run of {skipped:%Y-%m-%dT%H:%M:%SZ} skipped: 0 report(s)" in reason()
        listing = CliRunner().invoke(cli, ["schedule", "list"], env=env_for(project, db.url)).output
        assert "skipped: 0 report(s), fewer than the 1 needed" in listing
        drop(weekly, "c.md", "Report Gamma")
        due_in(2)
        wait_for(lambda: len(emls(project)) == 2 * SUBSCRIBERS and "done" in reason(), 30, "the second digest")
    finally:
        assert daemon.stop() == 0
    assert "skipped: 0 report(s)" in daemon.log
    sent = titles_sent(project)
    assert sorted(set(sent)) == ["Report Alpha", "Report Beta", "Report Gamma"]
    assert all(sent.count(t) == SUBSCRIBERS for t in set(sent))


@sqlite_only
def test_the_daemon_restarted_after_a_crash_mid_digest_sends_it_once(db, news, project, weekly, tmp_path):
    """A run claimed and staged by a scheduler that then died: the next `mailer scheduler` finishes it
    at start, once, and the reports of the staged run are not taken again by the next run."""
    schedule_digest(db, news, weekly, ("news",), "0 9 * * FRI", "UTC", 1)
    drop(weekly, "a.md", "Report Alpha")
    stage = weekly / digest.RUNS / "2026-12-04T090000Z"
    stage.mkdir(parents=True)
    (stage / digest.RUN_FILE).write_text(json.dumps({"occurrence": "2026-12-04T09:00:00Z", "lists": ["news"],
                                                     "zone": "UTC", "min_reports": 1}), encoding="utf-8")
    (weekly / "inbox" / "a.md").rename(stage / "a.md")
    drop(weekly, "b.md", "Report Beta")   # arrived after the crashed run took its reports
    daemon = Daemon(env_for(project, db.url), log=tmp_path / "d.log")
    try:
        daemon.wait_log("run 2026-12-04T090000Z was interrupted; finishing it")
        wait_for(lambda: len(emls(project)) == SUBSCRIBERS, 30, "the recovered digest")
        daemon.wait_log("weekly-2026-12-04: 1 report(s) as send")
    finally:
        assert daemon.stop() == 0
    again = Daemon(env_for(project, db.url), log=tmp_path / "d2.log")
    try:
        again.wait_log("jobs: ")
    finally:
        assert again.stop() == 0
    assert "interrupted" not in again.log and digest.unfinished(weekly) == []
    assert len(emls(project)) == SUBSCRIBERS and set(titles_sent(project)) == {"Report Alpha"}
    assert [p.name for p in digest.inbox_files(weekly)] == ["b.md"]


def test_a_digest_whose_issue_does_not_compose_sends_nothing_and_keeps_the_reports(db, news, project, weekly):
    (weekly / "issue.toml").write_text('subject = "Weekly {date}"\ntemplate = "missing.html"\n', encoding="utf-8")
    drop(weekly, "a.md", "Report Alpha")
    failed = run(db, news, weekly, T0)
    assert failed.status == "failed" and "missing.html" in failed.message and "\n" not in failed.message
    assert [p.name for p in digest.inbox_files(weekly)] == ["a.md"]
    assert list((project / "issues").glob("weekly-*")) == [] and emls(project) == []
    with db.session() as session:
        assert session.scalar(select(Send.id)) is None
    (weekly / "issue.toml").write_text('subject = "Weekly {date}"\n', encoding="utf-8")
    assert run(db, news, weekly, T0 + timedelta(seconds=5)).status == "sent"
    assert len(emls(project)) == SUBSCRIBERS
