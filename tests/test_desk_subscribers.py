"""The desk's subscriber pages: search, one person, add, unsubscribe, erase, import, export, audit.

Run on SQLite and PostgreSQL (the `desk` fixture), through the Flask test client.
"""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from sqlalchemy import func, select

from mailer.models import (AuditEvent, Consent, DeskAudit, MailKind, QueuedMail, Subscriber, Subscription,
                           SubscriptionStatus, Suppression)
from mailer.people import directory
from mailer.people.exporting import export_csv
from mailer.people.tagging import tag
from tests.desk_fixtures import EDITOR, Desk, desk, text_of, web_app  # noqa: F401


def add(desk: Desk, email: str, name: str = "", slug: str = "news", confirmed: bool = True) -> None:
    directory.add_subscriber(desk.web.db, desk.web.settings, email, name, slug, confirmed)


def sid(desk: Desk, email: str) -> int:
    with desk.web.db.session() as session:
        return session.scalar(select(Subscriber.id).where(Subscriber.email_key == email.casefold()))


def desk_audit(desk: Desk) -> list[tuple[str, str, str, str]]:
    with desk.web.db.session() as session:
        return [(r.action, r.actor, r.target, r.detail) for r in session.scalars(
            select(DeskAudit).where(DeskAudit.action.like("subscriber_%")).order_by(DeskAudit.id))]


def shown(page: str) -> list[str]:
    """The addresses a search page lists, in order."""
    return re.findall(r'<a href="/desk/subscribers/\d+">([^<]+)</a>', page)


@pytest.fixture
def people(desk: Desk) -> Desk:
    add(desk, "ana@example.org", "Ana Lopez")
    add(desk, "anatole@example.net", "Zed Tole")
    add(desk, "bob@example.org", "Anabel Bob", "bulletin")
    add(desk, "carla@example.org", "Carla Mendes", confirmed=False)
    add(desk, "dan@example.org", "Dan")
    directory.unsubscribe_person(desk.web.db, desk.web.settings, "dan@example.org", "news")
    return desk


def test_search_by_address_prefix_and_by_name_prefix(people: Desk) -> None:
    page = people.editor.get("/desk/subscribers?q=ana")
    assert page.status_code == 200 and 'aria-current="page">Subscribers' in page.text
    # addresses beginning with ana, and Anabel by her name; in address order
    assert shown(page.text) == ["ana@example.org", "anatole@example.net", "bob@example.org"]
    assert shown(people.editor.get("/desk/subscribers?q=ANA%40EX").text) == ["ana@example.org"]
    assert shown(people.editor.get("/desk/subscribers?q=carla+m").text) == ["carla@example.org"]
    assert shown(people.editor.get("/desk/subscribers?q=lopez").text) == []      # a name from its start
    assert "No subscriber matches." in people.editor.get("/desk/subscribers?q=zz%25").text
    everyone = people.editor.get("/desk/subscribers").text
    assert shown(everyone) == ["ana@example.org", "anatole@example.net", "bob@example.org", "carla@example.org",
                               "dan@example.org"]
    assert "news: confirmed" in text_of(everyone) and "bulletin: confirmed" in text_of(everyone)


def test_filters_by_list_and_status(people: Desk) -> None:
    get = people.editor.get
    assert shown(get("/desk/subscribers?list=bulletin").text) == ["bob@example.org"]
    assert shown(get("/desk/subscribers?list=news&status=pending").text) == ["carla@example.org"]
    assert shown(get("/desk/subscribers?status=unsubscribed").text) == ["dan@example.org"]
    assert shown(get("/desk/subscribers?q=a&list=news&status=confirmed").text) == ["ana@example.org",
                                                                                   "anatole@example.net"]
    bad = get("/desk/subscribers?list=nope")
    assert bad.status_code == 422 and "List: there is no list 'nope'." in html.unescape(bad.text)
    assert re.search(r'id="list"[^>]*aria-invalid="true"', bad.text)
    assert get("/desk/subscribers?status=gone").status_code == 422


def test_pages_follow_the_address_order(desk: Desk) -> None:
    from mailer.people import search
    for n in range(search.PAGE + 5):
        add(desk, f"p{n:03d}@example.org")
    first = desk.editor.get("/desk/subscribers?q=p").text
    assert len(shown(first)) == search.PAGE
    more = html.unescape(re.search(r'href="([^"]+)" rel="next"', first).group(1))
    assert more == f"/desk/subscribers?q=p&after=p{search.PAGE - 1:03d}%40example.org"
    second = desk.editor.get(more).text
    assert shown(second) == [f"p{n:03d}@example.org" for n in range(search.PAGE, search.PAGE + 5)]
    assert 'rel="next"' not in second and 'href="/desk/subscribers?q=p">First page' in second


def test_person_page_shows_what_is_held_about_them(people: Desk) -> None:
    tag(people.web.db, "ana@example.org", ["volunteer"])
    with people.web.db.session() as session:
        session.get(Subscriber, sid(people, "ana@example.org")).attributes = {"city": "Eastfield"}
    page = people.editor.get(f"/desk/subscribers/{sid(people, 'ana@example.org')}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "ana@example.org" in text and "Ana Lopez" in text and "Tags volunteer" in text and "city Eastfield" in text
    assert "news confirmed admin" in text                                   # subscription, status, reason
    assert "news admin desk-jo" not in text and "admin cli" in text          # consent: source admin, form cli
    assert "subscribe news" in text                                         # history
    assert "No deliveries." in text and "No bounces." in text and "Not suppressed." in text
    dan = text_of(people.editor.get(f"/desk/subscribers/{sid(people, 'dan@example.org')}").text)
    assert "news unsubscribed admin" in dan and "unsubscribe news confirmed unsubscribed admin cli" in dan
    assert "news admin" in dan.split("Suppressions", 1)[1]
    assert people.editor.get("/desk/subscribers/999999").status_code == 404


def test_add_confirmed_and_with_an_opt_in_mail(desk: Desk) -> None:
    done = desk.post(desk.editor, "/desk/subscribers", {"email": "New@Example.org", "name": "New Person",
                                                        "lists": ["news", "bulletin"], "mode": "confirmed"},
                     form_page="/desk/subscribers")
    assert done.status_code == 303
    assert done.headers["Location"] == f"/desk/subscribers/{sid(desk, 'new@example.org')}?done=added"
    assert desk.web.status("new@example.org", "news") is SubscriptionStatus.CONFIRMED
    assert desk.web.status("new@example.org", "bulletin") is SubscriptionStatus.CONFIRMED
    assert desk.web.queued() == 0
    done = desk.post(desk.editor, "/desk/subscribers", {"email": "pend@example.org", "lists": ["news"],
                                                        "mode": "opt_in"}, form_page="/desk/subscribers")
    assert done.status_code == 303 and desk.web.status("pend@example.org") is SubscriptionStatus.PENDING
    with desk.web.db.session() as session:
        assert [r.kind for r in session.scalars(select(QueuedMail))] == [MailKind.CONFIRM]
        actors = set(session.scalars(select(AuditEvent.actor).where(AuditEvent.action == "subscribe")))
    assert actors == {f"desk:{EDITOR}"}
    desk.web.deliver()
    assert [m["To"] for m in desk.web.outbox()] == ["pend@example.org"]
    assert [a[:3] for a in desk_audit(desk)] == [("subscriber_add", EDITOR, "new@example.org"),
                                                 ("subscriber_add", EDITOR, "pend@example.org")]
    assert "news created confirmed" in desk_audit(desk)[0][3]


@pytest.mark.parametrize(("fields", "field", "status", "words"), [
    ({"email": "not-an-address"}, "email", 422, "Email: invalid email address 'not-an-address'"),
    ({"name": "Evil\r\nBcc: x@example.org"}, "name", 422, "Name contains a line break"),
    ({"lists": []}, "lists", 422, "Lists: choose at least one list"),
    ({"lists": ["news", "nope"]}, "lists", 422, "Lists: there is no list 'nope'"),
    ({"mode": "maybe"}, "mode", 422, "Choose whether consent is on record"),
])
def test_a_bad_add_names_the_field_and_adds_nothing(desk: Desk, fields: dict, field: str, status: int,
                                                    words: str) -> None:
    data = {"email": "x@example.org", "name": "X", "lists": ["news"], "mode": "confirmed", **fields}
    refused = desk.post(desk.editor, "/desk/subscribers", data, form_page="/desk/subscribers")
    assert refused.status_code == status and words in html.unescape(refused.text)
    if field in ("email", "name"):
        assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', refused.text)
    assert desk.web.count(Subscriber) == 0 and desk_audit(desk) == []


def test_adding_a_suppressed_address_is_409_and_changes_nothing(people: Desk) -> None:
    refused = people.post(people.editor, "/desk/subscribers", {"email": "dan@example.org", "lists": ["bulletin", "news"],
                                                                "mode": "confirmed"}, form_page="/desk/subscribers")
    assert refused.status_code == 409 and "is suppressed for news" in html.unescape(refused.text)
    assert people.web.status("dan@example.org", "bulletin") is None              # not half done
    assert people.web.status("dan@example.org", "news") is SubscriptionStatus.UNSUBSCRIBED


def test_unsubscribe_from_one_list_then_all_after_a_confirmation(people: Desk) -> None:
    add(people, "ana@example.org", "", "bulletin")
    ana = sid(people, "ana@example.org")
    ask = people.editor.get(f"/desk/subscribers/{ana}/unsubscribe?list=news")
    assert ask.status_code == 200 and "Unsubscribe ana@example.org from news?" in html.unescape(ask.text)
    assert people.web.status("ana@example.org") is SubscriptionStatus.CONFIRMED       # asking changes nothing
    done = people.post(people.editor, f"/desk/subscribers/{ana}/unsubscribe", {"list": "news"},
                       form_page=f"/desk/subscribers/{ana}")
    assert done.status_code == 303 and done.headers["Location"] == f"/desk/subscribers/{ana}?done=unsubscribed"
    assert people.web.status("ana@example.org", "news") is SubscriptionStatus.UNSUBSCRIBED
    assert people.web.status("ana@example.org", "bulletin") is SubscriptionStatus.CONFIRMED
    again = people.post(people.editor, f"/desk/subscribers/{ana}/unsubscribe", {"list": "news"},
                        form_page=f"/desk/subscribers/{ana}")
    assert again.status_code == 422 and "has no subscription to end on 'news'" in html.unescape(again.text)
    done = people.post(people.editor, f"/desk/subscribers/{ana}/unsubscribe", {"list": ""},
                       form_page=f"/desk/subscribers/{ana}")
    assert done.status_code == 303
    assert people.web.status("ana@example.org", "bulletin") is SubscriptionStatus.UNSUBSCRIBED
    with people.web.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) >= 2
    assert [(a[0], a[2], a[3]) for a in desk_audit(people)] == [
        ("subscriber_unsubscribe", "ana@example.org", "list=news ended=1"),
        ("subscriber_unsubscribe", "ana@example.org", "list=all ended=1")]


def test_erase_asks_first_then_removes_them_and_scrubs_both_audit_logs(people: Desk) -> None:
    ana = sid(people, "ana@example.org")
    people.post(people.editor, f"/desk/subscribers/{ana}/unsubscribe", {"list": "news"},
                form_page=f"/desk/subscribers/{ana}")
    ask = people.editor.get(f"/desk/subscribers/{ana}/erase")
    assert ask.status_code == 200 and "Erase ana@example.org?" in ask.text and people.web.status("ana@example.org")
    done = people.post(people.editor, f"/desk/subscribers/{ana}/erase", {}, form_page=f"/desk/subscribers/{ana}")
    assert done.status_code == 303 and done.headers["Location"] == "/desk/subscribers?done=erased"
    assert "The subscriber was erased" in people.editor.get("/desk/subscribers?done=erased").text
    with people.web.db.session() as session:
        assert session.get(Subscriber, ana) is None
        assert session.scalar(select(func.count()).select_from(Consent).where(Consent.email == "ana@example.org")) == 0
        rows = [(r.target, r.detail) for r in session.scalars(select(DeskAudit))]
    assert not any("ana@example.org" in target + detail for target, detail in rows), rows
    assert [(a[0], a[2]) for a in desk_audit(people)] == [("subscriber_unsubscribe", "(erased)"),
                                                          ("subscriber_erase", "(erased)")]
    assert "ana@example.org" not in people.admin.get("/desk/audit").text
    assert people.editor.get(f"/desk/subscribers/{ana}").status_code == 404
    assert people.post(people.editor, f"/desk/subscribers/{ana}/erase", {}).status_code == 404
    # the hash stays: adding the address again is refused
    again = people.post(people.editor, "/desk/subscribers", {"email": "ana@example.org", "lists": ["news"],
                                                               "mode": "confirmed"}, form_page="/desk/subscribers")
    assert again.status_code == 409


def upload(desk: Desk, content: bytes, name: str = "people.csv", slug: str = "news", confirmed: bool = True):  # type: ignore[no-untyped-def]
    data = {"file": (io.BytesIO(content), name), "list": slug}
    if confirmed:
        data["confirmed"] = "yes"
    return desk.post(desk.editor, "/desk/subscribers/import", data, form_page="/desk/subscribers/import",
                     content_type="multipart/form-data")


CSV = ("Name;E-Mail;City;Tags\n"
       "Ana Lopez;ana@example.org;Eastfield;volunteer\n"
       "Bad;not-an-address;Westfield;\n"
       "Bo;bo@example.org;;\n"
       "Cy;cy@example.org;=HYPERLINK(\"x\");\n"
       "Cy again;bad@@example.org;=cmd|' /C calc'!A0;\n").encode()


def test_import_shows_the_mapping_then_imports_and_offers_the_rejected_rows(desk: Desk) -> None:
    preview = upload(desk, CSV)
    assert preview.status_code == 200, preview.text
    text = text_of(preview.text)
    assert "Check the import of people.csv" in text and "Into Riverside News (news), confirmed" in text
    assert "name name e-mail email address city attribute tags tags" in text
    assert "2 ana@example.org Ana Lopez city: Eastfield; tags: volunteer" in text and "3 not-an-address Bad" in text
    assert desk.web.count(Subscriber) == 0                                 # nothing imported yet
    token = re.search(r'action="/desk/subscribers/import/([A-Za-z0-9_-]+)"', preview.text).group(1)
    done = desk.post(desk.editor, f"/desk/subscribers/import/{token}", {}, form_page="/desk/subscribers/import")
    assert done.status_code == 200
    text = text_of(done.text)
    assert "5 rows read: 3 imported into news, 2 rejected." in text and "New subscribers 3" in text
    assert "Line 3: invalid email address 'not-an-address'" in html.unescape(text)
    assert desk.web.status("ana@example.org") is SubscriptionStatus.CONFIRMED
    assert desk.web.status("cy@example.org") is SubscriptionStatus.CONFIRMED
    with desk.web.db.session() as session:
        assert set(session.scalars(select(Consent.form_id))) == {"import:people.csv"}
    rejects = desk.editor.get(f"/desk/subscribers/import/{token}/rejects.csv")
    assert rejects.status_code == 200 and rejects.mimetype == "text/csv"
    assert "attachment" in rejects.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(rejects.get_data(as_text=True))))
    assert rows[0] == ["line", "reason", "Name", "E-Mail", "City", "Tags"]
    assert [r[0] for r in rows[1:]] == ["3", "6"] and rows[1][2:] == ["Bad", "not-an-address", "Westfield", ""]
    assert rows[2][4] == "'=cmd|' /C calc'!A0"                             # no formula reaches a spreadsheet
    # another session cannot have them; the upload was used up
    assert desk.admin.get(f"/desk/subscribers/import/{token}/rejects.csv").status_code == 404
    again = desk.post(desk.editor, f"/desk/subscribers/import/{token}", {}, form_page="/desk/subscribers/import")
    assert again.status_code == 404 and desk.web.count(Subscriber) == 3
    assert [(a[0], a[2]) for a in desk_audit(desk)] == [("subscriber_import", "news")]
    assert "file=people.csv rows=5 new=3 subscribed=3 rejected=2 confirmed" == desk_audit(desk)[0][3]


def test_another_sessions_upload_cannot_be_imported(desk: Desk) -> None:
    preview = upload(desk, b"email\nx@example.org\n")
    token = re.search(r'action="/desk/subscribers/import/([A-Za-z0-9_-]+)"', preview.text).group(1)
    stolen = desk.post(desk.admin, f"/desk/subscribers/import/{token}", {}, form_page="/desk/subscribers/import")
    assert stolen.status_code == 404 and desk.web.count(Subscriber) == 0


def test_a_csv_without_an_email_column_is_422_naming_it(desk: Desk) -> None:
    refused = upload(desk, b"name,city\nAna,Eastfield\n", name="../../etc/list.csv")
    assert refused.status_code == 422
    words = html.unescape(refused.text)
    assert "List.csv: line 1: no email column (expected one of email, e-mail, mail)" in words
    assert "'name', 'city'" in words and "desk-uploads" not in words
    assert re.search(r'id="file"[^>]*aria-invalid="true"', refused.text)
    assert desk.web.count(Subscriber) == 0 and desk_audit(desk) == []
    folder = desk.web.settings.path("subscribers") / "desk-uploads"
    assert not folder.exists() or list(folder.iterdir()) == []              # nothing kept
    assert upload(desk, b"\x00\x01binary").status_code == 422
    assert upload(desk, b"email\nx@example.org\n", slug="nope").status_code == 422


def test_an_oversized_upload_is_413_and_keeps_nothing(desk: Desk) -> None:
    from mailer.desk import imports
    big = b"email\n" + b"x@example.org\n" * (imports.UPLOAD_MAX // 14 + 10)
    refused = upload(desk, big)
    assert refused.status_code == 413 and "nothing was kept" in refused.text
    fifty = b"email\n" + b"y" * (50 * 1024 * 1024)
    refused = upload(desk, fifty)
    assert refused.status_code == 413
    folder = desk.web.settings.path("subscribers") / "desk-uploads"
    assert not folder.exists() or list(folder.iterdir()) == []
    assert desk.web.count(Subscriber) == 0


def test_export_is_the_cli_export(people: Desk) -> None:
    answer = people.editor.get("/desk/subscribers/export.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="subscribers.csv"'
    expected = io.StringIO()
    with people.web.db.session() as session:
        export_csv(session, expected)
    assert answer.get_data(as_text=True) == expected.getvalue()
    pending = people.editor.get("/desk/subscribers/export.csv?list=news&status=pending")
    rows = list(csv.reader(io.StringIO(pending.get_data(as_text=True))))
    assert rows[0][:4] == ["email", "name", "list", "status"] and [r[0] for r in rows[1:]] == ["carla@example.org"]
    assert people.editor.get("/desk/subscribers/export.csv?list=nope").status_code == 422
    assert [(a[0], a[3]) for a in desk_audit(people)] == [("subscriber_export", "list=all status=any"),
                                                          ("subscriber_export", "list=news status=pending")]


def test_hostile_names_render_as_text(desk: Desk) -> None:
    evil = "<script>alert(1)</script>"
    add(desk, "evil@example.org", evil)
    with desk.web.db.session() as session:
        session.get(Subscriber, sid(desk, "evil@example.org")).attributes = {"<b>k</b>": "<img src=x onerror=alert(2)>"}
    pages = [desk.editor.get(p).text for p in ("/desk/subscribers", "/desk/subscribers?q=%3Cscript",
                                               f"/desk/subscribers/{sid(desk, 'evil@example.org')}")]
    for page in pages:
        assert evil not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0] and "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[1]
    assert "&lt;img src=x onerror=alert(2)&gt;" in pages[2]
    preview = upload(desk, f"email,name\nz@example.org,{evil}\n".encode(), name="<b>x</b>.csv")
    assert evil not in preview.text and "&lt;script&gt;" in preview.text and "<b>x" not in preview.text


def test_subscription_rows_stay_whole_on_a_refused_post(people: Desk) -> None:
    ana = sid(people, "ana@example.org")
    assert people.editor.post(f"/desk/subscribers/{ana}/erase", data={}).status_code == 400
    assert people.editor.post(f"/desk/subscribers/{ana}/unsubscribe", data={"csrf_token": "forged"}).status_code == 400
    with people.web.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Subscription)) == 5
    assert people.web.status("ana@example.org") is SubscriptionStatus.CONFIRMED


def test_cli_list_search_is_the_desk_search(people: Desk) -> None:
    from click.testing import CliRunner

    from mailer.cli import cli
    from tests.helpers import TEST_ENV

    env = {**TEST_ENV, "MAILER_ROOT": str(people.web.settings.root), "MAILER_DATABASE_URL": people.web.db.url}
    result = CliRunner().invoke(cli, ["subscribers", "list", "--search", "ana", "--list", "news"], env=env)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "@" in line]
    assert [line.split()[1] for line in lines] == ["ana@example.org", "anatole@example.net"]
    assert "news: confirmed" in lines[0] and "2 shown" in result.output
    unknown = CliRunner().invoke(cli, ["subscribers", "list", "--search", "x", "--list", "nope"], env=env)
    assert unknown.exit_code == 2 and "unknown list 'nope'" in unknown.output
