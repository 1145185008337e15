"""A list's welcome mail on the desk: choosing one of the desk's issues (checked by composing it),
its preview frames, turning it off, what a confirmed sign-up then gets; bad input and audit.

SQLite and PostgreSQL (the `desk` fixture), through the Flask test client.
"""

from __future__ import annotations

import html

from sqlalchemy import select

from mailer.models import DeskAudit, MailingList
from tests.desk_fixtures import EDITOR, Desk, desk, text_of, web_app  # noqa: F401
from tests.helpers import make_issue
from tests.web_fixtures import body_text

PAGE = "/desk/lists/news"
SUBJECT = "Welcome to Riverside News"


def stored(desk: Desk) -> str:
    with desk.web.db.session() as session:
        return session.scalar(select(MailingList.welcome_issue).where(MailingList.slug == "news"))


def audit_rows(desk: Desk) -> list[tuple[str, str, str, str]]:
    with desk.web.db.session() as session:
        return [(r.action, r.actor, r.target, r.detail) for r in session.scalars(
            select(DeskAudit).where(DeskAudit.action == "list_welcome").order_by(DeskAudit.id))]


def welcome_issue(desk: Desk) -> None:
    make_issue(desk.web.settings.root, "welcome", {"01-hello.md": "# Glad you are here\n\nWe meet every Tuesday.\n"},
               toml=f'subject = "{SUBJECT}"\nintro = "Thank you for joining us."\n')


def test_choose_a_welcome_issue_see_its_preview_and_a_sign_up_gets_it(desk: Desk) -> None:
    welcome_issue(desk)
    page = desk.editor.get(PAGE)
    assert "This list sends no welcome mail." in page.text and '<option value="welcome">welcome</option>' in page.text
    done = desk.post(desk.editor, f"{PAGE}/welcome", {"issue": "welcome"}, form_page=PAGE)
    assert done.status_code == 303 and done.headers["Location"] == f"{PAGE}?done=welcome#welcome"
    assert stored(desk) == "issues/welcome"                           # relative to the project, as the CLI stores it
    page = desk.editor.get(f"{PAGE}?done=welcome")
    text = text_of(page.text)
    assert "The welcome mail was saved." in text
    assert f"New confirmed subscribers get {SUBJECT} (the issue welcome" in text and "0 subscribers were welcomed" in text
    assert f'src="{PAGE}/welcome/named"' in page.text and 'sandbox' in page.text
    frame = desk.editor.get(f"{PAGE}/welcome/named")
    assert frame.status_code == 200 and "We meet every Tuesday." in frame.text
    assert frame.headers["Content-Security-Policy"].startswith("default-src 'none'")
    text_part = desk.editor.get(f"{PAGE}/welcome/text").text
    assert "We meet every Tuesday." in text_part and "Unsubscribe" in frame.text
    # a welcome mail has no web version: no link to an archive page that would not exist
    assert "/archive/" not in frame.text and "in your browser" not in text_part and "View online" not in frame.text
    assert desk.editor.get(f"{PAGE}/welcome/evil").status_code == 404
    assert audit_rows(desk) == [("list_welcome", EDITOR, "news", f"issue=welcome subject={SUBJECT}")]
    # a sign-up on news (double opt-in), confirmed by its link, gets that mail once
    web = desk.web
    web.sign_up("ana@example.org", "Ana Silva")
    web.deliver()
    [confirmation] = web.outbox()
    link = body_text(confirmation).split("/confirm/", 1)[1].split()[0]
    path = f"/confirm/{link}"
    token = web.form_token(path)
    assert web.client.post(path, data={"csrf_token": token}).status_code == 200
    web.deliver()
    [welcome] = [m for m in web.outbox() if m["Subject"] == SUBJECT]
    assert "We meet every Tuesday." in body_text(welcome)
    assert "/archive/" not in welcome.as_string() and "unsubscribe" in body_text(welcome).lower()
    assert "1 subscriber was welcomed so far" in text_of(desk.editor.get(PAGE).text)


def test_turn_it_off(desk: Desk) -> None:
    welcome_issue(desk)
    desk.post(desk.editor, f"{PAGE}/welcome", {"issue": "welcome"}, form_page=PAGE)
    done = desk.post(desk.editor, f"{PAGE}/welcome", {"issue": ""}, form_page=PAGE)
    assert done.status_code == 303 and done.headers["Location"].endswith("done=nowelcome#welcome")
    assert stored(desk) == ""
    assert "This list sends no welcome mail." in desk.editor.get(PAGE).text
    assert desk.editor.get(f"{PAGE}/welcome/named").status_code == 404
    assert [r[3] for r in audit_rows(desk)] == [f"issue=welcome subject={SUBJECT}", "off"]


def test_bad_choices_are_422_and_change_nothing(desk: Desk) -> None:
    welcome_issue(desk)
    make_issue(desk.web.settings.root, "broken", {}, toml="subject = [broken\n")
    for issue, words in (("nope", "Welcome mail: there is no issue 'nope'."),
                         ("../../etc", "Welcome mail: there is no issue '../../etc'."),
                         ("broken", "Welcome mail: broken does not compose: issue.toml")):
        refused = desk.post(desk.editor, f"{PAGE}/welcome", {"issue": issue}, form_page=PAGE)
        assert refused.status_code == 422 and words in html.unescape(refused.text), (issue, refused.text)
        assert 'aria-invalid="true"' in refused.text
    assert stored(desk) == "" and audit_rows(desk) == []
    assert desk.post(desk.editor, "/desk/lists/nope/welcome", {"issue": "welcome"}, form_page=PAGE).status_code == 404
    assert desk.editor.post(f"{PAGE}/welcome", data={"issue": "welcome"}).status_code == 400     # no CSRF token
    assert stored(desk) == ""


def test_a_welcome_issue_that_broke_or_went_away_says_so(desk: Desk) -> None:
    welcome_issue(desk)
    desk.post(desk.editor, f"{PAGE}/welcome", {"issue": "welcome"}, form_page=PAGE)
    toml = desk.web.settings.root / "issues" / "welcome" / "issue.toml"
    toml.write_text("subject = [broken\n", encoding="utf-8")
    text = text_of(desk.editor.get(PAGE).text)
    assert "It does not compose now, so nobody gets it until it is fixed" in text
    assert desk.editor.get(f"{PAGE}/welcome/named").status_code == 422
    toml.unlink()
    text = text_of(desk.editor.get(PAGE).text)
    assert "The welcome issue issues/welcome is not on disk" in text


def test_adding_someone_with_consent_on_record_can_send_the_welcome(desk: Desk) -> None:
    welcome_issue(desk)
    desk.post(desk.editor, f"{PAGE}/welcome", {"issue": "welcome"}, form_page=PAGE)
    refused = desk.post(desk.editor, "/desk/subscribers", {"email": "pat@example.org", "lists": ["news"],
                                                           "mode": "opt_in", "welcome": "yes"}, form_page="/desk/subscribers")
    assert refused.status_code == 422 and "Welcome mail: only with consent on record" in html.unescape(refused.text)
    done = desk.post(desk.editor, "/desk/subscribers", {"email": "kim@example.org", "name": "Kim", "lists": ["news"],
                                                        "mode": "confirmed", "welcome": "yes"}, form_page="/desk/subscribers")
    assert done.status_code == 303
    quiet = desk.post(desk.editor, "/desk/subscribers", {"email": "lee@example.org", "lists": ["news"],
                                                         "mode": "confirmed"}, form_page="/desk/subscribers")
    assert quiet.status_code == 303
    desk.web.deliver()
    welcomed = [m["To"] for m in desk.web.outbox() if m["Subject"] == SUBJECT]
    assert welcomed == ["Kim <kim@example.org>"]                        # lee added without it, pat refused
    with desk.web.db.session() as session:
        detail = session.scalar(select(DeskAudit.detail).where(DeskAudit.action == "subscriber_add",
                                                                DeskAudit.target == "kim@example.org"))
    assert detail.startswith("confirmed +welcome: news")
