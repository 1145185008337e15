"""The desk's sending pages: a test to me (file backend), send now after a confirmation with the
audience per list, schedule in the group's zone, progress (page and JSON), the delivery report with
each failure's reply, and the retries of failed and unknown rows; bad input; audit.

Run on SQLite and PostgreSQL (the `desk` fixture) through the Flask test client; sends are delivered
by `run_worker`, the loop `mailer worker` runs, with the memory backend and scripted outcomes.
"""

from __future__ import annotations

import email
import html
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailer.backends.base import DeliveryOutcome
from mailer.backends.memory import MemoryBackend
from mailer.models import Delivery, DeliveryStatus, DeskAudit, Schedule, Send, SendStatus
from mailer.sending.worker import run_worker
from tests.desk_fixtures import EDITOR, Desk, desk, text_of, web_app  # noqa: F401
from tests.helpers import add_subscribers, make_issue

SLUG = "2026-12-news"
ZONE = "Europe/London"
SEND = f"/desk/issues/{SLUG}/send"


@pytest.fixture
def sending(desk: Desk) -> Desk:
    """The desk with an issue to news, 3 confirmed readers of news and 2 of bulletin (one on both),
    and the group's zone Europe/London."""
    ext = desk.web.app.extensions["mailer"]
    ext.settings = ext.settings.replace(schedule_timezone=ZONE)
    desk.web.settings = ext.settings
    make_issue(desk.web.settings.root, SLUG, {"a.md": "---\ntitle: Rent strike\n---\n\nWe won.\n"},
               subject="December news")
    add_subscribers(desk.web.db, "news", 3, settings=desk.web.settings)
    add_subscribers(desk.web.db, "bulletin", 2, settings=desk.web.settings, start=2)   # user2 is on both
    return desk


def use_backend(desk: Desk, name: str) -> None:
    ext = desk.web.app.extensions["mailer"]
    ext.settings = ext.settings.replace(backend=name)
    desk.web.settings = ext.settings


def rows(desk: Desk, model: type) -> list:
    with desk.web.db.session() as session:
        return list(session.scalars(select(model).order_by(model.id)))


def deliveries(desk: Desk, send_id: int) -> dict[str, DeliveryStatus]:
    with desk.web.db.session() as session:
        return {d.email: d.status for d in session.scalars(select(Delivery).where(Delivery.send_id == send_id))}


def audit_rows(desk: Desk) -> list[tuple[str, str, str, str]]:
    with desk.web.db.session() as session:
        return [(r.action, r.actor, r.target, r.detail) for r in session.scalars(
            select(DeskAudit).where(DeskAudit.action.like("send_%")).order_by(DeskAudit.id))]


def work(desk: Desk) -> None:
    """Deliver what is due, as `mailer worker --until-idle` does."""
    run_worker(desk.web.db, desk.web.settings, backend_name="memory", until_idle=True)


def start(desk: Desk, lists: tuple[str, ...] = ()) -> int:
    done = desk.post(desk.editor, f"{SEND}/now", {"list": list(lists)}, form_page=SEND)
    assert done.status_code == 303, done.text
    return int(done.headers["Location"].split("/")[-1].split("?")[0])


def test_the_send_page_offers_test_send_now_and_schedule(sending: Desk) -> None:
    page = sending.editor.get(SEND)
    assert page.status_code == 200
    text = text_of(page.text)
    assert "December news" in text and f"One message of the issue to {EDITOR}" in text
    assert f'action="{SEND}/test"' in page.text and f'action="{SEND}/now"' in page.text
    assert f'action="{SEND}/schedule"' in page.text and 'type="datetime-local" id="at"' in page.text
    assert "Date and time (Europe/London)" in text
    assert 'value="news" checked' in page.text and 'value="bulletin">' in page.text   # issue.toml's lists chosen


def test_a_test_send_writes_one_message_to_the_editor_and_touches_no_ledger(sending: Desk) -> None:
    desk = sending
    use_backend(desk, "file")
    done = desk.post(desk.editor, f"{SEND}/test", form_page=SEND)
    assert done.status_code == 303 and done.headers["Location"] == f"{SEND}?done=test"
    files = sorted(Path(desk.web.settings.path(desk.web.settings.outbox_dir)).glob("*.eml"))
    assert len(files) == 1
    msg = email.message_from_bytes(files[0].read_bytes())
    assert msg["To"] == EDITOR and msg["Subject"] == "December news"
    assert rows(desk, Send) == [] and rows(desk, Delivery) == []
    assert f"A test was sent to {EDITOR}." in desk.editor.get(done.headers["Location"]).text
    assert audit_rows(desk) == [("send_test", EDITOR, f"issue {SLUG}", f"to={EDITOR}")]


def test_a_test_the_server_refuses_says_its_reply_and_records_nothing(sending: Desk) -> None:
    desk = sending
    MemoryBackend.outcomes[EDITOR] = (DeliveryOutcome.PERMANENT, 550, "5.1.1 no such mailbox")
    refused = desk.post(desk.editor, f"{SEND}/test", form_page=SEND)
    assert refused.status_code == 502
    assert f"The test to {EDITOR} was not sent: 550 5.1.1 no such mailbox." in html.unescape(refused.text)
    assert MemoryBackend.outbox == [] and rows(desk, Send) == [] and audit_rows(desk) == []


def test_confirmation_counts_equal_the_rows_frozen_and_the_worker_delivers_once(sending: Desk) -> None:
    desk = sending
    ask = desk.editor.get(f"{SEND}/now?list=news&list=bulletin")
    assert ask.status_code == 200
    text = text_of(ask.text)
    assert "news 3" in text and "bulletin 2" in text and "In all 4 people" in text
    assert "Send to 4 people" in text and rows(desk, Send) == []                # asking sent nothing
    send_id = start(desk, ("news", "bulletin"))
    assert [s.id for s in rows(desk, Send)] == [send_id]
    assert len(deliveries(desk, send_id)) == 4                                # frozen as confirmed
    assert set(deliveries(desk, send_id).values()) == {DeliveryStatus.QUEUED}
    progress = desk.editor.get(f"/desk/sends/{send_id}?done=started")
    assert progress.status_code == 200 and "mailer worker" in progress.text
    assert 'data-count="queued">4<' in progress.text and "/desk/js/progress.js" in progress.text
    work(desk)
    assert sorted(m.recipient for m in MemoryBackend.outbox) == [f"user{i}@example.net" for i in range(4)]
    assert set(deliveries(desk, send_id).values()) == {DeliveryStatus.SENT}
    assert rows(desk, Send)[0].status is SendStatus.DONE
    assert audit_rows(desk) == [("send_now", EDITOR, f"issue {SLUG}", f"send {send_id} to news, bulletin")]


def test_a_second_send_now_is_409_and_creates_nothing(sending: Desk) -> None:
    desk = sending
    start(desk)
    again = desk.post(desk.editor, f"{SEND}/now", form_page=SEND)
    assert again.status_code == 409 and "already" in html.unescape(again.text)
    assert len(rows(desk, Send)) == 1
    ask = desk.editor.get(f"{SEND}/now")
    assert "It cannot be sent to these lists" in ask.text and f'action="{SEND}/now"' not in ask.text
    work(desk)
    done = desk.post(desk.editor, f"{SEND}/now", form_page=SEND)
    assert done.status_code == 409 and len(rows(desk, Send)) == 1 and len(MemoryBackend.outbox) == 3


def test_progress_json_counts_the_rows(sending: Desk) -> None:
    desk = sending
    send_id = start(desk)
    data = desk.editor.get(f"/desk/sends/{send_id}/progress.json").get_json()
    assert data["status"] == "sending" and data["running"] is True
    assert data["counts"]["queued"] == 3 and data["total"] == 3 and data["handled"] == 0
    MemoryBackend.outcomes["user1@example.net"] = (DeliveryOutcome.PERMANENT, 550, "5.1.1 no such user")
    work(desk)
    data = desk.editor.get(f"/desk/sends/{send_id}/progress.json").get_json()
    assert data["counts"]["sent"] == 2 and data["counts"]["failed"] == 1 and data["handled"] == 3
    assert data["status"] == "done" and data["running"] is False
    assert desk.web.app.test_client().get(f"/desk/sends/{send_id}/progress.json").status_code == 401
    assert desk.editor.get("/desk/sends/999/progress.json").status_code == 404
    assert desk.editor.get("/desk/sends/999").status_code == 404


def test_the_report_shows_figures_and_each_failure_with_its_reply_and_retries_failed(sending: Desk) -> None:
    desk = sending
    MemoryBackend.outcomes["user0@example.net"] = (DeliveryOutcome.PERMANENT, 550, "5.1.1 <user0@example.net> unknown")
    MemoryBackend.outcomes["user1@example.net"] = (DeliveryOutcome.TEMPORARY, 451, "4.3.0 try again later")
    send_id = start(desk)
    work(desk)
    assert deliveries(desk, send_id)["user1@example.net"] is DeliveryStatus.DEFERRED
    page = desk.editor.get(f"/desk/sends/{send_id}/report")
    assert page.status_code == 200
    text = html.unescape(text_of(page.text))
    assert "news 1 1 1 0 1 (1 hard, 0 soft) 0" in text   # sent, deferred, failed, unknown, bounced, unsubscribed
    assert "user0@example.net failed 550 5.1.1 <user0@example.net> unknown" in text
    assert "user1@example.net deferred 451 4.3.0 try again later" in text      # why it waits is shown too
    assert "Retry failed (1)" in text and "No unknown rows to retry" in text
    MemoryBackend.outcomes.clear()
    done = desk.post(desk.editor, f"/desk/sends/{send_id}/retry", {"what": "failed"},
                     form_page=f"/desk/sends/{send_id}/report")
    assert done.status_code == 303 and done.headers["Location"] == f"/desk/sends/{send_id}?done=failed"
    work(desk)
    after = deliveries(desk, send_id)
    assert after["user1@example.net"] is DeliveryStatus.SENT and after["user0@example.net"] is DeliveryStatus.FAILED
    assert sorted(m.recipient for m in MemoryBackend.outbox) == ["user1@example.net", "user2@example.net"]
    nothing = desk.post(desk.editor, f"/desk/sends/{send_id}/retry", {"what": "failed"},
                        form_page=f"/desk/sends/{send_id}/report")
    assert nothing.status_code == 409 and "no temporary failed or deferred rows" in nothing.text
    assert audit_rows(desk)[-1] == ("send_retry_failed", EDITOR, f"send {send_id}", "1 row(s) queued")


def test_retry_unknown_asks_first_and_says_they_may_have_arrived(sending: Desk) -> None:
    desk = sending
    MemoryBackend.outcomes["user2@example.net"] = (DeliveryOutcome.UNKNOWN, 0, "connection lost after the data")
    send_id = start(desk)
    work(desk)
    assert deliveries(desk, send_id)["user2@example.net"] is DeliveryStatus.UNKNOWN
    ask = desk.editor.get(f"/desk/sends/{send_id}/retry?what=unknown")
    assert ask.status_code == 200 and "may already have been delivered" in ask.text
    assert deliveries(desk, send_id)["user2@example.net"] is DeliveryStatus.UNKNOWN   # asking changed nothing
    MemoryBackend.outcomes.clear()
    done = desk.post(desk.editor, f"/desk/sends/{send_id}/retry", {"what": "unknown"},
                     form_page=f"/desk/sends/{send_id}/retry?what=unknown")
    assert done.status_code == 303
    work(desk)
    assert deliveries(desk, send_id)["user2@example.net"] is DeliveryStatus.SENT
    assert audit_rows(desk)[-1] == ("send_retry_unknown", EDITOR, f"send {send_id}", "1 row(s) queued")


def test_a_paused_send_continues_from_its_page(sending: Desk) -> None:
    desk = sending
    MemoryBackend.outcomes["user0@example.net"] = (DeliveryOutcome.POLICY, 554, "5.7.1 message refused as spam")
    send_id = start(desk)
    work(desk)
    assert rows(desk, Send)[0].status is SendStatus.PAUSED
    page = desk.editor.get(f"/desk/sends/{send_id}")
    assert "The send is paused" in page.text and "5.7.1 message refused as spam" in html.unescape(page.text)
    MemoryBackend.outcomes.clear()
    done = desk.post(desk.editor, f"/desk/sends/{send_id}/resume", form_page=f"/desk/sends/{send_id}")
    assert done.status_code == 303 and done.headers["Location"] == f"/desk/sends/{send_id}?done=resumed"
    assert rows(desk, Send)[0].status is SendStatus.SENDING
    work(desk)
    assert rows(desk, Send)[0].status is SendStatus.DONE
    assert {m.recipient for m in MemoryBackend.outbox} >= {"user1@example.net", "user2@example.net"}
    again = desk.post(desk.editor, f"/desk/sends/{send_id}/resume", form_page=f"/desk/sends/{send_id}")
    assert again.status_code == 409 and "only a paused send is continued" in again.text
    assert audit_rows(desk)[-1] == ("send_resume", EDITOR, f"send {send_id}", "")


def test_schedule_in_the_future_makes_a_schedule_at_the_utc_instant_of_the_group_zone(sending: Desk) -> None:
    desk = sending
    done = desk.post(desk.editor, f"{SEND}/schedule", {"at": "2031-07-01T09:00", "list": ["news"]}, form_page=SEND)
    assert done.status_code == 303
    [row] = rows(desk, Schedule)
    assert done.headers["Location"] == f"/desk/schedules/{row.id}"
    assert row.run_at.replace(tzinfo=timezone.utc) == datetime(2031, 7, 1, 8, 0, tzinfo=timezone.utc)   # BST
    assert row.timezone == ZONE and row.list_slugs == ["news"]
    [send] = rows(desk, Send)
    assert send.status is SendStatus.SCHEDULED
    assert "It is scheduled" in desk.editor.get(f"/desk/sends/{send.id}").text
    busy = desk.post(desk.editor, f"{SEND}/now", form_page=SEND)        # its snapshot holds the list
    assert busy.status_code == 409 and len(rows(desk, Send)) == 1
    assert audit_rows(desk) == [("send_schedule", EDITOR, f"issue {SLUG}",
                                 f"schedule {row.id} at=2031-07-01T09:00 ({ZONE})")]


@pytest.mark.parametrize(("at", "words"), [
    ("2020-01-01T09:00", "date and time: 2020-01-01 09:00:00 GMT (09:00:00 UTC) is in the past"),
    ("soon", "date and time: cannot read 'soon' as a time"),
    ("", "date and time: choose the day and the time"),
])
def test_a_bad_schedule_time_is_422_and_makes_nothing(sending: Desk, at: str, words: str) -> None:
    desk = sending
    refused = desk.post(desk.editor, f"{SEND}/schedule", {"at": at}, form_page=SEND)
    assert refused.status_code == 422 and words.lower() in html.unescape(refused.text).lower()
    assert 'aria-invalid="true"' in refused.text
    assert rows(desk, Schedule) == [] and rows(desk, Send) == [] and audit_rows(desk) == []


def test_an_issue_that_fails_to_compose_is_422_everywhere_and_nothing_is_made(sending: Desk) -> None:
    desk = sending
    token = desk.token(desk.editor, SEND)
    (desk.web.settings.root / "issues" / SLUG / "issue.toml").write_text("subject = [broken\n", encoding="utf-8")
    page = desk.editor.get(SEND)
    assert page.status_code == 422 and "This issue does not compose" in page.text and "issue.toml" in page.text
    assert desk.editor.get(f"{SEND}/now").status_code == 422
    for action, data in (("test", {}), ("now", {}), ("schedule", {"at": "2031-07-01T09:00"})):
        answer = desk.editor.post(f"{SEND}/{action}", data={"csrf_token": token, **data})
        assert answer.status_code == 422 and "issue.toml" in answer.text, action
        assert answer.text.count('role="alert"') == 1
    assert rows(desk, Send) == [] and rows(desk, Schedule) == [] and MemoryBackend.outbox == []
    assert audit_rows(desk) == []


def test_unknown_issue_list_or_send_and_posts_without_token(sending: Desk) -> None:
    desk = sending
    assert desk.editor.get("/desk/issues/nope/send").status_code == 404
    assert desk.editor.get("/desk/issues/..%2F..%2Fetc/send").status_code == 404
    assert desk.editor.get("/desk/sends/999/report").status_code == 404
    refused = desk.post(desk.editor, f"{SEND}/now", {"list": ["nope"]}, form_page=SEND)
    assert refused.status_code == 422 and "Lists: there is no list &#39;nope&#39;" in refused.text
    assert desk.editor.post(f"{SEND}/now", data={}).status_code == 400
    assert rows(desk, Send) == [] and audit_rows(desk) == []
    with desk.web.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


# --- in Chromium: axe-core on every sending page and state, progress.js under the desk's CSP, 390 px ---

@pytest.fixture
def live_sending(settings):  # type: ignore[no-untyped-def]
    """A live server (SQLite, memory backend) with an issue, 3 readers of news, and a logged-in page."""
    from mailer.db import Database
    from mailer.desk import accounts
    from mailer.models import OptIn
    from mailer.people.directory import add_list
    from tests.helpers import free_port
    from tests.test_browser import LiveServer

    port = free_port()
    settings = settings.replace(backend="memory", base_url=f"http://127.0.0.1:{port}", web_port=port,
                                schedule_timezone=ZONE)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    add_list(db, "news", "Riverside News", OptIn.SINGLE, "Our weekly news")
    add_subscribers(db, "news", 3, settings=settings)
    make_issue(settings.root, SLUG, {"a.md": "# A report\n\nText."}, subject="December news")
    MemoryBackend.reset()
    with LiveServer(settings, db) as server:
        yield settings, db, server, accounts.add_user(db, "sam@example.org", "editor")
    MemoryBackend.reset()
    db.dispose()


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_sending_pages_in_chromium(live_sending, scheme: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    from tests.helpers import chromium
    from tests.test_desk_a11y import serious, set_password

    settings, db, _server, secret = live_sending
    base = settings.base_url
    MemoryBackend.outcomes["user1@example.net"] = (DeliveryOutcome.UNKNOWN, 0, "no reply after the data")
    found: dict[str, list[str]] = {}
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.emulate_media(color_scheme=scheme)

        def check(name: str) -> None:
            import os
            if os.environ.get("SHOTS"):
                page.screenshot(path=f"/tmp/shot-{scheme}-{name.replace(' ', '_')}.png", full_page=True)
            found[name] = serious(page)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (name, width)

        set_password(page, base, secret)
        page.goto(base + SEND)
        check("send")
        for summary in page.locator("details.audience summary").all():     # who on the lists: open both
            summary.click()
        assert page.is_visible("#now-tags") and page.is_visible("#schedule-exclude-segment")
        check("send (audience open)")
        page.fill("#at", "2020-01-01T09:00")
        page.click("text=Schedule >> nth=-1")
        assert "is in the past" in page.inner_text("#schedule-error")
        check("send (past time)")
        page.goto(base + SEND)
        page.click("text=Count the audience…")
        assert "In all 3 people" in page.inner_text("main")
        check("confirm")
        page.click("text=Send to 3 people")
        page.wait_for_url(f"{base}/desk/sends/*")
        send_id = int(page.url.split("/")[-1].split("?")[0])
        assert page.inner_text('[data-count="queued"]') == "3"
        check("progress")
        run_worker(db, settings, backend_name="memory", until_idle=True)
        # progress.js, allowed by the CSP, polls the JSON and updates the figures without a reload
        expect(page.locator('[data-count="sent"]')).to_have_text("2", timeout=20_000)
        assert page.inner_text('[data-count="unknown"]') == "1" and page.inner_text('[data-field="status"]') == "done"
        page.goto(f"{base}/desk/sends/{send_id}/report")
        assert "no reply after the data" in page.inner_text("main")
        check("report")
        page.click("text=Retry unknown (1)…")
        check("retry unknown")
    bad = {name: lines for name, lines in found.items() if lines}
    assert not bad, (scheme, bad)
