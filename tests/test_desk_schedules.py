"""The desk's schedule pages: the list with next runs in the group's zone, move, cancel (confirmed),
refresh, the scheduler's and senders' liveness, bad input, audit.

Run on SQLite and PostgreSQL (the `db` fixture), through the Flask test client; the schedules are
made by the functions `mailer schedule` and `mailer digest` call.
"""

from __future__ import annotations

import html
import socket
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailer.cli import cli
from mailer.liveness import Heartbeat, SCHEDULER, SCHEDULER_ONCE
from mailer.models import DeskAudit, Lease, Schedule, ScheduleStatus, Send, SendStatus, utcnow
from mailer.scheduling.plans import schedule_cron, schedule_digest, schedule_once
from tests.desk_fixtures import EDITOR, Desk, desk, text_of, web_app  # noqa: F401
from tests.helpers import TEST_ENV, make_issue

ZONE = "Europe/London"
FUTURE = "2031-07-01 09:00"     # 08:00 UTC (BST)


@pytest.fixture
def london(desk: Desk) -> Desk:
    """The desk with the group's zone Europe/London."""
    ext = desk.web.app.extensions["mailer"]
    ext.settings = ext.settings.replace(schedule_timezone=ZONE)
    desk.web.settings = ext.settings
    return desk


def once(desk: Desk, at: str = FUTURE, tz: str = ZONE) -> int:
    return schedule_once(desk.web.db, desk.web.settings, "issues/example", ("news",), at, tz).id


def row(desk: Desk, schedule_id: int) -> Schedule:
    with desk.web.db.session() as session:
        return session.get(Schedule, schedule_id)


def send_status(desk: Desk, send_id: int) -> SendStatus:
    with desk.web.db.session() as session:
        return session.get(Send, send_id).status


def audit_rows(desk: Desk) -> list[tuple[str, str, str, str]]:
    with desk.web.db.session() as session:
        return [(r.action, r.actor, r.target, r.detail) for r in session.scalars(
            select(DeskAudit).where(DeskAudit.action.like("schedule_%")).order_by(DeskAudit.id))]


def test_every_kind_is_listed_with_its_next_run_in_the_group_zone(london: Desk) -> None:
    desk = london
    one = once(desk)
    weekly = schedule_cron(desk.web.db, desk.web.settings, make_issue(desk.web.settings.root, "weekly-news", {}),
                           ("news",), "0 9 * * FRI", "America/New_York").id
    folder = make_issue(desk.web.settings.root, "digest", {})
    (folder / "inbox").mkdir()
    digest = schedule_digest(desk.web.db, desk.web.settings, folder, ("news", "bulletin"), "30 8 * * MON", ZONE).id
    page = desk.editor.get("/desk/schedules")
    assert page.status_code == 200 and 'aria-current="page">Schedules' in page.text
    text = text_of(page.text)
    assert f"example (#{one}) news one-off Tue 01 Jul 2031, 09:00 BST scheduled" in text
    assert f"weekly-news (#{weekly}) news recurring 0 9 * * FRI" in text
    assert "EST" in text or "EDT" in text            # its own zone shown beside the group's
    assert f"digest (#{digest}) news, bulletin digest 30 8 * * MON" in text
    assert "Times are in Europe/London" in text


def test_move_a_one_off_to_a_new_local_time(london: Desk) -> None:
    desk = london
    sid = once(desk)
    page = desk.editor.get(f"/desk/schedules/{sid}")
    assert 'value="2031-07-01T09:00"' in page.text and "(Europe/London)" in page.text
    done = desk.post(desk.editor, f"/desk/schedules/{sid}/move", {"at": "2031-12-24T18:30"},
                     form_page=f"/desk/schedules/{sid}")
    assert done.status_code == 303 and done.headers["Location"] == f"/desk/schedules/{sid}?done=moved"
    moved = row(desk, sid)
    assert moved.run_at.replace(tzinfo=timezone.utc) == datetime(2031, 12, 24, 18, 30, tzinfo=timezone.utc)  # GMT
    assert "The schedule was moved." in desk.editor.get(done.headers["Location"]).text
    assert audit_rows(desk) == [("schedule_move", EDITOR, f"schedule {sid}", "at=2031-12-24T18:30")]


@pytest.mark.parametrize(("at", "words"), [
    ("2020-01-01T09:00", "new date and time: 2020-01-01 09:00:00 GMT (09:00:00 UTC) is in the past"),
    ("next tuesday", "new date and time: cannot read 'next tuesday' as a time"),
    ("", "new date and time: choose the day and the time"),
])
def test_a_bad_time_is_422_and_moves_nothing(london: Desk, at: str, words: str) -> None:
    desk = london
    sid = once(desk)
    refused = desk.post(desk.editor, f"/desk/schedules/{sid}/move", {"at": at}, form_page=f"/desk/schedules/{sid}")
    assert refused.status_code == 422 and words.lower() in html.unescape(refused.text).lower()
    assert 'id="at"' in refused.text and 'aria-invalid="true"' in refused.text
    assert row(desk, sid).run_at.replace(tzinfo=timezone.utc) == datetime(2031, 7, 1, 8, 0, tzinfo=timezone.utc)
    assert audit_rows(desk) == []


def test_move_a_recurring_schedule_to_a_new_cron_and_refuse_a_bad_one(london: Desk) -> None:
    desk = london
    sid = schedule_cron(desk.web.db, desk.web.settings, make_issue(desk.web.settings.root, "weekly-news", {}),
                        ("news",), "0 9 * * FRI", ZONE).id
    page = desk.editor.get(f"/desk/schedules/{sid}").text
    assert 'value="0 9 * * FRI"' in page and "composed afresh at each run" in page and "/refresh" not in page
    bad = desk.post(desk.editor, f"/desk/schedules/{sid}/move", {"cron": "every friday"},
                    form_page=f"/desk/schedules/{sid}")
    assert bad.status_code == 422 and "cron: 'every friday' has 2 fields" in html.unescape(bad.text).lower()
    assert row(desk, sid).cron == "0 9 * * FRI"
    done = desk.post(desk.editor, f"/desk/schedules/{sid}/move", {"cron": "15 7 * * MON"},
                     form_page=f"/desk/schedules/{sid}")
    assert done.status_code == 303 and row(desk, sid).cron == "15 7 * * MON"
    assert audit_rows(desk) == [("schedule_move", EDITOR, f"schedule {sid}", "cron=15 7 * * MON")]


def test_cancel_asks_first_then_cancels_the_schedule_and_its_send(london: Desk) -> None:
    desk = london
    sid = once(desk)
    send_id = row(desk, sid).send_id
    ask = desk.editor.get(f"/desk/schedules/{sid}/cancel")
    assert ask.status_code == 200 and "Nothing of it will be sent" in ask.text
    assert row(desk, sid).status is ScheduleStatus.SCHEDULED          # asking changed nothing
    done = desk.post(desk.editor, f"/desk/schedules/{sid}/cancel", form_page=f"/desk/schedules/{sid}/cancel")
    assert done.status_code == 303 and done.headers["Location"] == "/desk/schedules?done=cancelled"
    assert row(desk, sid).status is ScheduleStatus.CANCELLED and send_status(desk, send_id) is SendStatus.CANCELLED
    listed = desk.editor.get("/desk/schedules?done=cancelled").text
    assert "The schedule was cancelled" in listed and f"#{sid}" not in listed
    assert f"#{sid}" in desk.editor.get("/desk/schedules?all=1").text
    again = desk.post(desk.editor, f"/desk/schedules/{sid}/cancel", form_page=f"/desk/schedules/{sid}")
    assert again.status_code == 409 and "nothing to cancel" in again.text
    moved = desk.post(desk.editor, f"/desk/schedules/{sid}/move", {"at": "2031-12-24T18:30"},
                      form_page=f"/desk/schedules/{sid}")
    assert moved.status_code == 409 and "only scheduled or missed ones move" in moved.text
    assert audit_rows(desk) == [("schedule_cancel", EDITOR, f"schedule {sid}", "")]


def test_refresh_recomposes_a_one_off_so_the_current_reports_go_out(london: Desk) -> None:
    desk = london
    folder = make_issue(desk.web.settings.root, "spring", {"a.md": "---\ntitle: First\n---\n\nHello there.\n"})
    sid = schedule_once(desk.web.db, desk.web.settings, folder, ("news",), FUTURE, ZONE).id
    old_send = row(desk, sid).send_id
    (folder / "reports" / "b.md").write_text("---\ntitle: Second\n---\n\nMore news.\n", encoding="utf-8")
    assert "out of date" in desk.editor.get("/desk/schedules").text
    assert "changed since it was scheduled" in desk.editor.get(f"/desk/schedules/{sid}").text
    done = desk.post(desk.editor, f"/desk/schedules/{sid}/refresh", form_page=f"/desk/schedules/{sid}")
    assert done.status_code == 200 and "composed again" in done.text
    new_send = row(desk, sid).send_id
    assert new_send != old_send and send_status(desk, old_send) is SendStatus.CANCELLED
    assert send_status(desk, new_send) is SendStatus.SCHEDULED
    assert "out of date" not in desk.editor.get("/desk/schedules").text
    assert audit_rows(desk) == [("schedule_refresh", EDITOR, f"schedule {sid}", "")]


def test_refresh_of_an_issue_that_no_longer_composes_is_422_and_keeps_the_snapshot(london: Desk) -> None:
    desk = london
    folder = make_issue(desk.web.settings.root, "spring", {"a.md": "---\ntitle: First\n---\n\nHello.\n"})
    sid = schedule_once(desk.web.db, desk.web.settings, folder, ("news",), FUTURE, ZONE).id
    send_id = row(desk, sid).send_id
    (folder / "issue.toml").write_text("subject = [broken\n", encoding="utf-8")
    refused = desk.post(desk.editor, f"/desk/schedules/{sid}/refresh", form_page=f"/desk/schedules/{sid}")
    assert refused.status_code == 422 and "issue.toml" in refused.text
    assert row(desk, sid).send_id == send_id and send_status(desk, send_id) is SendStatus.SCHEDULED
    assert audit_rows(desk) == []


def test_an_unknown_schedule_is_404(london: Desk) -> None:
    desk = london
    for path in ("/desk/schedules/999", "/desk/schedules/999/cancel"):
        assert desk.editor.get(path).status_code == 404
    token = desk.token(desk.editor, "/desk/schedules")
    for action in ("move", "cancel", "refresh"):
        assert desk.editor.post(f"/desk/schedules/999/{action}", data={"csrf_token": token,
                                                                       "at": "2031-01-01T10:00"}).status_code == 404


def test_posts_without_the_csrf_token_are_400_and_change_nothing(london: Desk) -> None:
    desk = london
    sid = once(desk)
    for action in ("move", "cancel", "refresh"):
        assert desk.editor.post(f"/desk/schedules/{sid}/{action}", data={"at": "2031-12-24T18:30"}).status_code == 400
        forged = desk.editor.post(f"/desk/schedules/{sid}/{action}",
                                  data={"at": "2031-12-24T18:30", "csrf_token": "0" * 64})
        assert forged.status_code == 400
    assert row(desk, sid).status is ScheduleStatus.SCHEDULED and audit_rows(desk) == []
    assert desk.web.client.get("/desk/schedules").headers["Location"] == "/desk/login"


def test_script_in_an_issue_folder_name_renders_as_text(london: Desk) -> None:
    desk = london
    folder = make_issue(desk.web.settings.root, "x<script>alert(1)<", {}, subject="<b>bold</b>")
    sid = schedule_cron(desk.web.db, desk.web.settings, folder, ("news",), "0 9 * * FRI", ZONE).id
    for path in ("/desk/schedules", f"/desk/schedules/{sid}", f"/desk/schedules/{sid}/cancel"):
        page = desk.editor.get(path).text
        assert "<script>alert(1)" not in page and "x&lt;script&gt;alert(1)&lt;" in page


def test_liveness_shows_the_scheduler_and_senders_with_when_they_were_last_seen(london: Desk) -> None:
    desk = london
    page = text_of(desk.editor.get("/desk/schedules").text)
    assert "No scheduler is running: nothing scheduled will be sent" in page and "No process is sending now" in page
    holder = f"{socket.gethostname()}:{__import__('os').getpid()}"
    Heartbeat(desk.web.db, holder, name=SCHEDULER).beat()           # this process: alive by its pid
    sender = Heartbeat(desk.web.db, "elsewhere:42")                 # another host: judged by its beat
    sender.beat()
    page = text_of(desk.editor.get("/desk/schedules").text)
    assert f"running The scheduler runs on {holder}" in page and "last seen" in page
    assert "sending Sending process elsewhere:42: last seen" in page
    stale = utcnow() - timedelta(minutes=10)
    with desk.web.db.session() as session:
        session.get(Lease, "sender:elsewhere:42").heartbeat_at = stale
        session.get(Lease, SCHEDULER).holder = "elsewhere:7"
        session.get(Lease, SCHEDULER).heartbeat_at = stale
    page = text_of(desk.editor.get("/desk/schedules").text)
    assert "No scheduler is running" in page and "Last seen on elsewhere:7" in page
    assert "silent Sending process elsewhere:42" in page
    Heartbeat(desk.web.db, "cron:1", name=SCHEDULER_ONCE).beat()    # `scheduler --once` just ran
    assert "runs from cron" in text_of(desk.editor.get("/desk/schedules").text)


def test_the_cli_schedule_list_reads_the_same_liveness(london: Desk) -> None:
    desk = london
    settings = desk.web.settings
    env = {**TEST_ENV, "MAILER_ROOT": str(settings.root), "MAILER_DATABASE_URL": desk.web.db.url}
    Heartbeat(desk.web.db, "elsewhere:7", name=SCHEDULER).beat()
    out = CliRunner().invoke(cli, ["schedule", "list"], env=env)
    assert out.exit_code == 0 and "scheduler: running on elsewhere:7 since" in out.output
