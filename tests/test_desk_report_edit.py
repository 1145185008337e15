"""Editing a report in place on the desk: the text saved and composed, a text that does not read as a
report (put back as it was), a file changed meanwhile (409, nothing overwritten), a sent issue (409),
unknown or unlisted files (404), and the audit. SQLite and PostgreSQL (the `desk` fixture).
"""

from __future__ import annotations

import re

from click.testing import CliRunner
from sqlalchemy import select

from mailer.cli import cli
from mailer.models import DeskAudit, SendStatus
from tests.desk_fixtures import EDITOR, Desk, desk, web_app  # noqa: F401
from tests.helpers import TEST_ENV
from tests.test_desk_issues import folder, mark_sent, paste, post, words_of

SLUG = "example"
REPORT = "01-branch-meeting.md"
EDIT = f"/desk/issues/{SLUG}/reports/{REPORT}/edit"


def version_of(page_text: str) -> str:
    return re.search(r'name="version" value="([0-9a-f]+)"', page_text).group(1)


def edits(desk: Desk) -> list[tuple[str, str, str]]:
    with desk.web.db.session() as session:
        return [(r.action, r.actor, r.target) for r in session.scalars(
            select(DeskAudit).where(DeskAudit.action == "report_edit").order_by(DeskAudit.id))]


def test_edit_a_report_and_the_cli_composes_the_new_text(desk: Desk) -> None:
    path = folder(desk, SLUG) / "reports" / REPORT
    issue_page = desk.editor.get(f"/desk/issues/{SLUG}")
    assert f'href="{EDIT}"' in issue_page.text
    form = desk.editor.get(EDIT)
    assert form.status_code == 200 and path.read_text(encoding="utf-8").strip()[:40] in form.text.replace("&#34;", '"')
    new = path.read_text(encoding="utf-8").replace("Branch meeting", "Branch meeting, corrected", 1) + \
        "\nA line added on the desk: **the rent strike continues**.\r\n"
    done = post(desk, EDIT, {"text": new, "version": version_of(form.text)})
    assert done.status_code == 303 and done.headers["Location"] == f"/desk/issues/{SLUG}?done=edited#reports"
    saved = path.read_text(encoding="utf-8")
    assert "the rent strike continues" in saved and "\r" not in saved and saved.endswith(".\n")
    assert "The report was saved." in words_of(desk.editor.get(f"/desk/issues/{SLUG}?done=edited"))
    result = CliRunner().invoke(cli, ["compose", f"issues/{SLUG}"], env={**TEST_ENV, "MAILER_ROOT": str(desk.web.settings.root)})
    assert result.exit_code == 0, result.output
    assert edits(desk) == [("report_edit", EDITOR, f"{SLUG}/{REPORT}")]


def test_a_text_that_is_not_a_report_is_422_and_the_file_stays(desk: Desk) -> None:
    path = folder(desk, SLUG) / "reports" / REPORT
    before = path.read_bytes()
    version = version_of(desk.editor.get(EDIT).text)
    for text, words in (("", "the report is empty"),
                        ("---\ntitle: Unclosed\n\nBody.", f"{REPORT}:1: front matter opened with '---' is never closed"),
                        ("A report \x00 with a NUL.", f"{REPORT}: binary file, not a text report"),
                        ("x" * 2_000_001, "at most 2,000,000 characters")):
        refused = post(desk, EDIT, {"text": text, "version": version})
        assert refused.status_code == 422 and words in words_of(refused), (text[:30], words_of(refused)[-600:])
        assert path.read_bytes() == before
        if len(text) < 1000:
            assert text.split("\n")[0] in refused.text          # what was typed is kept in the form
    huge = post(desk, EDIT, {"text": "x" * 8_400_000, "version": version})      # past the request limit: unread
    assert huge.status_code == 413 and path.read_bytes() == before
    assert edits(desk) == []


def test_a_report_changed_meanwhile_is_409_and_nothing_is_overwritten(desk: Desk) -> None:
    path = folder(desk, SLUG) / "reports" / REPORT
    version = version_of(desk.editor.get(EDIT).text)
    path.write_text(path.read_text(encoding="utf-8") + "\nAdded by someone else.\n", encoding="utf-8")
    theirs = path.read_bytes()
    refused = post(desk, EDIT, {"text": "# Mine\n\nMy version.", "version": version})
    assert refused.status_code == 409 and "changed since you opened it" in words_of(refused)
    assert path.read_bytes() == theirs
    assert "Added by someone else." in refused.text and "My version." in refused.text    # both shown
    again = post(desk, EDIT, {"text": "# Mine\n\nMy version.", "version": version_of(refused.text)})
    assert again.status_code == 303 and "My version." in path.read_text(encoding="utf-8")


def test_sent_unknown_and_unlisted_reports(desk: Desk) -> None:
    assert desk.editor.get(f"/desk/issues/{SLUG}/reports/nope.md/edit").status_code == 404
    assert desk.editor.get(f"/desk/issues/{SLUG}/reports/..%2Fissue.toml/edit").status_code == 404
    assert desk.editor.get("/desk/issues/nope/reports/a.md/edit").status_code == 404
    (folder(desk, SLUG) / "reports" / "99-stray.md").write_text("# Stray\n\nNot listed.\n", encoding="utf-8")
    assert post(desk, f"/desk/issues/{SLUG}/reports/99-stray.md/edit", {"text": "x", "version": "0"}).status_code == 404
    assert desk.editor.post(EDIT, data={"text": "x", "version": "0"}).status_code == 400       # no CSRF token
    version = version_of(desk.editor.get(EDIT).text)
    mark_sent(desk, SLUG, SendStatus.DONE)
    before = (folder(desk, SLUG) / "reports" / REPORT).read_bytes()
    assert desk.editor.get(EDIT).status_code == 409
    refused = post(desk, EDIT, {"text": "# Changed\n\nAfter sending.", "version": version})
    assert refused.status_code == 409 and "this issue is sent" in words_of(refused).lower()
    assert (folder(desk, SLUG) / "reports" / REPORT).read_bytes() == before and edits(desk) == []


def test_a_pasted_txt_report_is_edited_as_plain_text(desk: Desk) -> None:
    post(desk, "/desk/issues", {"slug": "2026-12-desk", "date": "2026-12-01", "subject": "December"})
    assert paste(desk, "Rent strike\n\nWe met on Tuesday.", slug="2026-12-desk").status_code == 303
    [name] = [p.name for p in (folder(desk, "2026-12-desk") / "reports").iterdir()]
    page = desk.editor.get(f"/desk/issues/2026-12-desk/reports/{name}/edit")
    assert page.status_code == 200 and "Plain text: a blank line between paragraphs" in words_of(page)
    done = post(desk, f"/desk/issues/2026-12-desk/reports/{name}/edit",
                {"text": "Rent strike\n\nWe met on Wednesday.", "version": version_of(page.text)})
    assert done.status_code == 303
    assert (folder(desk, "2026-12-desk") / "reports" / name).read_text(encoding="utf-8") == \
        "Rent strike\n\nWe met on Wednesday.\n"
