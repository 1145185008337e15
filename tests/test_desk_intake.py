"""The desk's intake page: held reports mailed in, approve and reject (POST, CSRF, audited), bad input.

Reports are filed by the real intake (mailer.submissions.poll) from a folder of .eml files; run on
SQLite and PostgreSQL through the Flask test client.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlalchemy import select

from mailer.models import DeskAudit, Submission, SubmissionStatus
from mailer.scheduling import digest
from mailer.submissions.poll import intake
from tests.desk_fixtures import EDITOR, Desk, desk, text_of, web_app  # noqa: F401
from tests.test_intake import JO, mail


def file_reports(desk: Desk, tmp_path: Path, *mails: bytes) -> tuple[Path, list[int]]:
    """A digest folder `weekly`, and *mails* filed (held) into it by the real intake."""
    settings = desk.web.settings
    folder = settings.root / "issues" / "weekly"
    (folder / "inbox").mkdir(parents=True, exist_ok=True)
    (folder / "issue.toml").write_text('subject = "Weekly, {date}"\nlists = ["news"]\n', encoding="utf-8")
    box = tmp_path / "mails"
    box.mkdir(exist_ok=True)
    for n, data in enumerate(mails):
        (box / f"{n}.eml").write_bytes(data)
    intake(desk.web.db, settings.replace(submissions_mailbox=str(box), submissions_senders=(JO,),
                                         submissions_digest="weekly", submissions_reply=False))
    with desk.web.db.session() as s:
        return folder, [r.id for r in s.scalars(select(Submission).order_by(Submission.id))]


def audit_rows(desk: Desk) -> list[tuple[str, str, str]]:
    with desk.web.db.session() as s:
        return [(r.action, r.actor, r.target) for r in s.scalars(
            select(DeskAudit).where(DeskAudit.action.like("intake_%")).order_by(DeskAudit.id))]


def status_of(desk: Desk, submission_id: int) -> SubmissionStatus:
    with desk.web.db.session() as s:
        return s.get(Submission, submission_id).status


def test_the_page_shows_held_reports_escaped_and_approve_moves_one_into_the_digest(desk: Desk, tmp_path) -> None:
    folder, [first, second] = file_reports(
        desk, tmp_path,
        mail(subject="Rent <b>strike</b>", text="We met. <script>alert(1)</script> It went well.",
             attachments=(("run.exe", b"MZ", "application/octet-stream"),)),
        mail(subject="Second", text="Another report."))
    page = desk.editor.get("/desk/intake")
    assert page.status_code == 200
    text = text_of(page.text)
    assert f"Rent <b>strike</b> (#{first})" not in page.text and "Rent &lt;b&gt;strike&lt;/b&gt;" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>" not in page.text
    assert f"From {JO}" in text and "run.exe: not accepted" in text
    assert 'aria-current="page">Reports by mail' in page.text
    done = desk.post(desk.editor, f"/desk/intake/{first}/approve", form_page="/desk/intake")
    assert done.status_code == 303 and done.headers["Location"] == "/desk/intake?done=approved"
    assert [p.name.endswith(f"-{first}.txt") for p in digest.inbox_files(folder)] == [True]
    assert status_of(desk, first) is SubmissionStatus.APPROVED
    after = text_of(desk.editor.get("/desk/intake?done=approved").text)
    assert "The report was approved" in after and "Second" in after and "strike" not in after
    assert audit_rows(desk) == [("intake_approve", EDITOR, f"submission {first}")]


def test_reject_with_a_reason_deletes_the_files_and_is_audited(desk: Desk, tmp_path) -> None:
    folder, [sid] = file_reports(desk, tmp_path, mail(subject="Advert", text="Buy a car."))
    done = desk.post(desk.editor, f"/desk/intake/{sid}/reject", {"reason": "not a report"}, form_page="/desk/intake")
    assert done.status_code == 303 and done.headers["Location"] == "/desk/intake?done=rejected"
    with desk.web.db.session() as s:
        row = s.get(Submission, sid)
        assert (row.status, row.reason, row.decided_by) == (SubmissionStatus.REJECTED, "not a report", EDITOR)
    assert not any((folder / "inbox" / "held").iterdir()) and digest.inbox_files(folder) == []
    assert audit_rows(desk) == [("intake_reject", EDITOR, f"submission {sid}")]
    assert "No reports are waiting." in desk.editor.get("/desk/intake").text


def test_bad_input_is_one_message_with_the_right_status_and_nothing_changes(desk: Desk, tmp_path) -> None:
    folder, [sid] = file_reports(desk, tmp_path, mail(subject="Kept", text="A report."))
    long = desk.post(desk.editor, f"/desk/intake/{sid}/reject", {"reason": "x" * 1001}, form_page="/desk/intake")
    assert long.status_code == 422 and "Reason: at most 1000 characters." in long.text
    assert 'aria-invalid="true"' in long.text
    assert status_of(desk, sid) is SubmissionStatus.HELD
    missing = desk.post(desk.editor, "/desk/intake/999999/approve", form_page="/desk/intake")
    assert missing.status_code == 404 and "No submission #999999" in missing.text
    assert desk.post(desk.editor, f"/desk/intake/{sid}/approve", form_page="/desk/intake").status_code == 303
    again = desk.post(desk.admin, f"/desk/intake/{sid}/approve", form_page="/desk/intake")
    assert again.status_code == 409 and "is approved, not held" in again.text
    assert desk.post(desk.admin, f"/desk/intake/{sid}/reject", form_page="/desk/intake").status_code == 409
    assert len(digest.inbox_files(folder)) == 1
    assert audit_rows(desk) == [("intake_approve", EDITOR, f"submission {sid}")]


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_intake_page_in_chromium(settings, tmp_path, scheme: str) -> None:  # type: ignore[no-untyped-def]
    """axe-core finds nothing serious, 390 px wide (a long unbroken line too), approve and reject by keyboard."""
    from mailer.db import Database
    from mailer.desk import accounts
    from tests.helpers import chromium, free_port
    from tests.test_browser import LiveServer
    from tests.test_desk_a11y import serious, set_password

    port = free_port()
    settings = settings.replace(backend="memory", base_url=f"http://127.0.0.1:{port}", web_port=port)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    box = tmp_path / "mails"
    box.mkdir()
    (box / "1.eml").write_bytes(mail(subject="A long one", text="x" * 300 + "\n\nThe march went well.",
                                     attachments=(("tool.exe", b"MZ", "application/octet-stream"),)))
    (box / "2.eml").write_bytes(mail(subject="Another", text="Second report."))
    folder = settings.root / "issues" / "weekly"
    (folder / "inbox").mkdir(parents=True)
    (folder / "issue.toml").write_text('subject = "Weekly, {date}"\n', encoding="utf-8")
    intake(db, settings.replace(submissions_mailbox=str(box), submissions_senders=(JO,), submissions_digest="weekly",
                                submissions_reply=False))
    try:
        with LiveServer(settings, db), chromium() as browser:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.emulate_media(color_scheme=scheme)
            set_password(page, settings.base_url, accounts.add_user(db, "sam@example.org", "editor"))
            page.goto(f"{settings.base_url}/desk/intake")
            assert serious(page) == [] and page.evaluate("document.documentElement.scrollWidth") <= 390
            page.focus("#reason-2")
            page.keyboard.type("a duplicate")
            page.keyboard.press("Enter")                           # the reject form, from the keyboard
            page.wait_for_url("**/desk/intake?done=rejected")
            page.get_by_role("button", name="Approve #1").focus()
            page.keyboard.press("Enter")
            page.wait_for_url("**/desk/intake?done=approved")
            assert "The report was approved" in page.inner_text("main") and serious(page) == []
            assert len(digest.inbox_files(folder)) == 1
    finally:
        db.dispose()
