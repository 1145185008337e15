"""Digests on the desk: the digest folders, one digest's inbox, what a run set aside, the next digest's
preview (nothing moved), adding and removing inbox reports, planning it; bad input, path tricks, audit.
SQLite and PostgreSQL (the `desk` fixture), through the Flask test client; a real run afterwards.
"""

from __future__ import annotations

import html
import io
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from mailer.models import DeskAudit, Schedule, ScheduleKind
from mailer.scheduling import digest as digest_run
from tests.desk_fixtures import EDITOR, Desk, desk, text_of, web_app  # noqa: F401
from tests.helpers import add_subscribers
from tests.docx_files import docx

PAGE = "/desk/digests/weekly"


def words(answer) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(text_of(answer.text))


@pytest.fixture
def weekly(desk: Desk) -> Path:
    folder = desk.web.settings.root / "issues" / "weekly"
    (folder / "inbox").mkdir(parents=True)
    (folder / "issue.toml").write_text('subject = "Weekly reports, {date}"\nlists = ["news"]\n'
                                       'intro = "What happened this week."\n', encoding="utf-8")
    add_subscribers(desk.web.db, "news", 2, settings=desk.web.settings)
    return folder


def drop(folder: Path, name: str, text: str) -> None:
    tmp = folder / "inbox" / f".{name}.part"
    tmp.write_text(text, encoding="utf-8")
    tmp.rename(folder / "inbox" / name)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def audit_rows(desk: Desk) -> list[tuple[str, str, str]]:
    with desk.web.db.session() as session:
        return [(r.action, r.actor, r.target) for r in session.scalars(
            select(DeskAudit).where(DeskAudit.action.like("digest_%")).order_by(DeskAudit.id))]


def schedules(desk: Desk) -> list[Schedule]:
    with desk.web.db.session() as session:
        return list(session.scalars(select(Schedule).order_by(Schedule.id)))


def test_the_digest_list_and_page_show_the_inbox_and_the_next_digest_moving_nothing(desk: Desk, weekly: Path) -> None:
    drop(weekly, "a.md", "---\ntitle: Rent strike\n---\n\nThe rent strike holds on Mill Lane.\n")
    drop(weekly, "b.txt", "Bakery picket\n\nWe stood outside the bakery from six.\n")
    drop(weekly, "c.md", "---\ntitle: [unclosed\n\nBroken front matter.\n")
    listed = desk.editor.get("/desk/digests")
    assert listed.status_code == 200 and 'aria-current="page">Digests' in listed.text
    assert "weekly 3 not planned none yet" in words(listed)
    before = snapshot(weekly)
    page = desk.editor.get(PAGE)
    assert page.status_code == 200
    text = words(page)
    assert "Rent strike" in text and "Bakery picket" in text and "c.md" in text and "never closed" in text
    assert "A run now would send Weekly reports," in text and "with 2 reports: a.md, b.txt" in text
    assert "It would set aside: c.md" in text
    frame = desk.editor.get(f"{PAGE}/preview/named")
    assert frame.status_code == 200 and "The rent strike holds on Mill Lane." in frame.text
    assert "We stood outside the bakery" in frame.text and "What happened this week." in frame.text
    assert frame.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "We stood outside the bakery" in desk.editor.get(f"{PAGE}/preview/text").text
    assert desk.editor.get(f"{PAGE}/preview/evil").status_code == 404
    assert snapshot(weekly) == before                                  # looking moved nothing


def test_too_few_reports_says_the_run_would_be_skipped(desk: Desk, weekly: Path) -> None:
    desk.post(desk.editor, f"{PAGE}/schedule", {"cron": "0 9 * * FRI", "tz": "UTC", "min_reports": "3",
                                                 "list": ["news"]}, form_page=PAGE)
    drop(weekly, "a.md", "# One\n\nOnly one report.\n")
    assert "A run now would be skipped: 1 report, fewer than the 3 needed." in words(desk.editor.get(PAGE))
    (weekly / "inbox" / "a.md").unlink()
    empty = desk.editor.get(PAGE)
    assert "The inbox holds no report that composes" in words(empty) and "No reports are waiting." in words(empty)
    assert desk.editor.get(f"{PAGE}/preview/named").status_code == 422


def test_add_reports_to_the_inbox_and_remove_one_and_a_run_takes_them(desk: Desk, weekly: Path) -> None:
    done = desk.post(desk.editor, f"{PAGE}/inbox/paste", {"title": "", "text": "Tenants meeting\n\nForty came."},
                     form_page=PAGE)
    assert done.status_code == 303 and done.headers["Location"] == f"{PAGE}?done=added#inbox"
    body = docx('<w:p><w:r><w:t>Appeal for the strike fund</w:t></w:r></w:p><w:p><w:r><w:t>Give what you can.</w:t></w:r></w:p>')
    up = desk.post(desk.editor, f"{PAGE}/inbox/upload", {"title": "Strike fund", "file": (io.BytesIO(body), "appeal.docx")},
                   form_page=PAGE, content_type="multipart/form-data")
    assert up.status_code == 303
    names = sorted(p.name for p in (weekly / "inbox").iterdir() if p.is_file())
    assert names == ["01-tenants-meeting.txt", "02-strike-fund.md"], names
    assert not [p for p in weekly.iterdir() if p.name.startswith(".desk-")]      # nothing half-written left
    assert "Forty came." in (weekly / "inbox" / "01-tenants-meeting.txt").read_text(encoding="utf-8")
    ask = desk.editor.get(f"{PAGE}/inbox/01-tenants-meeting.txt/remove")
    assert ask.status_code == 200 and "Tenants meeting" in ask.text
    gone = desk.post(desk.editor, f"{PAGE}/inbox/01-tenants-meeting.txt/remove", form_page=PAGE)
    assert gone.status_code == 303 and not (weekly / "inbox" / "01-tenants-meeting.txt").exists()
    assert audit_rows(desk) == [("digest_report_add", EDITOR, "weekly/inbox/01-tenants-meeting.txt"),
                                ("digest_report_add", EDITOR, "weekly/inbox/02-strike-fund.md"),
                                ("digest_report_remove", EDITOR, "weekly/inbox/01-tenants-meeting.txt")]
    result = digest_run.run_digest(desk.web.db, desk.web.settings, weekly, ["news"],
                                   datetime(2026, 12, 4, 9, 0, tzinfo=timezone.utc), "UTC", 1)
    assert result.status == "sent" and result.reports == ["02-strike-fund.md"]
    listed = words(desk.editor.get("/desk/digests"))
    assert "weekly 0 not planned weekly-2026-12-04" in listed


def test_plan_a_digest_from_the_desk(desk: Desk, weekly: Path) -> None:
    from mailer.people import tagging

    tagging.add_segment(desk.web.db, "ones", 'email contains "1@"')
    done = desk.post(desk.editor, f"{PAGE}/schedule", {"cron": "other", "cron_other": "30 17 * * WED",
                                                        "tz": "Europe/London", "min_reports": "2", "list": ["news"],
                                                        "segment": "ones"}, form_page=PAGE)
    assert done.status_code == 303 and done.headers["Location"] == f"{PAGE}?done=scheduled#schedules"
    [row] = schedules(desk)
    assert (row.kind, row.cron, row.timezone, row.min_reports, row.list_slugs) == \
        (ScheduleKind.DIGEST, "30 17 * * WED", "Europe/London", 2, ["news"])
    assert row.issue_path == str(weekly.resolve()) and row.audience == {"segment": 'email contains "1@"'}
    page = words(desk.editor.get(PAGE))
    assert "30 17 * * WED (Europe/London)" in page and 'in segment (email contains "1@")' in page
    assert audit_rows(desk) == [("digest_schedule", EDITOR, "digest weekly")]


@pytest.mark.parametrize(("fields", "shown"), [
    ({"cron": "other", "cron_other": "every friday"}, "When: 'every friday' has 2 fields"),
    ({"cron": "other", "cron_other": ""}, "When: choose when the digest goes out"),
    ({"tz": "Mars/Olympus"}, "Time zone: unknown time zone 'Mars/Olympus'"),
    ({"min_reports": "0"}, "At least: 0 must be at least 1"),
    ({"min_reports": "two"}, "At least: a whole number"),
    ({"list": ["nope"]}, "Lists: there is no list 'nope'"),
    ({"segment": "nope"}, "Only people in segment: nope: no such segment"),
])
def test_bad_plans_are_422_and_make_nothing(desk: Desk, weekly: Path, fields: dict, shown: str) -> None:
    data = {"cron": "0 9 * * FRI", "tz": "UTC", "min_reports": "1", "list": ["news"], **fields}
    refused = desk.post(desk.editor, f"{PAGE}/schedule", data, form_page=PAGE)
    assert refused.status_code == 422 and shown in words(refused), words(refused)[-500:]
    assert schedules(desk) == [] and audit_rows(desk) == []


def test_bad_reports_unknown_digests_and_path_tricks(desk: Desk, weekly: Path) -> None:
    for data, shown in (({"text": "   "}, "Text: paste the report's text"),
                        ({"text": "x" * 2_000_001}, "at most 2,000,000 characters")):
        refused = desk.post(desk.editor, f"{PAGE}/inbox/paste", data, form_page=PAGE)
        assert refused.status_code == 422 and shown in words(refused)
    bad_file = desk.post(desk.editor, f"{PAGE}/inbox/upload", {"file": (io.BytesIO(b"PK\x03\x04junk"), "a.docx")},
                         form_page=PAGE, content_type="multipart/form-data")
    assert bad_file.status_code == 422 and "a.docx" in words(bad_file)
    huge = desk.post(desk.editor, f"{PAGE}/inbox/upload", {"file": (io.BytesIO(b"x" * 11_000_000), "a.md")},
                     form_page=PAGE, content_type="multipart/form-data")
    assert huge.status_code == 413
    assert [p for p in (weekly / "inbox").iterdir()] == []
    (desk.web.settings.root / "issues" / "plain").mkdir()
    (desk.web.settings.root / "issues" / "plain" / "issue.toml").write_text('subject = "x"\n', encoding="utf-8")
    for path in ("/desk/digests/nope", "/desk/digests/plain", "/desk/digests/..%2F..%2Fetc",
                 "/desk/digests/weekly/inbox/nope.md/remove", "/desk/digests/nope/preview/named"):
        assert desk.editor.get(path).status_code == 404, path
    assert desk.post(desk.editor, "/desk/digests/weekly/inbox/..%2Fissue.toml/remove", form_page=PAGE).status_code == 404
    assert (weekly / "issue.toml").is_file()
    assert desk.editor.post(f"{PAGE}/inbox/paste", data={"text": "x"}).status_code == 400       # no CSRF token
    assert audit_rows(desk) == []
