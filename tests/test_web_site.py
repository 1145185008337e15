"""The public site: landing page, archive index, archived issues with their site bar (page bytes)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from mailer.config import Settings
from mailer.db import Database
from mailer.models import Send, SendStatus
from mailer.web import create_app
from tests.web_fixtures import WebApp, web_app  # noqa: F401

FEED_LINK = '<link rel="alternate" type="application/atom+xml"'


def add_send(db: Database, slug: str, days_ago: int, subject: str, status: SendStatus = SendStatus.DONE) -> None:
    with db.session() as session:
        session.add(Send(issue_slug=slug, issue_path=f"issues/{slug}", subject=subject, preheader="News",
                         html="<p>Hi</p>", text="Hi", content_hash="x", status=status,
                         archive_html=f"<!doctype html><html><head><meta name=\"viewport\" content=\"width=device-width\"><title>{slug}</title></head>"
                                      f"<body style=\"margin:0\"><h1>{subject}</h1></body></html>",
                         started_at=datetime.now(timezone.utc) - timedelta(days=days_ago)))


def no_script(html: str) -> None:
    assert "<script" not in html.lower() and "javascript:" not in html.lower()
    assert not re.search(r"\son[a-z]+=", html), "an inline event handler"


def test_home_shows_group_a_form_per_list_and_latest_issues(web_app: WebApp) -> None:
    for i in range(7):
        add_send(web_app.db, f"2026-0{i + 1}", 70 - i, f"Issue {i + 1} <b>")
    response = web_app.client.get("/")
    html = response.text
    assert response.status_code == 200 and response.mimetype == "text/html"
    no_script(html)
    assert f"<h1>{web_app.settings.group_name}</h1>" in html
    assert 'action="/subscribe/news"' in html and 'action="/subscribe/bulletin"' in html
    assert html.count('name="csrf_token"') == 2 and 'id="email-news"' in html and 'id="email-bulletin"' in html
    assert html.index("Action Bulletin") < html.index("Riverside News")       # lists by name
    latest = re.findall(r'<a href="https://news.example.org/archive/([^"]+)">', html)
    assert latest == ["2026-07", "2026-06", "2026-05", "2026-04", "2026-03"]
    assert "Issue 7 &lt;b&gt;" in html and "Issue 7 <b>" not in html
    assert 'href="/archive/"' in html and FEED_LINK in html
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_a_form_on_the_home_page_signs_up(web_app: WebApp) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', web_app.client.get("/").text).group(1)
    response = web_app.client.post("/subscribe/bulletin", data={"csrf_token": token, "email": "ann@example.org",
                                                                "name": "", "consent": "yes"})
    assert response.status_code == 200 and "Thank you" in response.text
    web_app.process_intake()
    assert web_app.status("ann@example.org", "bulletin") is not None


def test_empty_site_renders_sensibly(db: Database, settings: Settings) -> None:
    client = create_app(settings.replace(database_url=db.url, backend="memory"), db).test_client()
    home = client.get("/")
    assert home.status_code == 200
    assert "There is no newsletter to subscribe to yet." in home.text and "No issue has been sent yet." in home.text
    assert "<form" not in home.text
    index = client.get("/archive/")
    assert index.status_code == 200 and "No issue has been sent yet." in index.text and FEED_LINK in index.text
    assert client.get("/archive/anything").status_code == 404
    assert client.get("/feed.xml").status_code == 200


def test_archive_index_links_feed_and_subscribe(web_app: WebApp) -> None:
    add_send(web_app.db, "2026-11", 3, "November")
    html = web_app.client.get("/archive/").text
    no_script(html)
    assert FEED_LINK in html and 'href="/"' in html and "archive/2026-11" in html


def test_archived_issue_has_site_bar_prev_next_in_order_and_feed(web_app: WebApp) -> None:
    add_send(web_app.db, "2026-10", 60, "October")
    add_send(web_app.db, "2026-11", 30, "November")
    add_send(web_app.db, "2026-12", 1, "December")
    add_send(web_app.db, "2026-11", 2, "November again")           # a resend: the newest send is shown
    add_send(web_app.db, "2027-01", 0, "Draft", SendStatus.DRAFT)    # not public
    middle = web_app.client.get("/archive/2026-11")
    assert middle.status_code == 200
    html = middle.text
    no_script(html)
    head, body = html.split("</head>")
    assert FEED_LINK in head and 'href="/archive/feed.xml"' in head
    assert body.index('<nav class="mailer-site"') < body.index("<h1>November again</h1>")
    assert re.search(r'<body style="margin:0">\s*<style>', body)
    assert 'href="https://news.example.org/archive/2026-10" rel="prev">← Previous: October</a>' in body
    assert 'href="https://news.example.org/archive/2026-12" rel="next">Next: December →</a>' in body
    assert 'href="/">Subscribe</a>' in body        # two lists: the landing page has both forms
    assert "script" not in middle.headers["Content-Security-Policy"]
    oldest = web_app.client.get("/archive/2026-10").text
    assert 'rel="prev"' not in oldest and "Next: December" not in oldest and "Next: November again" in oldest
    newest = web_app.client.get("/archive/2026-12").text
    assert 'rel="next"' not in newest and "Previous: November again" in newest
    assert web_app.client.get("/archive/2027-01").status_code == 404
    assert web_app.client.get("/archive/no-such-issue").status_code == 404


def test_with_one_list_the_bar_links_its_form(db: Database, settings: Settings) -> None:
    from mailer.models import MailingList

    with db.session() as session:
        session.add(MailingList(slug="news", name="Riverside News"))
    add_send(db, "2026-11", 3, "Sub & <Title>")
    client = create_app(settings.replace(database_url=db.url, backend="memory"), db).test_client()
    html = client.get("/archive/2026-11").text
    assert 'href="/subscribe/news">Subscribe</a>' in html


def test_site_bar_goes_in_front_of_html_without_head_or_body() -> None:
    from mailer.web.archive import with_site_bar

    assert with_site_bar("<p>x</p>", "H", "B") == "BH<p>x</p>"
    assert with_site_bar("<HTML><HEAD></HEAD><BODY class=a><p>x", "H", "B") == "<HTML><HEAD>H</HEAD><BODY class=a>B<p>x"


def test_pages_carry_the_direction_of_the_language(db: Database, settings: Settings) -> None:
    """A right-to-left group gets dir="rtl" on every page (the mail has it too, content.a11y)."""
    client = create_app(settings.replace(database_url=db.url, backend="memory", language="ar"), db).test_client()
    for path in ("/", "/archive/", "/nowhere"):
        assert '<html lang="ar" dir="rtl">' in client.get(path).text, path
    client = create_app(settings.replace(database_url=db.url, backend="memory"), db).test_client()
    assert '<html lang="en" dir="ltr">' in client.get("/").text
