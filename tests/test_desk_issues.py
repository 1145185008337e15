"""The desk's issue pages: the issue page, a new issue, its fields, reports (paste, upload, order,
removal), images, the compose check and the preview frames; bad input and sent issues.

Run on SQLite and PostgreSQL (the `desk` fixture), through the Flask test client, the real CLI and
Chromium. Every test reads the files the desk wrote.
"""

from __future__ import annotations

import html
import io
import tomllib
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import select

from mailer.cli import cli
from mailer.models import DeskAudit, Send, SendStatus
from tests.desk_fixtures import EDITOR, Desk, desk, text_of, web_app  # noqa: F401
from tests.docx_files import docx
from tests.helpers import TEST_ENV, make_issue

SLUG = "2026-12-desk"


def words_of(answer) -> str:  # type: ignore[no-untyped-def]
    """What a reader sees of a page: its text without tags, entities decoded."""
    return html.unescape(text_of(answer.text))


def folder(desk: Desk, slug: str = SLUG) -> Path:
    return desk.web.settings.root / "issues" / slug


def toml(desk: Desk, slug: str = SLUG) -> dict:
    return tomllib.loads((folder(desk, slug) / "issue.toml").read_text(encoding="utf-8"))


def audit_rows(desk: Desk) -> list[tuple[str, str, str]]:
    with desk.web.db.session() as session:
        return [(r.action, r.actor, r.target) for r in session.scalars(
            select(DeskAudit).where(DeskAudit.action.like("issue_%") | DeskAudit.action.like("report_%")
                                    | DeskAudit.action.like("image_%")).order_by(DeskAudit.id))]


def post(desk: Desk, path: str, data: dict | None = None, **kwargs):  # type: ignore[no-untyped-def]
    return desk.post(desk.editor, path, data, **kwargs)


def new_issue(desk: Desk, slug: str = SLUG, subject: str = "December news"):  # type: ignore[no-untyped-def]
    return post(desk, "/desk/issues", {"slug": slug, "date": "2026-12-01", "subject": subject})


def paste(desk: Desk, text: str, html: str = "", title: str = "", slug: str = SLUG):  # type: ignore[no-untyped-def]
    return post(desk, f"/desk/issues/{slug}/reports/paste", {"title": title, "text": text, "html": html})


def upload(desk: Desk, name: str, data: bytes, field: str = "file", route: str = "reports/upload",
           slug: str = SLUG, title: str = ""):  # type: ignore[no-untyped-def]
    return post(desk, f"/desk/issues/{slug}/{route}", {"title": title, field: (io.BytesIO(data), name)},
                content_type="multipart/form-data")


def png(size: tuple[int, int] = (40, 30), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(out, fmt)
    return out.getvalue()


def mark_sent(desk: Desk, slug: str, status: SendStatus = SendStatus.DONE) -> None:
    with desk.web.db.session() as session:
        session.add(Send(issue_slug=slug, issue_path=f"issues/{slug}", subject="s", html="<p>x</p>", text="x",
                         content_hash="x", status=status))


def test_issue_page_shows_the_issue_its_reports_and_the_send_link(desk: Desk) -> None:
    page = desk.editor.get("/desk/issues/example")
    assert page.status_code == 200
    text = words_of(page)
    assert "December: the bakery strike" in text and "draft" in text
    assert "Branch meeting, 18 November 01-branch-meeting.md · 143 words" in text
    assert text.index("01-branch-meeting.md") < text.index("02-bakery-appeal.txt") < text.index("03-whats-on.md")
    assert 'href="/desk/issues/example/send"' in page.text
    assert 'value="Branch meeting report, a solidarity appeal' in page.text          # the preheader, to edit
    assert 'name="lists" value="news" checked' in page.text
    assert "It composes, with no warnings." in text or "Compose's warnings and the lint" in text
    assert 'href="/desk/issues/example"' in desk.editor.get("/desk/").text


def test_an_unknown_issue_is_404(desk: Desk) -> None:
    for path in ("/desk/issues/nope", "/desk/issues/nope/preview", "/desk/issues/..%2Fexample"):
        assert desk.editor.get(path).status_code == 404, path
    assert post(desk, "/desk/issues/nope", {"subject": "x"}).status_code == 404


def test_create_an_issue_then_the_cli_composes_what_the_desk_made(desk: Desk) -> None:
    done = new_issue(desk)
    assert done.status_code == 303 and done.headers["Location"] == f"/desk/issues/{SLUG}?done=created"
    assert toml(desk) == {"subject": "December news", "preheader": "", "date": "2026-12-01", "lists": [],
                          "intro": "", "reports": []}
    assert (folder(desk) / "reports").is_dir()
    page = desk.editor.get(f"/desk/issues/{SLUG}?done=created")
    assert "The issue was created." in page.text and "does not compose: reports: no reports in this issue" in page.text
    assert post(desk, f"/desk/issues/{SLUG}", {"subject": "December news", "preheader": "Hello",
                                                "intro": "Welcome.", "lists": ["news"]}).status_code == 303
    assert paste(desk, "Our first report\n\nIt has one paragraph, and it ends well.").status_code == 303
    assert upload(desk, "Photo 1.png", png(), "image", "images").status_code == 303
    assert upload(desk, "photo.md", b"# With a photo\n\n![Red square](images/Photo-1.png)\n\nA red square.\n"
                  ).status_code == 303
    assert paste(desk, "Rally today.", html='<p><b>Rally</b> <i>today</i>, <a href="https://example.org/">details</a>.'
                                            '</p><ul><li>Bring a flag.</li></ul>').status_code == 303
    word = '<w:p><w:r><w:t>A Word report, converted.</w:t></w:r></w:p>'
    assert upload(desk, "from word.docx", docx(word), title="From Word").status_code == 303
    env = {**TEST_ENV, "MAILER_ROOT": str(desk.web.settings.root), "MAILER_DATABASE_URL": desk.web.db.url}
    result = CliRunner().invoke(cli, ["compose", SLUG], env=env)
    assert result.exit_code == 0, result.output
    assert f"{SLUG} composes (4 reports)" in result.output and "Our first report" in result.output
    assert "From Word" in result.output and toml(desk)["reports"] == [
        "01-our-first-report.txt", "02-photo.md", "03-rally-today-details.md", "04-from-word.md"]
    preview = desk.editor.get(f"/desk/issues/{SLUG}/preview/named").text
    assert "<strong>Rally</strong>" in preview and f'src="/desk/issues/{SLUG}/images/Photo-1.png"' in preview
    assert [a for a, _, _ in audit_rows(desk)][:4] == ["issue_create", "issue_edit", "report_add", "image_add"]
    assert all(actor == EDITOR for _, actor, _ in audit_rows(desk))


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"slug": "Bad Slug"}, "slug", "folder name 'Bad Slug'"),
    ({"slug": "../evil"}, "slug", "folder name '../evil'"),
    ({"slug": ""}, "slug", "folder name"),
    ({"date": "1 December"}, "date", "use YYYY-MM-DD"),
    ({"subject": "  "}, "subject", "subject: write one"),
    ({"subject": "Hi\r\nBcc: x@example.org"}, "subject", "must be one line"),
])
def test_a_bad_new_issue_is_422_naming_the_field_and_makes_nothing(desk: Desk, fields: dict, field: str,
                                                                    words: str) -> None:
    before = sorted(p.name for p in (desk.web.settings.root / "issues").iterdir())
    answer = post(desk, "/desk/issues", {"slug": SLUG, "date": "2026-12-01", "subject": "News", **fields})
    assert answer.status_code == 422
    assert words.lower() in words_of(answer).lower() and f'id="{field}"' in answer.text
    assert sorted(p.name for p in (desk.web.settings.root / "issues").iterdir()) == before
    assert (desk.web.settings.root / "evil").exists() is False


def test_an_existing_slug_is_409(desk: Desk) -> None:
    before = (folder(desk, "example") / "issue.toml").read_bytes()
    answer = new_issue(desk, "example")
    assert answer.status_code == 409 and "exists already" in answer.text
    assert (folder(desk, "example") / "issue.toml").read_bytes() == before


def test_edit_keeps_comments_and_other_keys(desk: Desk) -> None:
    path = folder(desk, "example") / "issue.toml"
    done = post(desk, "/desk/issues/example", {"subject": "New subject", "preheader": "New pre",
                                               "intro": 'Line one with "quotes" and \\ backslash.\r\n\r\nLine two.',
                                               "lists": ["bulletin", "news"]})
    assert done.status_code == 303
    raw = path.read_text(encoding="utf-8")
    assert raw.startswith("# One edition of the newsletter.")                  # the comment stays
    data = tomllib.loads(raw)
    assert data["subject"] == "New subject" and data["preheader"] == "New pre"
    assert data["intro"].strip() == 'Line one with "quotes" and \\ backslash.\n\nLine two.'
    assert data["lists"] == ["bulletin", "news"] and data["title"] == "December 2026"
    assert data["reports"] == ["01-branch-meeting.md", "02-bakery-appeal.txt", "03-whats-on.md"]
    assert "Your changes were saved." in desk.editor.get("/desk/issues/example?done=saved").text


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"subject": ""}, "subject", "subject: write one"),
    ({"preheader": "a\nb"}, "preheader", "preheader: must be one line"),
    ({"lists": ["nope"]}, "lists", "lists: no list 'nope'"),
    ({"intro": "x" * 20_001}, "intro", "at most 20,000"),
])
def test_a_bad_edit_is_422_and_changes_nothing(desk: Desk, fields: dict, field: str, words: str) -> None:
    path = folder(desk, "example") / "issue.toml"
    before = path.read_bytes()
    answer = post(desk, "/desk/issues/example", {"subject": "S", "preheader": "", "intro": "", "lists": ["news"],
                                                 **fields})
    assert answer.status_code == 422 and words.lower() in words_of(answer).lower()
    assert 'aria-invalid="true"' in answer.text
    assert path.read_bytes() == before


@pytest.mark.parametrize("status", [SendStatus.DONE, SendStatus.SENDING])
def test_a_sent_issue_refuses_every_change_with_409(desk: Desk, status: SendStatus) -> None:
    mark_sent(desk, "example", status)
    issue = folder(desk, "example")
    files = {p: p.read_bytes() for p in issue.rglob("*") if p.is_file()}
    label = "sent" if status is SendStatus.DONE else "sending"
    page = desk.editor.get("/desk/issues/example")
    assert f"This issue is {label}: it can no longer change" in words_of(page)
    assert 'action="/desk/issues/example/reports/paste"' not in page.text
    attempts = [
        post(desk, "/desk/issues/example", {"subject": "Changed"}),
        paste(desk, "A new report.", slug="example"),
        upload(desk, "r.md", b"# R\n\nText.", slug="example"),
        upload(desk, "a.png", png(), "image", "images", slug="example"),
        post(desk, "/desk/issues/example/reports/01-branch-meeting.md/move", {"direction": "down"}),
        post(desk, "/desk/issues/example/reports/01-branch-meeting.md/remove"),
    ]
    for answer in attempts:
        assert answer.status_code == 409, answer.text
        assert f"this issue is {label}" in words_of(answer).lower()
    assert {p: p.read_bytes() for p in issue.rglob("*") if p.is_file() and p.name != ".desk.lock"} == \
        {p: b for p, b in files.items() if p.name != ".desk.lock"}


def test_pasted_text_becomes_a_txt_report_and_pasted_html_a_markdown_one(desk: Desk) -> None:
    new_issue(desk)
    assert paste(desk, "Picket news\n\nWe were there at five.\nBring tea.", title="").status_code == 303
    html = ('<meta charset="utf-8"><b style="font-weight:normal" id="docs-internal-guid-1"><p><span '
            'style="font-weight:700">Strike</span> is <span style="font-style:italic">on</span>, see '
            '<a href="https://example.org/x">the site</a>.</p><ul><li>one</li><li>two</li></ul>'
            '<script>alert(1)</script><p onclick="x()">End <a href="javascript:alert(1)">here</a>.</p></b>')
    assert paste(desk, "Strike is on, see the site.", html=html, title='Rally: "today"').status_code == 303
    names = toml(desk)["reports"]
    assert names == ["01-picket-news.txt", "02-rally-today.md"]
    assert (folder(desk) / "reports" / names[0]).read_text() == "Picket news\n\nWe were there at five.\nBring tea.\n"
    assert (folder(desk) / "reports" / names[1]).read_text() == (
        '---\ntitle: "Rally: "today""\n---\n\n**Strike** is *on*, see [the site](https://example.org/x).\n\n'
        "- one\n- two\n\nEnd here.\n")
    page = words_of(desk.editor.get(f"/desk/issues/{SLUG}"))
    assert "Picket news 01-picket-news.txt" in page and 'Rally: “today” 02-rally-today.md' in page


def test_an_empty_paste_is_422(desk: Desk) -> None:
    new_issue(desk)
    answer = paste(desk, "   ")
    assert answer.status_code == 422 and "text: paste the report" in answer.text.lower()
    assert list((folder(desk) / "reports").iterdir()) == [] and toml(desk)["reports"] == []


def test_upload_md_txt_and_docx_reports(desk: Desk) -> None:
    new_issue(desk)
    assert upload(desk, "minutes.md", b"# Minutes\n\nWe met.\n").status_code == 303
    assert upload(desk, "note.txt", "Caf\u00e9 note\n\nOpen late.\n".encode("utf-8-sig")).status_code == 303
    body = ('<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>From Word</w:t></w:r></w:p>'
            '<w:p><w:r><w:rPr><w:b/></w:rPr><w:t>Bold</w:t></w:r><w:r><w:t xml:space="preserve"> and </w:t></w:r>'
            '<w:r><w:rPr><w:i/></w:rPr><w:t>italic</w:t></w:r><w:r><w:t>.</w:t></w:r></w:p>')
    assert upload(desk, "word.docx", docx(body)).status_code == 303
    names = toml(desk)["reports"]
    assert names == ["01-minutes.md", "02-note.txt", "03-word.md"]
    assert (folder(desk) / "reports" / "01-minutes.md").read_text() == "# Minutes\n\nWe met.\n"
    assert (folder(desk) / "reports" / "02-note.txt").read_text() == "Café note\n\nOpen late.\n"
    assert "**Bold** and *italic*." in (folder(desk) / "reports" / "03-word.md").read_text()


@pytest.mark.parametrize(("name", "data", "words"), [
    ("bomb.docx", None, "possible zip bomb"),
    ("many.docx", "many", "possible zip bomb"),
    ("ratio.docx", "ratio", "possible zip bomb"),
    ("fake.docx", b"This is plain text, not a zip.", "not a .docx file"),
    ("other.docx", "zip", "not a Word document"),
    ("photo.txt", png(), "not a text file"),
    ("latin1.md", "caf\xe9".encode("latin-1"), "not UTF-8"),
    ("../../etc/evil.md", b"# Evil\n\nText.", "has a path in it"),
    ("report.pdf", b"%PDF-1.4", ".pdf is not a report"),
    ("open.md", b"---\ntitle: never closed\n\nText.\n", "file: 01-open.md:1: front matter opened with '---' is never"),
    ("empty.md", b"---\ntitle: Only a title\n---\n", "file: 01-empty.md: the report is empty"),
])
def test_a_bad_report_upload_is_422_and_writes_nothing(desk: Desk, name: str, data, words: str) -> None:  # type: ignore[no-untyped-def]
    new_issue(desk)
    if data is None:       # 60 MB of zeros compress to about 60 KB
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("word/document.xml", b"\0" * 60_000_000)
        data = out.getvalue()
        assert len(data) < 200_000
    elif data == "many":
        data = docx("<w:p/>", {f"x/{i}.xml": b"x" for i in range(600)})
    elif data == "ratio":
        data = docx("<w:p/>", {"word/media/big.xml": b" " * 5_000_000})
    elif data == "zip":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            z.writestr("hello.txt", "hi")
        data = out.getvalue()
    answer = upload(desk, name, data)
    assert answer.status_code == 422, answer.text
    assert words.lower() in words_of(answer).lower()
    assert list((folder(desk) / "reports").iterdir()) == [] and toml(desk)["reports"] == []
    assert not (desk.web.settings.root / "etc").exists()


def test_an_upload_past_the_limit_is_413_unread(desk: Desk) -> None:
    new_issue(desk)
    token = desk.token(desk.editor)
    # a 50 MB body announced by its length: refused on the header, before anything is read
    answer = desk.editor.post(f"/desk/issues/{SLUG}/reports/upload", data=b"x" * 100,
                              content_type="multipart/form-data; boundary=zz",
                              environ_overrides={"CONTENT_LENGTH": str(50_000_000)})
    assert answer.status_code == 413 and "file: at most 10 MB" in words_of(answer)
    big = upload(desk, "big.png", b"\x89PNG" + b"\0" * 6_000_000, "image", "images")
    assert big.status_code == 413 and "image: at most 5 MB" in words_of(big)
    assert token and not (folder(desk) / "images").exists()
    assert list((folder(desk) / "reports").iterdir()) == []


def test_reorder_and_remove_reports(desk: Desk) -> None:
    path = "/desk/issues/example/reports"
    assert post(desk, f"{path}/01-branch-meeting.md/move", {"direction": "down"}).status_code == 303
    assert toml(desk, "example")["reports"] == ["02-bakery-appeal.txt", "01-branch-meeting.md", "03-whats-on.md"]
    assert post(desk, f"{path}/03-whats-on.md/move", {"direction": "up"}).status_code == 303
    assert toml(desk, "example")["reports"] == ["02-bakery-appeal.txt", "03-whats-on.md", "01-branch-meeting.md"]
    assert post(desk, f"{path}/01-branch-meeting.md/move", {"direction": "down"}).status_code == 303   # last stays
    assert toml(desk, "example")["reports"][-1] == "01-branch-meeting.md"
    assert post(desk, f"{path}/01-branch-meeting.md/move", {"direction": "sideways"}).status_code == 422
    assert post(desk, f"{path}/nope.md/move", {"direction": "up"}).status_code == 404
    confirm = desk.editor.get(f"{path}/03-whats-on.md/remove")
    assert confirm.status_code == 200 and "What’s on" in confirm.text and "Remove the report" in confirm.text
    assert (folder(desk, "example") / "reports" / "03-whats-on.md").exists()          # asking changes nothing
    assert post(desk, f"{path}/03-whats-on.md/remove").status_code == 303
    assert toml(desk, "example")["reports"] == ["02-bakery-appeal.txt", "01-branch-meeting.md"]
    assert not (folder(desk, "example") / "reports" / "03-whats-on.md").exists()
    assert post(desk, f"{path}/03-whats-on.md/remove").status_code == 404
    assert desk.editor.get(f"{path}/03-whats-on.md/remove").status_code == 404
    assert [a for a, _, _ in audit_rows(desk)] == ["report_move", "report_move", "report_move", "report_remove"]


def test_image_upload_is_checked_by_content(desk: Desk) -> None:
    new_issue(desk)
    assert upload(desk, "My photo!.PNG", png(), "image", "images").status_code == 303
    saved = folder(desk) / "images" / "My-photo.png"
    assert saved.read_bytes() == png()
    served = desk.editor.get(f"/desk/issues/{SLUG}/images/My-photo.png")
    assert served.status_code == 200 and served.mimetype == "image/png" and served.data == png()
    assert "images/My-photo.png" in desk.editor.get(f"/desk/issues/{SLUG}").text
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for name, data, status, words in [
        ("evil.svg", svg, 422, "SVG is refused"),
        ("evil.png", svg, 422, "SVG is refused"),
        ("photo.jpg", png(), 422, "its content is PNG, not .jpg"),
        ("text.gif", b"GIF? no, text", 422, "not a JPEG, PNG, GIF or WebP"),
        ("../../x.png", png(), 422, "has a path in it"),
        ("My photo!.PNG", png(), 409, "exists already"),
    ]:
        answer = upload(desk, name, data, "image", "images")
        assert answer.status_code == status and words.lower() in words_of(answer).lower(), (name, answer.text)
    assert sorted(p.name for p in (folder(desk) / "images").iterdir() if not p.name.startswith(".")) == \
        ["My-photo.png"]
    assert desk.editor.get(f"/desk/issues/{SLUG}/images/..%2F..%2Fissue.toml").status_code == 404
    (folder(desk) / "images" / "link.png").symlink_to(desk.web.settings.root / "templates" / "web" / "site.css")
    assert desk.editor.get(f"/desk/issues/{SLUG}/images/link.png").status_code == 404


def test_report_files_dropped_into_the_folder_can_be_included(desk: Desk) -> None:
    new_issue(desk)
    paste(desk, "First\n\nThe first report, pasted.")
    (folder(desk) / "reports" / "by hand.md").write_text("# By hand\n\nWritten in an editor.\n", encoding="utf-8")
    page = desk.editor.get(f"/desk/issues/{SLUG}")
    assert "In the folder but not in the issue: by hand.md." in words_of(page)
    assert post(desk, f"/desk/issues/{SLUG}/reports/include").status_code == 303
    assert toml(desk)["reports"] == ["01-first.txt", "by hand.md"]
    page = desk.editor.get(f"/desk/issues/{SLUG}")
    assert "In the folder but not" not in page.text
    assert 'action="/desk/issues/2026-12-desk/reports/by%20hand.md/move"' in page.text
    assert post(desk, f"/desk/issues/{SLUG}/reports/by%20hand.md/move", {"direction": "up"}).status_code == 303
    assert toml(desk)["reports"] == ["by hand.md", "01-first.txt"]


def test_a_scheduled_issue_can_change_and_says_to_refresh(desk: Desk) -> None:
    mark_sent(desk, "example", SendStatus.SCHEDULED)
    page = desk.editor.get("/desk/issues/example")
    assert "This issue is scheduled." in words_of(page) and 'href="/desk/schedules"' in page.text
    assert post(desk, "/desk/issues/example", {"subject": "Changed", "lists": ["news"]}).status_code == 303
    assert toml(desk, "example")["subject"] == "Changed"


def test_remove_an_image_after_a_confirmation(desk: Desk) -> None:
    new_issue(desk)
    upload(desk, "a.png", png(), "image", "images")
    confirm = desk.editor.get(f"/desk/issues/{SLUG}/images/a.png/remove")
    assert confirm.status_code == 200 and "Remove the image" in confirm.text
    assert (folder(desk) / "images" / "a.png").exists()
    assert post(desk, f"/desk/issues/{SLUG}/images/a.png/remove").status_code == 303
    assert not (folder(desk) / "images" / "a.png").exists()
    assert post(desk, f"/desk/issues/{SLUG}/images/a.png/remove").status_code == 404
    assert desk.editor.get(f"/desk/issues/{SLUG}/images/a.png/remove").status_code == 404
    assert audit_rows(desk)[-1] == ("image_remove", EDITOR, f"{SLUG}/images/a.png")
    upload(desk, "b.png", png(), "image", "images")
    mark_sent(desk, SLUG)
    assert post(desk, f"/desk/issues/{SLUG}/images/b.png/remove").status_code == 409
    assert (folder(desk) / "images" / "b.png").exists()


def test_preview_frames_and_the_compose_check(desk: Desk) -> None:
    frame = desk.editor.get("/desk/issues/example/preview/named")
    assert frame.status_code == 200 and frame.mimetype == "text/html"
    csp = frame.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none';") and "frame-ancestors 'self'" in csp and "script-src" not in csp
    assert "X-Frame-Options" not in frame.headers
    assert "Sam" in frame.text and "Branch meeting, 18 November" in frame.text
    nameless = desk.editor.get("/desk/issues/example/preview/nameless")
    assert "Sam" not in words_of(nameless).split("Branch meeting")[0]
    text = desk.editor.get("/desk/issues/example/preview/text")
    assert text.mimetype == "text/plain" and "BRANCH MEETING" in text.text.upper()
    dark = desk.editor.get("/desk/issues/example/preview/dark")
    assert 'content="dark"' in dark.text
    assert desk.editor.get("/desk/issues/example/preview/other").status_code == 404
    page = desk.editor.get("/desk/issues/example")
    for variant in ("named", "dark", "nameless", "text"):
        assert f'src="/desk/issues/example/preview/{variant}"' in page.text
    assert page.text.count("<iframe") == 5 and page.text.count(" sandbox") >= 5
    assert desk.editor.get("/desk/issues/example/preview").status_code == 200


def test_preview_json_changes_with_the_files(desk: Desk) -> None:
    first = desk.editor.get("/desk/issues/example/preview.json").json
    assert first["error"] == "" and len(first["version"]) == 64 and isinstance(first["warnings"], list)
    assert f'data-version="{first["version"]}"' in desk.editor.get("/desk/issues/example").text
    assert desk.editor.get("/desk/issues/example/preview.json").json == first           # nothing changed
    report = folder(desk, "example") / "reports" / "03-whats-on.md"
    report.write_text(report.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    second = desk.editor.get("/desk/issues/example/preview.json").json
    assert second["version"] != first["version"] and second["error"] == ""
    report.write_text("# What's on\n\n[bad](javascript:alert(1)).\n", encoding="utf-8")
    third = desk.editor.get("/desk/issues/example/preview.json").json
    assert third["version"] not in ("", second["version"]) and third["error"].startswith("03-whats-on.md: a link to")
    assert desk.editor.get("/desk/issues/nope/preview.json").status_code == 404
    assert desk.web.app.test_client().get("/desk/issues/example/preview.json").status_code == 401


def test_an_issue_that_does_not_compose_shows_one_line(desk: Desk) -> None:
    make_issue(desk.web.settings.root, "2026-12-broken", {"a.md": "# A\n\n[click](javascript:alert(1)) and "
                                                          "[here](ftp://x.org)."}, subject="Broken")
    preview = desk.editor.get("/desk/issues/2026-12-broken/preview")
    assert preview.status_code == 422
    error = [line for line in words_of(preview).split("This issue does not compose: ")[1:]]
    assert error and error[0].startswith("a.md: a link to 'javascript:alert(1)' was removed")
    assert "(and 1 more problem)" in error[0] and "Traceback" not in preview.text
    assert desk.editor.get("/desk/issues/2026-12-broken/preview/named").status_code == 422
    page = desk.editor.get("/desk/issues/2026-12-broken")
    assert page.status_code == 200 and "This issue does not compose: a.md: a link to" in words_of(page)
    broken_toml = make_issue(desk.web.settings.root, "2026-12-badtoml", {}, toml="subject = [\n")
    page = desk.editor.get("/desk/issues/2026-12-badtoml")
    assert page.status_code == 200 and "invalid TOML" in page.text and broken_toml.is_dir()


def test_posts_without_the_csrf_token_are_400_and_change_nothing(desk: Desk) -> None:
    before = (folder(desk, "example") / "issue.toml").read_bytes()
    assert desk.editor.post("/desk/issues", data={"slug": SLUG, "date": "2026-12-01", "subject": "x"}).status_code == 400
    assert desk.editor.post("/desk/issues/example", data={"subject": "x"}).status_code == 400
    assert desk.editor.post("/desk/issues/example/reports/paste", data={"text": "x"}).status_code == 400
    assert not folder(desk).exists() and (folder(desk, "example") / "issue.toml").read_bytes() == before


@pytest.mark.browser
@pytest.mark.slow
def test_issue_page_fits_a_phone_with_the_preview(settings) -> None:  # type: ignore[no-untyped-def]
    """At 390 px the issue page, preview frames included, has no horizontal overflow; the paste script
    runs under the desk's CSP."""
    from mailer.db import Database
    from mailer.desk import accounts, sessions
    from mailer.desk.pages import cookie_name_for
    from tests.helpers import chromium, free_port
    from tests.test_browser import LiveServer

    port = free_port()
    settings = settings.replace(backend="memory", base_url=f"http://127.0.0.1:{port}", web_port=port)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    raw = sessions.set_password_and_login(db, accounts.add_user(db, EDITOR, "editor"), "correct horse battery",
                                          "127.0.0.1")
    try:
        with LiveServer(settings, db), chromium() as browser:
            context = browser.new_context(viewport={"width": 390, "height": 844})
            context.add_cookies([{"name": cookie_name_for(settings.base_url), "value": raw,
                                  "url": f"{settings.base_url}/desk/"}])
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{settings.base_url}/desk/issues/example")
            page.locator("#preview").scroll_into_view_if_needed()
            for frame in page.locator("iframe").all():
                frame.scroll_into_view_if_needed()
            page.wait_for_load_state("networkidle")
            assert page.locator("iframe").count() == 5
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            widths = page.evaluate("Array.from(document.querySelectorAll('iframe')).map(f => f.getBoundingClientRect().right)")
            assert max(widths) <= 390
            frame_text = page.frame_locator("iframe[title='Preview: desktop, named reader']").locator("body").inner_text()
            assert "Branch meeting" in frame_text
            # rich paste: the clipboard's HTML goes with the form, and the report keeps its formatting
            page.evaluate("""() => {
                const box = document.getElementById('paste-text');
                const data = new DataTransfer();
                data.setData('text/html', '<p><b>Bold</b> and <i>italic</i>, <a href="https://example.org/">a link</a>.</p>'
                             + '<ul><li>one</li><li>two</li></ul><script>alert(1)</' + 'script>');
                data.setData('text/plain', 'Bold and italic, a link.');
                box.focus();
                box.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
                box.value = 'Bold and italic, a link.\\n\\none\\ntwo';
                box.dispatchEvent(new InputEvent('input', {inputType: 'insertFromPaste', bubbles: true}));
            }""")
            assert "Formatting kept" in page.inner_text("[data-paste-status]")
            page.fill("#paste-title", "Pasted from Docs")
            page.click("text=Add the report")
            page.wait_for_url("**/desk/issues/example?done=report*")
            report = settings.root / "issues" / "example" / "reports" / "04-pasted-from-docs.md"
            assert report.read_text(encoding="utf-8") == (
                '---\ntitle: "Pasted from Docs"\n---\n\n**Bold** and *italic*, [a link](https://example.org/).\n\n'
                "- one\n- two\n")
            # the live preview: a report changed on disk reloads the frames, the page stays
            page.fill("#paste-title", "Typed, not yet saved")
            report = settings.root / "issues" / "example" / "reports" / "01-branch-meeting.md"
            report.write_text(report.read_text(encoding="utf-8").replace("Forty-two members", "Ninety-nine members"),
                              encoding="utf-8")
            page.locator("[data-live-status]", has_text="Preview updated").wait_for()
            frame = page.frame_locator("iframe[title='Preview: desktop, named reader']").locator("body")
            frame.locator("text=Ninety-nine members").wait_for()
            assert page.input_value("#paste-title") == "Typed, not yet saved"
            assert [e for e in errors if "Content Security Policy" in e] == []
            context.close()
    finally:
        db.dispose()


@pytest.mark.parametrize(("pasted", "markdown"), [
    # Google Docs: bold and italics as styles, the whole inside a <b style="font-weight:normal">
    ('<b style="font-weight:normal;" id="docs-internal-guid-x"><p dir="ltr"><span style="font-weight:700">Rally</span>'
     '<span style="font-weight:400"> on </span><span style="font-style:italic">Saturday</span></p></b>',
     "**Rally** on *Saturday*\n"),
    # Word: MsoNormal paragraphs, list paragraphs with their bullet in an mso-list:Ignore span
    ('<p class=MsoNormal><b>Agenda</b><o:p></o:p></p><p class=MsoListParagraph><span style="mso-list:Ignore">·'
     '<span>&nbsp;&nbsp;</span></span>Minutes</p><p class=MsoListParagraph><span style="mso-list:Ignore">·</span>'
     'Treasurer</p>', "**Agenda**\n\n- Minutes\n- Treasurer\n"),
    ('<ol><li>First</li><li>Second <a href="https://example.org/a b">link</a></li></ol>',
     "1. First\n2. Second [link](https://example.org/a%20b)\n"),
    ('<p>5 * 3 = 15 &lt;script&gt; _x_ #tag</p><p>1. not a list</p><p>Wow!<a href="https://x.org">here</a></p>',
     "5 \\* 3 = 15 \\<script\\> \\_x\\_ \\#tag\n\n1\\. not a list\n\nWow\\![here](https://x.org)\n"),
    ('<style>p{color:red}</style><script>alert(1)</script><p style="color:red" onclick="x()">Kept'
     '<img src="https://x.org/i.png"> <iframe src="https://x.org"></iframe><a href="javascript:alert(1)">text</a>'
     '</p><table><tr><td>a</td><td>b</td></tr></table>', "Kept text\n\na b\n"),
])
def test_pasted_html_keeps_paragraphs_bold_italics_links_and_lists_only(pasted: str, markdown: str) -> None:
    from mailer.desk.richtext import html_to_markdown

    assert html_to_markdown(pasted) == markdown


def test_a_docx_keeps_its_pictures_as_images_and_leaves_out_the_others(desk: Desk) -> None:
    from tests.docx_files import docx_with_pictures

    new_issue(desk)
    data = docx_with_pictures("Our march", [(png(), "png", "Marchers on Mill Lane"), (b"\x01\x00\x00\x00EMF", "emf", "A chart"),
                                            (png((20, 20), "GIF"), "gif", "")])
    done = upload(desk, "March report.docx", data)
    assert done.status_code == 303 and done.headers["Location"].endswith("done=report_pictures#reports")
    text = (folder(desk) / "reports" / "01-march-report.md").read_text(encoding="utf-8")
    assert text == "Our march\n\n![Marchers on Mill Lane](images/March-report-1.png)\n\n![picture](images/March-report-2.gif)\n"
    assert sorted(p.name for p in (folder(desk) / "images").iterdir()) == ["March-report-1.png", "March-report-2.gif"]
    assert (folder(desk) / "images" / "March-report-1.png").read_bytes() == png()
    page = desk.editor.get(f"/desk/issues/{SLUG}?done=report_pictures")
    assert "Some of its pictures were left out" in words_of(page)
    result = CliRunner().invoke(cli, ["compose", f"issues/{SLUG}"], env={**TEST_ENV, "MAILER_ROOT": str(desk.web.settings.root)})
    assert result.exit_code == 0, result.output                         # the pictures are there for the composer
    # a .docx that is refused after its pictures were read leaves none of them behind
    refused = upload(desk, "bad.docx", docx_with_pictures("Text", [(png(), "png", "A picture")]), title="two\nlines")
    assert refused.status_code == 422 and "Title: one line" in words_of(refused)
    assert sorted(p.name for p in (folder(desk) / "images").iterdir()) == ["March-report-1.png", "March-report-2.gif"]
