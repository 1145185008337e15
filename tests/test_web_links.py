"""Confirm, one-click unsubscribe and preferences links: STANDARDS B1-B6, C2, C3."""

from __future__ import annotations

import email
import re
import time
from typing import Iterator

import pytest
from sqlalchemy import select

from mailer.mail import links
from mailer.mail.message import MessageFactory, Recipient
from mailer.mail.tokens import Purpose, make_token
from mailer.models import AuditEvent, Subscriber, Subscription, SubscriptionStatus, Suppression
from mailer.web import create_app
from tests.web_fixtures import WebApp, body_text, path_of, urls_in, web_app  # noqa: F401

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def member(web_app: WebApp) -> Iterator[tuple[WebApp, str]]:
    """A confirmed subscriber of `news` (signed up and confirmed through the pages)."""
    web_app.sign_up("rita@example.org", "Rita")
    web_app.deliver()
    confirm_path = path_of(re.search(r"https://\S+/confirm/\S+", body_text(web_app.outbox()[0])).group(0),
                           web_app.settings)
    token = TOKEN_RE.search(web_app.client.get(confirm_path).text).group(1)
    assert web_app.client.post(confirm_path, data={"csrf_token": token}).status_code == 200
    assert web_app.status("rita@example.org") is SubscriptionStatus.CONFIRMED
    with web_app.db.session() as session:
        uid = session.scalar(select(Subscriber.uid).where(Subscriber.email_key == "rita@example.org"))
    yield web_app, uid


def unsub_path(app: WebApp, uid: str, slug: str = "news") -> str:
    return path_of(links.unsubscribe_url(app.settings, uid, slug), app.settings)


def pending(web_app: WebApp, addr: str = "sam@example.org") -> str:
    """Sign *addr* up and return the confirm link's path from the delivered mail."""
    web_app.sign_up(addr)
    web_app.deliver()
    mail = [m for m in web_app.outbox() if m["To"] == addr][0]
    return path_of(re.search(r"https://\S+/confirm/\S+", body_text(mail)).group(0), web_app.settings)


# --- C2, C3: confirm -----------------------------------------------------------------------------

def test_c2_get_on_confirm_link_does_not_confirm_and_shows_post_button(web_app: WebApp) -> None:
    path = pending(web_app)
    page = web_app.client.get(path)
    assert page.status_code == 200
    assert re.search(rf'<form method="post" action="{re.escape(path)}">', page.text)
    assert "<button" in page.text
    assert web_app.status("sam@example.org") is SubscriptionStatus.PENDING


def test_c2_post_with_valid_token_confirms_and_replay_changes_nothing(web_app: WebApp) -> None:
    path = pending(web_app)
    token = TOKEN_RE.search(web_app.client.get(path).text).group(1)
    done = web_app.client.post(path, data={"csrf_token": token})
    assert done.status_code == 200 and "now subscribed" in done.text
    assert web_app.status("sam@example.org") is SubscriptionStatus.CONFIRMED
    replay = web_app.client.post(path, data={"csrf_token": token})
    assert replay.status_code == 200 and "already subscribed" in replay.text
    with web_app.db.session() as session:
        assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "confirm")).all()) == 1


def test_confirm_replayed_after_unsubscribe_does_not_resubscribe(web_app: WebApp) -> None:
    path = pending(web_app)
    token = TOKEN_RE.search(web_app.client.get(path).text).group(1)
    web_app.client.post(path, data={"csrf_token": token})
    with web_app.db.session() as session:
        uid = session.scalar(select(Subscriber.uid))
    web_app.client.post(unsub_path(web_app, uid), data={"List-Unsubscribe": "One-Click"})
    replay = web_app.client.post(path, data={"csrf_token": token})
    assert replay.status_code == 409 and "sign up again" in replay.text
    assert web_app.status("sam@example.org") is SubscriptionStatus.UNSUBSCRIBED


def test_c2_confirm_post_needs_form_token(web_app: WebApp) -> None:
    path = pending(web_app)
    assert web_app.client.post(path, data={}).status_code == 403
    assert web_app.client.post(path, data={"csrf_token": "x"},
                               headers={"Origin": "https://evil.example"}).status_code == 403
    assert web_app.status("sam@example.org") is SubscriptionStatus.PENDING


def test_c3_expired_confirm_token_gives_expired_page_and_no_change(web_app: WebApp) -> None:
    web_app.sign_up("tom@example.org")
    web_app.process_intake()
    with web_app.db.session() as session:
        uid = session.scalar(select(Subscriber.uid))
    # a token minted 100 hours ago with the real key and salt (max age is 72 h)
    real_time = time.time
    try:
        time.time = lambda: real_time() - 100 * 3600  # type: ignore[assignment]
        old = make_token(web_app.settings, Purpose.CONFIRM, uid, "news")
    finally:
        time.time = real_time  # type: ignore[assignment]
    path = f"/confirm/{old}"
    assert web_app.client.get(path).status_code == 410
    form = web_app.form_token()
    response = web_app.client.post(path, data={"csrf_token": form})
    assert response.status_code == 410 and "expired" in response.text
    assert web_app.status("tom@example.org") is SubscriptionStatus.PENDING


def test_c3_tokens_are_purpose_bound(member: tuple[WebApp, str]) -> None:
    """An unsubscribe token cannot confirm; a confirm token cannot unsubscribe."""
    app, uid = member
    unsub_token = unsub_path(app, uid).rsplit("/", 1)[1]
    confirm_token = links.confirm_url(app.settings, uid, "news").rsplit("/", 1)[1]
    form = app.form_token()
    assert app.client.post(f"/confirm/{unsub_token}", data={"csrf_token": form}).status_code == 400
    assert app.client.post(f"/u/{confirm_token}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert app.status("rita@example.org") is SubscriptionStatus.CONFIRMED


# --- B1-B6: one-click unsubscribe ----------------------------------------------------------------

def test_b1_form_encoded_one_click_post_unsubscribes_at_once(member: tuple[WebApp, str]) -> None:
    app, uid = member
    app.client._cookies.clear()  # type: ignore[attr-defined]
    response = app.client.post(unsub_path(app, uid), data="List-Unsubscribe=One-Click",
                                content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert app.status("rita@example.org") is SubscriptionStatus.UNSUBSCRIBED
    with app.db.session() as session:
        assert session.scalar(select(Suppression.scope)) == "news"


def test_b2_multipart_one_click_post_unsubscribes(member: tuple[WebApp, str]) -> None:
    app, uid = member
    response = app.client.post(unsub_path(app, uid), data={"List-Unsubscribe": "One-Click"},
                                content_type="multipart/form-data")
    assert response.status_code == 200
    assert app.status("rita@example.org") is SubscriptionStatus.UNSUBSCRIBED


def test_b3_b4_never_redirects_idempotent_no_cookie(member: tuple[WebApp, str]) -> None:
    app, uid = member
    path = unsub_path(app, uid)
    for _ in range(3):
        response = app.client.post(path, data={"List-Unsubscribe": "One-Click"},
                                   headers={"Origin": "https://mail.provider.example"})
        assert response.status_code == 200
        assert "Location" not in response.headers and "Set-Cookie" not in response.headers
    assert app.status("rita@example.org") is SubscriptionStatus.UNSUBSCRIBED
    with app.db.session() as session:
        assert len(session.scalars(select(AuditEvent).where(AuditEvent.action == "unsubscribe")).all()) == 1


def test_b4_tampered_or_foreign_token_4xx_no_change_no_leak(member: tuple[WebApp, str]) -> None:
    app, uid = member
    good = unsub_path(app, uid)
    other_key = make_token(app.settings.replace(secret_keys=("someone-elses-key",)), Purpose.UNSUBSCRIBE,
                           uid, "news")
    answers = []
    for path in (good[:-3] + "AAA", "/u/" + other_key, "/u/garbage", good.replace("/u/", "/u/x")):
        response = app.client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code in (400, 404)
        assert "rita" not in response.text.lower()
        answers.append(response.text)
    assert len(set(answers)) == 1
    assert app.status("rita@example.org") is SubscriptionStatus.CONFIRMED


def test_b4_valid_token_of_unknown_subscriber_answers_like_a_known_one(web_app: WebApp) -> None:
    response = web_app.client.post(unsub_path(web_app, "no-such-uid"), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "You are unsubscribed" in response.text


def test_b5_get_shows_button_and_changes_nothing(member: tuple[WebApp, str]) -> None:
    app, uid = member
    path = unsub_path(app, uid)
    page = app.client.get(path)
    assert page.status_code == 200
    assert f'<form method="post" action="{path}">' in page.text
    assert 'name="List-Unsubscribe" value="One-Click"' in page.text
    assert app.status("rita@example.org") is SubscriptionStatus.CONFIRMED


def test_b5_link_scanner_gets_every_url_of_a_delivered_message(member: tuple[WebApp, str]) -> None:
    """B5: a scanner GETs every URL in a campaign message (body and header): nothing changes."""
    app, uid = member
    factory = MessageFactory(app.settings, subject="Issue 1", issue_slug="2026-11",
                             html='<p>Hi __mailer_name__ <a href="__mailer_unsubscribe_url__">unsubscribe</a> '
                                  '<a href="__mailer_preferences_url__">preferences</a> '
                                  '<a href="__mailer_view_online_url__">web</a></p>',
                             text="Hi __mailer_name__\nUnsubscribe: __mailer_unsubscribe_url__\n"
                                  "Preferences: __mailer_preferences_url__\nWeb: __mailer_view_online_url__\n")
    msg = email.message_from_bytes(factory.render(Recipient(
        key=1, email="rita@example.org", name="Rita", subscriber_uid=uid, list_slug="news",
        list_name="Riverside News")).data)
    urls = urls_in(msg)
    assert any("/u/" in u for u in urls) and any("/p/" in u for u in urls) and any("/archive/" in u for u in urls)
    for url in urls:
        response = app.client.get(path_of(url, app.settings))
        assert response.status_code in (200, 404), url
    assert app.status("rita@example.org") is SubscriptionStatus.CONFIRMED
    with app.db.session() as session:
        assert session.scalar(select(Suppression)) is None


def test_b6_old_tokens_work_after_key_rotation(member: tuple[WebApp, str]) -> None:
    """B6: a token signed with a retired key (still listed) works; unsubscribe tokens never expire."""
    app, uid = member
    old_settings = app.settings.replace(secret_keys=("the-old-key",))
    old_path = unsub_path(WebApp(app.app, app.client, old_settings, app.db), uid)
    rotated = app.settings.replace(secret_keys=("a-new-key", "the-old-key"))
    client = create_app(rotated, app.db).test_client()
    assert client.post(old_path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert app.status("rita@example.org") is SubscriptionStatus.UNSUBSCRIBED


def test_b6_unsubscribe_token_400_days_old_works(member: tuple[WebApp, str]) -> None:
    app, uid = member
    real_time = time.time
    try:
        time.time = lambda: real_time() - 400 * 86400  # type: ignore[assignment]
        path = unsub_path(app, uid)
    finally:
        time.time = real_time  # type: ignore[assignment]
    assert app.client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert app.status("rita@example.org") is SubscriptionStatus.UNSUBSCRIBED


def test_unsubscribe_page_button_works_without_js(member: tuple[WebApp, str]) -> None:
    """The page's button posts a normal form (hidden List-Unsubscribe field) to the same URL."""
    app, uid = member
    path = unsub_path(app, uid)
    page = app.client.get(path).text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    response = app.client.post(path, data=fields)
    assert response.status_code == 200 and "You are unsubscribed" in response.text
    assert "/p/" in response.text


# --- preferences ---------------------------------------------------------------------------------

def prefs_path(app: WebApp, uid: str) -> str:
    return path_of(links.preferences_url(app.settings, uid, "news"), app.settings)


def test_preferences_lists_subscriptions_and_get_changes_nothing(member: tuple[WebApp, str]) -> None:
    app, uid = member
    page = app.client.get(prefs_path(app, uid))
    assert page.status_code == 200
    assert "rita@example.org" in page.text and "Riverside News" in page.text and "confirmed" in page.text
    assert "/subscribe/bulletin" in page.text  # another list, to sign up for with consent
    assert app.status("rita@example.org") is SubscriptionStatus.CONFIRMED


def test_preferences_leave_one_list_then_all_by_post_with_form_token(member: tuple[WebApp, str]) -> None:
    app, uid = member
    app.sign_up("rita@example.org", slug="bulletin")
    app.process_intake()
    path = prefs_path(app, uid)
    token = TOKEN_RE.search(app.client.get(path).text).group(1)
    assert app.client.post(path, data={"action": "unsubscribe", "list": "news"}).status_code == 403
    left = app.client.post(path, data={"csrf_token": token, "action": "unsubscribe", "list": "news"})
    assert left.status_code == 200 and "You have left Riverside News" in left.text
    assert app.status("rita@example.org") is SubscriptionStatus.UNSUBSCRIBED
    assert app.status("rita@example.org", "bulletin") is SubscriptionStatus.CONFIRMED
    all_gone = app.client.post(path, data={"csrf_token": token, "action": "unsubscribe_all"})
    assert all_gone.status_code == 200
    assert app.status("rita@example.org", "bulletin") is SubscriptionStatus.UNSUBSCRIBED
    with app.db.session() as session:
        assert "*" in session.scalars(select(Suppression.scope)).all()


def test_preferences_bad_token_and_unknown_action(member: tuple[WebApp, str]) -> None:
    app, uid = member
    assert app.client.get("/p/tampered").status_code == 400
    path = prefs_path(app, uid)
    token = TOKEN_RE.search(app.client.get(path).text).group(1)
    assert app.client.post(path, data={"csrf_token": token, "action": "explode"}).status_code == 400
    assert app.client.post(path, data={"csrf_token": token, "action": "unsubscribe",
                                       "list": "gone"}).status_code == 404
    assert app.status("rita@example.org") is SubscriptionStatus.CONFIRMED


def test_preferences_erase_asks_first(member: tuple[WebApp, str]) -> None:
    app, uid = member
    path = prefs_path(app, uid)
    token = TOKEN_RE.search(app.client.get(path).text).group(1)
    ask = app.client.post(path, data={"csrf_token": token, "action": "erase"})
    assert ask.status_code == 200 and 'value="erase_confirmed"' in ask.text
    with app.db.session() as session:
        assert session.scalar(select(Subscription.status)) is SubscriptionStatus.CONFIRMED


def test_preferences_download_my_data_as_json_by_post(member: tuple[WebApp, str]) -> None:
    import json

    app, uid = member
    path = prefs_path(app, uid)
    token = TOKEN_RE.search(app.client.get(path).text).group(1)
    response = app.client.post(path, data={"csrf_token": token, "action": "download"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.data)
    assert "rita@example.org" in json.dumps(data)
    assert app.client.post(path, data={"action": "download"}).status_code == 403   # no form token


def test_preferences_erase_after_confirmation_removes_person_and_queue(member: tuple[WebApp, str]) -> None:
    from mailer.models import Consent, QueuedMail

    app, uid = member
    path = prefs_path(app, uid)
    token = TOKEN_RE.search(app.client.get(path).text).group(1)
    done = app.client.post(path, data={"csrf_token": token, "action": "erase_confirmed"})
    assert done.status_code == 200 and "erased" in done.text
    assert app.count(Subscriber) == 0 and app.count(Consent) == 0 and app.count(QueuedMail) == 0
    with app.db.session() as session:
        assert session.scalar(select(Suppression.email).where(Suppression.scope == "*")) is None
    assert app.client.get(path).status_code == 404          # the link names nobody now
    again = app.client.post(unsub_path(app, uid), data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200                          # B4: same answer, no leak
