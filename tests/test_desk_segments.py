"""Segments and tags on the desk: the list with counts, trying an expression, saving, changing and
removing one, tags on a person's page; the parser's errors, SQL-looking text, taken and unknown names,
and the audit. SQLite and PostgreSQL (the `desk` fixture): news user0-3, bulletin user2-5.
"""

from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from mailer.models import DeskAudit, Segment, Subscriber, SubscriberTag
from mailer.people import tagging
from tests.desk_fixtures import EDITOR, Desk, desk, text_of, web_app  # noqa: F401
from tests.helpers import add_subscribers


@pytest.fixture
def people(desk: Desk) -> Desk:
    add_subscribers(desk.web.db, "news", 4, settings=desk.web.settings)
    add_subscribers(desk.web.db, "bulletin", 4, settings=desk.web.settings, start=2)
    for email in ("user0@example.net", "user3@example.net"):
        tagging.tag(desk.web.db, email, ["eastfield"])
    return desk


def words(answer) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(text_of(answer.text))


def saved(desk: Desk) -> dict[str, str]:
    with desk.web.db.session() as session:
        return dict(session.execute(select(Segment.name, Segment.expression)).all())


def audit_rows(desk: Desk) -> list[tuple[str, str, str]]:
    with desk.web.db.session() as session:
        return [(r.action, r.actor, r.target) for r in session.scalars(
            select(DeskAudit).where(DeskAudit.action.like("segment_%") | DeskAudit.action.like("subscriber_%tag"))
            .order_by(DeskAudit.id))]


def test_try_save_change_and_remove_a_segment(people: Desk) -> None:
    desk = people
    page = desk.editor.get("/desk/segments")
    assert page.status_code == 200 and "No segments yet" in page.text and 'aria-current="page">Segments' in page.text
    tried = desk.post(desk.editor, "/desk/segments/try", {"name": "east-news", "expression": "tag = eastfield and list = news"},
                      form_page="/desk/segments")
    assert tried.status_code == 200
    assert "It selects 2 people now, such as: user0@example.net user3@example.net" in words(tried)
    assert saved(desk) == {} and audit_rows(desk) == []                       # trying saves nothing
    done = desk.post(desk.editor, "/desk/segments", {"name": "East-News", "expression": "tag = eastfield  and list = news"},
                     form_page="/desk/segments")
    assert done.status_code == 303 and done.headers["Location"] == "/desk/segments/east-news?done=created"
    assert saved(desk) == {"east-news": "tag = eastfield and list = news"}
    listed = words(desk.editor.get("/desk/segments"))
    assert f"east-news {tagging.count_of(desk.web.db, 'tag = eastfield and list = news')} tag = eastfield and list = news" in listed
    one = words(desk.editor.get("/desk/segments/east-news?done=created"))
    assert "The segment was saved." in one and "It selects 2 people (counted within the last minute)" in one
    changed = desk.post(desk.editor, "/desk/segments/east-news", {"expression": "tag = eastfield and not list = bulletin"},
                        form_page="/desk/segments/east-news")
    assert changed.status_code == 303 and saved(desk) == {"east-news": "tag = eastfield and not list = bulletin"}
    one = words(desk.editor.get("/desk/segments/east-news"))
    assert "It selects 1 person (counted within the last minute)" in one and "such as: user0@example.net" in one
    confirm = desk.editor.get("/desk/segments/east-news/remove")
    assert confirm.status_code == 200 and "keep the people it chose" in confirm.text
    gone = desk.post(desk.editor, "/desk/segments/east-news/remove", form_page="/desk/segments/east-news/remove")
    assert gone.status_code == 303 and saved(desk) == {}
    assert audit_rows(desk) == [("segment_add", EDITOR, "east-news"), ("segment_edit", EDITOR, "east-news"),
                                ("segment_remove", EDITOR, "east-news")]


@pytest.mark.parametrize(("name", "expression", "status", "words_shown"), [
    ("bad", "tag =", 422, "Segment expression: at the end: expected a value after tag ="),
    ("bad", "colour = red", 422, "Segment expression: position 1: unknown field"),
    ("bad", "tag = x; DROP TABLE subscriber", 422, "Segment expression: position"),
    ("bad", "status = lost", 422, "status is one of"),
    ("two words", "tag = x", 422, "Segment name 'two words': use letters"),
    ("x" * 10_000, "tag = x", 422, "Segment name"),
    ("bad", "tag = x " * 400, 422, "keep it under 2000"),
])
def test_bad_segments_are_422_and_save_nothing(people: Desk, name: str, expression: str, status: int,
                                               words_shown: str) -> None:
    desk = people
    for path in ("/desk/segments", "/desk/segments/try"):
        refused = desk.post(desk.editor, path, {"name": name, "expression": expression}, form_page="/desk/segments")
        if path.endswith("try") and "name" in words_shown.lower() and "expression" not in words_shown.lower():
            assert refused.status_code == 200          # trying does not look at the name
            continue
        assert refused.status_code == status and words_shown in words(refused), (path, words(refused)[-400:])
        assert 'aria-invalid="true"' in refused.text
    assert saved(desk) == {} and audit_rows(desk) == []
    with desk.web.db.session() as session:              # the table the SQL-looking text named is intact
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 6


def test_taken_unknown_and_bad_edits(people: Desk) -> None:
    desk = people
    tagging.add_segment(desk.web.db, "east", "tag = eastfield")
    taken = desk.post(desk.editor, "/desk/segments", {"name": "east", "expression": "tag = x"}, form_page="/desk/segments")
    assert taken.status_code == 409 and "Segment 'east' exists already: open it" in words(taken)
    assert "mailer segments" not in words(taken)
    assert 'aria-invalid="true"' in taken.text.split('id="name"', 1)[1].split(">", 1)[0]
    bad = desk.post(desk.editor, "/desk/segments/east", {"expression": "tag = (oops"}, form_page="/desk/segments/east")
    assert bad.status_code == 422 and "position 7" in words(bad) and "tag = (oops" in bad.text
    assert saved(desk) == {"east": "tag = eastfield"}
    assert desk.editor.get("/desk/segments/nope").status_code == 404
    assert desk.editor.get("/desk/segments/nope/remove").status_code == 404
    assert desk.post(desk.editor, "/desk/segments/nope", {"expression": "tag = x"}, form_page="/desk/segments").status_code == 404
    assert desk.post(desk.editor, "/desk/segments/nope/remove", form_page="/desk/segments").status_code == 404
    assert desk.editor.post("/desk/segments", data={"name": "x", "expression": "tag = x"}).status_code == 400
    assert desk.editor.post("/desk/segments/east/remove").status_code == 400       # no CSRF token
    assert saved(desk) == {"east": "tag = eastfield"} and audit_rows(desk) == []


def test_tags_on_a_persons_page(people: Desk) -> None:
    desk = people
    from mailer.desk.people import id_of

    sid = id_of(desk.web.db, "user1@example.net")
    page_path = f"/desk/subscribers/{sid}"
    assert "No tags." in desk.editor.get(page_path).text
    done = desk.post(desk.editor, f"{page_path}/tags", {"tags": "Volunteer, mill-lane  volunteer"}, form_page=page_path)
    assert done.status_code == 303 and done.headers["Location"] == f"{page_path}?done=tagged#tags"
    assert tagging.tags_of(desk.web.db, "user1@example.net") == ["mill-lane", "volunteer"]
    for typed, shown in (("has;semicolon", "Tag 'has;semicolon': use letters"), ("y" * 100, "Tag 'yyyy"),
                         ("", "Tags: type one or more tags"), (" ".join(f"t{i}" for i in range(21)), "at most 20")):
        refused = desk.post(desk.editor, f"{page_path}/tags", {"tags": f"fine {typed}" if typed else "  "},
                            form_page=page_path)
        assert refused.status_code == 422 and shown in words(refused), (typed, words(refused)[:300])
    assert tagging.tags_of(desk.web.db, "user1@example.net") == ["mill-lane", "volunteer"]   # "fine" not added
    removed = desk.post(desk.editor, f"{page_path}/tags/remove", {"tag": "volunteer"}, form_page=page_path)
    assert removed.status_code == 303 and tagging.tags_of(desk.web.db, "user1@example.net") == ["mill-lane"]
    assert desk.post(desk.editor, f"{page_path}/tags/remove", {"tag": "volunteer"}, form_page=page_path).status_code == 404
    assert desk.post(desk.editor, "/desk/subscribers/99999/tags", {"tags": "x"}, form_page=page_path).status_code == 404
    with desk.web.db.session() as session:
        assert session.scalar(select(func.count()).select_from(SubscriberTag)) == 3    # user0, user3, user1
    assert audit_rows(desk) == [("subscriber_tag", EDITOR, "user1@example.net"),
                                ("subscriber_untag", EDITOR, "user1@example.net")]


def test_the_subscriber_search_filters_by_tag(people: Desk) -> None:
    desk = people
    from mailer.desk.people import id_of

    page = desk.editor.get("/desk/subscribers?tag=Eastfield")
    assert page.status_code == 200 and 'id="tag" name="tag" value="Eastfield"' in page.text
    found = words(page)
    assert "user0@example.net" in found and "user3@example.net" in found
    assert "user1@example.net" not in found and "user2@example.net" not in found
    both = words(desk.editor.get("/desk/subscribers?tag=eastfield&list=bulletin"))
    assert "user3@example.net" in both and "user0@example.net" not in both
    assert "user0@example.net" not in words(desk.editor.get("/desk/subscribers?tag=eastfield&q=user3"))
    assert "@example.net" not in words(desk.editor.get("/desk/subscribers?tag=nobody-has-it"))
    bad = desk.editor.get("/desk/subscribers?tag=two%20words")
    assert bad.status_code == 422 and "Tag 'two words': use letters" in words(bad)
    assert 'aria-invalid="true"' in bad.text.split('id="tag"', 1)[1].split(">", 1)[0]
    person = desk.editor.get(f"/desk/subscribers/{id_of(desk.web.db, 'user0@example.net')}")
    assert 'href="/desk/subscribers?tag=eastfield"' in person.text          # a tag leads to everyone with it
    assert "tag=" not in desk.editor.get("/desk/subscribers?tag=eastfield&list=news").text.split(
        'href="/desk/subscribers/export.csv', 1)[1].split('"', 1)[0]       # the export takes list and status only


def test_segment_and_tag_pages_need_the_session_token(people: Desk) -> None:
    desk = people
    from mailer.desk.people import id_of

    tagging.add_segment(desk.web.db, "east", "tag = eastfield")
    sid = id_of(desk.web.db, "user0@example.net")
    assert desk.editor.post("/desk/segments/east", data={"expression": "tag = x"}).status_code == 400
    assert desk.editor.post(f"/desk/subscribers/{sid}/tags", data={"tags": "x"}).status_code == 400
    assert desk.editor.post(f"/desk/subscribers/{sid}/tags/remove", data={"tag": "eastfield"}).status_code == 400
    assert saved(desk) == {"east": "tag = eastfield"} and audit_rows(desk) == []
    assert tagging.tags_of(desk.web.db, "user0@example.net") == ["eastfield"]


def test_script_in_a_tag_is_refused_and_shown_as_text(people: Desk) -> None:
    desk = people
    from mailer.desk.people import id_of

    sid = id_of(desk.web.db, "user1@example.net")
    refused = desk.post(desk.editor, f"/desk/subscribers/{sid}/tags", {"tags": "<script>alert(1)</script>"},
                        form_page=f"/desk/subscribers/{sid}")
    assert refused.status_code == 422 and "<script>alert" not in refused.text and "&lt;script&gt;" in refused.text
    assert tagging.tags_of(desk.web.db, "user1@example.net") == []


def test_try_a_change_on_the_segments_page_saves_nothing(people: Desk) -> None:
    desk = people
    tagging.add_segment(desk.web.db, "east", "tag = eastfield")
    tried = desk.post(desk.editor, "/desk/segments/east/try", {"expression": "tag = eastfield and list = bulletin"},
                      form_page="/desk/segments/east")
    assert tried.status_code == 200
    shown = words(tried)
    assert "It selects 2 people (counted within the last minute)" in shown                                # the saved one, as it is
    assert "Changed like this, it would select 1 person now, such as: user3@example.net" in shown
    assert "tag = eastfield and list = bulletin</textarea>" in tried.text      # the typed text kept to save
    bad = desk.post(desk.editor, "/desk/segments/east/try", {"expression": "tag = x; DROP TABLE subscriber"},
                    form_page="/desk/segments/east")
    assert bad.status_code == 422 and "Segment expression: position" in words(bad)
    assert 'aria-invalid="true"' in bad.text.split('id="expression"', 1)[1].split(">", 1)[0]
    assert desk.post(desk.editor, "/desk/segments/nope/try", {"expression": "tag = x"},
                     form_page="/desk/segments/east").status_code == 404
    assert saved(desk) == {"east": "tag = eastfield"} and audit_rows(desk) == []
