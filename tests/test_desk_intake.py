"""The desk's intake page: held reports mailed in, approve and reject (POST, CSRF, audited), bad input.

Reports are filed by the real intake (mailer.submissions.poll) from a folder of .eml files; run on
SQLite and PostgreSQL through the Flask test client.
"""

from __future__ import annotations

from pathlib import Path

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
