"""The desk's list pages: counts, create, edit, the embeddable sign-up form, bad input, audit.

Run on SQLite and PostgreSQL (the `db` fixture), through the Flask test client and the real CLI.
"""

from __future__ import annotations

import html
import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailer.cli import cli
from mailer.models import DeskAudit, MailingList, OptIn
from mailer.people import directory
from tests.desk_fixtures import EDITOR, Desk, desk, text_of, web_app  # noqa: F401
from tests.helpers import TEST_ENV


def lists_in(desk: Desk) -> dict[str, tuple[str, str, OptIn]]:
    with desk.web.db.session() as session:
        return {m.slug: (m.name, m.description, m.opt_in) for m in session.scalars(select(MailingList))}


def audit_rows(desk: Desk) -> list[tuple[str, str, str]]:
    with desk.web.db.session() as session:
        return [(r.action, r.actor, r.target) for r in session.scalars(
            select(DeskAudit).where(DeskAudit.action.like("list_%")).order_by(DeskAudit.id))]


def create(desk: Desk, **fields: str):  # type: ignore[no-untyped-def]
    data = {"slug": "press", "name": "Press releases", "description": "For journalists", "opt_in": "double",
            **fields}
    return desk.post(desk.editor, "/desk/lists", data, form_page="/desk/lists")


def test_lists_page_shows_every_list_with_counts_per_status(desk: Desk) -> None:
    db, settings = desk.web.db, desk.web.settings
    for n in range(3):
        directory.add_subscriber(db, settings, f"c{n}@example.org", "", "news", True)
    directory.add_subscriber(db, settings, "p@example.org", "", "news", False)
    directory.add_subscriber(db, settings, "u@example.org", "", "bulletin", True)
    directory.unsubscribe_person(db, settings, "u@example.org", "bulletin")
    page = desk.editor.get("/desk/lists")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Riverside News (news, double opt-in) 3 1 0 Public page" in text
    assert "Action Bulletin (bulletin, single opt-in) 0 0 1 Public page" in text
    assert 'href="/subscribe/news"' in page.text and 'aria-current="page">Lists' in page.text


def test_create_a_list_then_it_is_on_the_public_sign_up_page(desk: Desk) -> None:
    done = create(desk)
    assert done.status_code == 303 and done.headers["Location"] == "/desk/lists/press?done=created"
    assert lists_in(desk)["press"] == ("Press releases", "For journalists", OptIn.DOUBLE)
    page = desk.editor.get("/desk/lists/press?done=created")
    assert "The list was created." in page.text and "For journalists" in page.text
    assert desk.web.client.get("/subscribe/press").status_code == 200
    assert "Press releases" in desk.web.client.get("/").text
    assert audit_rows(desk) == [("list_add", EDITOR, "press")]


def test_edit_a_list_keeps_its_slug_and_subscribers(desk: Desk) -> None:
    directory.add_subscriber(desk.web.db, desk.web.settings, "ana@example.org", "", "news", True)
    done = desk.post(desk.editor, "/desk/lists/news", {"name": "Riverside Weekly", "description": "Every Friday",
                                                       "opt_in": "single"}, form_page="/desk/lists/news")
    assert done.status_code == 303 and done.headers["Location"] == "/desk/lists/news?done=saved"
    assert lists_in(desk)["news"] == ("Riverside Weekly", "Every Friday", OptIn.SINGLE)
    page = text_of(desk.editor.get("/desk/lists/news?done=saved").text)
    assert "Your changes were saved." in page and "Confirmed 1" in page
    assert audit_rows(desk) == [("list_edit", EDITOR, "news")]


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"slug": "Bad Slug"}, "slug", "list slug 'Bad Slug'"),
    ({"name": "   "}, "name", "list name: must be one line"),
    ({"name": "Evil\r\nBcc: x@example.org"}, "name", "list name: must be one line"),
    ({"description": "x" * 1001}, "description", "at most 1000 characters"),
    ({"opt_in": "triple"}, "opt_in", "opt-in: choose double or single"),
])
def test_a_bad_field_is_422_naming_it_and_creates_nothing(desk: Desk, fields: dict, field: str, words: str) -> None:
    refused = create(desk, **fields)
    assert refused.status_code == 422 and words.lower() in html.unescape(refused.text).lower()
    assert re.search(rf'id="{field}[^>]*aria-invalid="true"', refused.text)
    assert set(lists_in(desk)) == {"news", "bulletin"} and audit_rows(desk) == []


def test_a_bad_edit_is_422_and_changes_nothing(desk: Desk) -> None:
    refused = desk.post(desk.editor, "/desk/lists/news", {"name": "", "description": "x", "opt_in": "double"},
                        form_page="/desk/lists/news")
    assert refused.status_code == 422 and "List name: must be one line" in html.unescape(refused.text)
    assert lists_in(desk)["news"] == ("Riverside News", "", OptIn.DOUBLE) and audit_rows(desk) == []


def test_a_taken_slug_is_409(desk: Desk) -> None:
    refused = create(desk, slug="news")
    assert refused.status_code == 409 and "List 'news' exists already." in html.unescape(refused.text)
    assert lists_in(desk)["news"][0] == "Riverside News"


def test_an_unknown_list_is_404(desk: Desk) -> None:
    assert desk.editor.get("/desk/lists/nope").status_code == 404
    token = desk.token(desk.editor, "/desk/lists")
    assert desk.editor.post("/desk/lists/nope", data={"csrf_token": token, "name": "x"}).status_code == 404


def test_script_in_a_list_name_renders_as_text(desk: Desk) -> None:
    evil = "<script>alert(1)</script>"
    assert create(desk, slug="evil", name=evil, description="<img src=x onerror=alert(2)>").status_code == 303
    for path in ("/desk/lists", "/desk/lists/evil"):
        page = desk.editor.get(path).text
        assert evil not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # in the snippet too: escaped once in the HTML to paste, and again inside the textarea
    assert "Subscribe to &amp;lt;script&amp;gt;" in desk.editor.get("/desk/lists/evil").text


def test_posts_without_the_csrf_token_are_400_and_change_nothing(desk: Desk) -> None:
    assert desk.editor.post("/desk/lists", data={"slug": "x", "name": "X", "opt_in": "double"}).status_code == 400
    assert desk.editor.post("/desk/lists/news", data={"name": "X", "opt_in": "double",
                                                      "csrf_token": "forged"}).status_code == 400
    other = desk.post(desk.editor, "/desk/lists", {"slug": "x", "name": "X", "opt_in": "double"},
                      form_page="/desk/lists", headers={"Origin": "https://evil.example"})
    assert other.status_code == 400
    assert set(lists_in(desk)) == {"news", "bulletin"} and lists_in(desk)["news"][0] == "Riverside News"


def test_without_a_session_the_list_pages_go_to_the_login(desk: Desk) -> None:
    for path in ("/desk/lists", "/desk/lists/news"):
        assert desk.web.client.get(path).headers["Location"] == "/desk/login"


def test_snippet_is_a_link_without_embed_origins(desk: Desk) -> None:
    page = desk.editor.get("/desk/lists/news").text
    snippet = html.unescape(page.split('readonly', 1)[1].split(">", 1)[1].split("</textarea>")[0])
    assert snippet == '<a href="https://news.example.org/subscribe/news">Subscribe to Riverside News</a>'
    assert 'data-copy="snippet" hidden' in page and '<script src="/desk/js/copy.js"' in page
    assert "web.embed_origins" in page
    script = desk.editor.get("/desk/js/copy.js")
    assert script.status_code == 200 and "navigator.clipboard" in script.text


def test_snippet_frames_the_embed_page_when_origins_are_allowed(desk: Desk) -> None:
    ext = desk.web.app.extensions["mailer"]
    ext.settings = ext.settings.replace(web_embed_origins=("https://our-group.example",))
    page = desk.editor.get("/desk/lists/news").text
    snippet = html.unescape(page.split('readonly', 1)[1].split(">", 1)[1].split("</textarea>")[0])
    assert snippet.startswith('<iframe src="https://news.example.org/embed/news" title="Subscribe to Riverside News"')
    assert "https://our-group.example" in text_of(page)
    # what the frame shows is the live form, with a fresh token, frameable by that origin only
    framed = desk.web.client.get("/embed/news")
    assert framed.status_code == 200 and 'name="csrf_token"' in framed.text
    assert "frame-ancestors https://our-group.example" in framed.headers["Content-Security-Policy"]


def test_cli_lists_edit_calls_the_same_function(desk: Desk) -> None:
    settings = desk.web.settings
    env = {**TEST_ENV, "MAILER_ROOT": str(settings.root), "MAILER_DATABASE_URL": desk.web.db.url}
    result = CliRunner().invoke(cli, ["lists", "edit", "news", "--name", "Riverside Weekly", "--single-opt-in"],
                                env=env)
    assert result.exit_code == 0 and "list news changed" in result.output
    assert lists_in(desk)["news"] == ("Riverside Weekly", "", OptIn.SINGLE)
    bad = CliRunner().invoke(cli, ["lists", "edit", "news", "--name", "a\nb"], env=env)
    assert bad.exit_code == 2 and "list name: must be one line" in bad.output
    none = CliRunner().invoke(cli, ["lists", "edit", "news"], env=env)
    assert none.exit_code == 2 and "give --name" in none.output
    assert "Riverside Weekly" in desk.editor.get("/desk/lists").text


@pytest.mark.browser
@pytest.mark.slow
def test_copy_button_in_chromium_under_the_desk_csp(settings) -> None:  # type: ignore[no-untyped-def]
    """The Copy button appears only with the script (allowed by the CSP) and selects the snippet."""
    from mailer.db import Database
    from mailer.desk import accounts, sessions
    from mailer.desk.pages import cookie_name_for
    from mailer.people.lists import add_list
    from tests.helpers import chromium, free_port
    from tests.test_browser import LiveServer

    port = free_port()
    settings = settings.replace(backend="memory", base_url=f"http://127.0.0.1:{port}", web_port=port)
    db = Database(settings.resolved_database_url)
    db.upgrade()
    with db.session() as session:
        add_list(session, "news", "Riverside <News>", OptIn.DOUBLE)
    raw = sessions.set_password_and_login(db, accounts.add_user(db, EDITOR, "editor"), "correct horse battery",
                                          "127.0.0.1")
    try:
        with LiveServer(settings, db), chromium() as browser:
            for javascript in (True, False):
                context = browser.new_context(java_script_enabled=javascript, viewport={"width": 390, "height": 844})
                context.add_cookies([{"name": cookie_name_for(settings.base_url), "value": raw,
                                      "url": f"{settings.base_url}/desk/"}])
                page = context.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                        if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
                page.goto(f"{settings.base_url}/desk/lists/news")
                button = page.locator("button[data-copy=snippet]")
                if not javascript:
                    assert not button.is_visible()     # nothing that cannot work is offered
                    context.close()
                    continue
                assert button.is_visible()
                button.click()
                page.wait_for_function("document.querySelector('[data-copy-status=snippet]').textContent !== ''")
                selected = page.evaluate("(() => { const f = document.getElementById('snippet');"
                                         " return f.value.substring(f.selectionStart, f.selectionEnd); })()")
                assert selected == f'<a href="{settings.base_url}/subscribe/news">Subscribe to Riverside &lt;News&gt;</a>'
                assert page.evaluate("document.documentElement.scrollWidth") <= 390
                assert [e for e in errors if "Failed to load resource" not in e] == []   # no CSP refusal, no 4xx
                context.close()
    finally:
        db.dispose()
