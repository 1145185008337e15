"""Sign-up pages and the JSON API: STANDARDS C1, C4-C9, bad input, security headers."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from mailer.models import Consent, QueuedMail, QueueStatus, Subscriber, SubscriptionStatus
from tests.web_fixtures import WebApp, body_text, web_app  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_c1_signup_creates_pending_and_exactly_one_confirmation_mail(web_app: WebApp) -> None:
    """C1: pending subscriber, one confirmation mail queued in the request and sent by the queue."""
    response = web_app.sign_up("Ada@Example.org", "Ada Lovelace")
    assert response.status_code == 200
    assert "a mail is on its way" in response.text
    assert web_app.status("ada@example.org") is None     # the request only stored the intake row
    assert web_app.process_intake().mails == 1
    assert web_app.status("ada@example.org") is SubscriptionStatus.PENDING
    assert web_app.outbox() == []            # queued, not sent inside the request
    assert web_app.queued() == 1
    report = web_app.deliver()
    assert (report.sent, report.failed) == (1, 0)
    [mail] = web_app.outbox()
    assert mail["To"] == "Ada Lovelace <Ada@example.org>"
    assert mail["Subject"] == "Please confirm: Riverside News"
    assert mail["List-Unsubscribe"] is None          # transactional (A7)
    assert "/confirm/" in body_text(mail)
    assert web_app.deliver().sent == 0               # nothing sent twice
    with web_app.db.session() as session:
        assert session.scalar(select(QueuedMail.status)) is QueueStatus.SENT


def test_c1_single_opt_in_list_confirms_at_once_without_mail(web_app: WebApp) -> None:
    response = web_app.sign_up("bo@example.org", slug="bulletin")
    assert response.status_code == 200
    web_app.process_intake()
    assert web_app.status("bo@example.org", "bulletin") is SubscriptionStatus.CONFIRMED
    web_app.deliver()
    assert web_app.outbox() == []


def test_no_enumeration_same_answer_for_new_pending_and_confirmed(web_app: WebApp) -> None:
    first = web_app.sign_up("cy@example.org")
    web_app.sign_up("dee@example.org", slug="bulletin")
    again_pending = web_app.sign_up("cy@example.org")
    already_confirmed = web_app.sign_up("dee@example.org", slug="bulletin")
    strip = lambda html: re.sub(r'value="[^"]*"', "", html)  # noqa: E731
    assert first.status_code == again_pending.status_code == already_confirmed.status_code == 200
    assert strip(first.text) == strip(again_pending.text) == strip(already_confirmed.text)


def test_c4_consent_record_stored_and_survives_unsubscribe(web_app: WebApp) -> None:
    """C4: address, time, IP, user agent, form id, text version; confirmation time and IP."""
    web_app.client.post(
        "/subscribe/news",
        data={"csrf_token": web_app.form_token(), "email": "eve@example.org", "consent": "yes"},
        headers={"User-Agent": "TestBrowser/1.0"}, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    web_app.deliver()
    link = re.search(r"https://\S+/confirm/\S+", body_text(web_app.outbox()[0])).group(0)
    path = link.split("news.example.org", 1)[1]
    token = re.search(r'name="csrf_token" value="([^"]+)"', web_app.client.get(path).text).group(1)
    confirmed = web_app.client.post(path, data={"csrf_token": token},
                                    environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert confirmed.status_code == 200
    with web_app.db.session() as session:
        uid = session.scalar(select(Subscriber.uid))
    from mailer.mail.links import unsubscribe_url

    url = unsubscribe_url(web_app.settings, uid, "news")
    assert web_app.client.post(url.split("news.example.org", 1)[1],
                           data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert web_app.status("eve@example.org") is SubscriptionStatus.UNSUBSCRIBED
    with web_app.db.session() as session:
        consent = session.scalar(select(Consent))
        assert consent.email == "eve@example.org"
        assert consent.ip == "198.51.100.7" and consent.user_agent == "TestBrowser/1.0"
        assert consent.form_id == "web:news"
        assert consent.text_version == web_app.settings.consent_version
        assert consent.text == web_app.settings.consent_text
        assert consent.at.tzinfo is not None
        assert consent.confirmed_at is not None and consent.confirmed_ip == "203.0.113.9"


def test_c5_cooldown_no_second_confirmation_mail(web_app: WebApp) -> None:
    """C5: a repeat sign-up while pending sends no second mail within the cool-down."""
    for _ in range(3):
        assert web_app.sign_up("fay@example.org").status_code == 200
    web_app.deliver()
    assert len(web_app.outbox()) == 1


def test_c5_c6_at_most_k_mails_a_day_per_address_then_429(web_app: WebApp) -> None:
    """C5/C6: without cool-down, K mails a day, then 429 and nothing more sent."""
    web_app.app.extensions["mailer"].settings = web_app.settings.replace(web_confirm_cooldown_minutes=0)
    k = web_app.settings.web_confirm_max_per_day
    for _ in range(k):
        assert web_app.sign_up("gus@example.org").status_code == 200
    over = web_app.sign_up("gus@example.org")
    assert over.status_code == 429
    assert "too many confirmation mails" in over.text
    web_app.deliver()
    assert len(web_app.outbox()) == k


def test_c6_rate_limit_per_ip_answers_429_and_sends_nothing(web_app: WebApp) -> None:
    web_app.app.extensions["mailer"].settings = web_app.settings.replace(web_rate_per_ip_per_hour=2)
    assert web_app.sign_up("h1@example.org").status_code == 200
    assert web_app.sign_up("h2@example.org").status_code == 200
    blocked = web_app.sign_up("h3@example.org")
    assert blocked.status_code == 429
    assert web_app.status("h3@example.org") is None
    other_ip = web_app.client.post("/subscribe/news", data={
        "csrf_token": web_app.form_token(), "email": "h4@example.org", "consent": "yes"},
        environ_base={"REMOTE_ADDR": "192.0.2.44"})
    assert other_ip.status_code == 200
    web_app.deliver()
    assert sorted(m["To"] for m in web_app.outbox()) == ["h1@example.org", "h2@example.org", "h4@example.org"]


def test_c7_honeypot_filled_looks_accepted_but_stores_and_sends_nothing(web_app: WebApp) -> None:
    response = web_app.sign_up("bot@example.org", website="http://spam.example")
    assert response.status_code == 200 and "a mail is on its way" in response.text
    assert web_app.count(Subscriber) == 0 and web_app.queued() == 0


def test_c8_missing_or_forged_csrf_token_rejected(web_app: WebApp) -> None:
    for token in (None, "forged", web_app.form_token() + "x"):
        data = {"email": "ivy@example.org", "consent": "yes"}
        if token:
            data["csrf_token"] = token
        response = web_app.client.post("/subscribe/news", data=data)
        assert response.status_code == 403
        assert "expired" in response.text
    assert web_app.count(Subscriber) == 0 and web_app.queued() == 0


def test_c8_foreign_origin_rejected(web_app: WebApp) -> None:
    response = web_app.sign_up("jo@example.org", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert "another website" in response.text
    assert web_app.count(Subscriber) == 0
    ok = web_app.sign_up("jo@example.org", headers={"Origin": "http://localhost"})
    assert ok.status_code == 200


def test_c9_consent_checkbox_not_pre_ticked_and_required(web_app: WebApp) -> None:
    page = web_app.client.get("/subscribe/news").text
    box = re.search(r"<input[^>]*name=\"consent\"[^>]*>", page).group(0)
    assert 'type="checkbox"' in box and "checked" not in box
    assert web_app.settings.consent_text in page and web_app.settings.consent_version in page
    assert '<html lang="en" dir="ltr">' in page and '<label for="email">' in page
    unticked = web_app.sign_up("kai@example.org", consent=False)
    assert unticked.status_code == 400 and "tick the box" in unticked.text
    assert web_app.count(Subscriber) == 0


@pytest.mark.parametrize("email_addr, name, expected", [
    ("not-an-address", "", "invalid email address"),
    ("a" * 330 + "@example.org", "", "longer than 320"),
    ("lee@example.org", "N" * 201, "longer than 200"),
    ("lee@example.org", "Lee\r\nBcc: victim@example.org", "line break"),
    ("lee@example.org", "=?UTF-8?Q?=0A?=Bcc: x@y", "encoded word"),
    ("lee@example.org\nBcc: x@y", "", "line break"),
])
def test_bad_input_clear_message_400_nothing_stored(web_app: WebApp, email_addr: str, name: str,
                                                    expected: str) -> None:
    """Bad input (D1 header injection in the name): 400, the message on the page, nothing stored."""
    response = web_app.sign_up(email_addr, name)
    assert response.status_code == 400
    assert expected in response.text
    assert 'role="alert"' in response.text
    assert web_app.count(Subscriber) == 0 and web_app.queued() == 0


def test_unknown_list_404(web_app: WebApp) -> None:
    assert web_app.client.get("/subscribe/nope").status_code == 404
    response = web_app.client.post("/subscribe/nope", data={"email": "m@example.org", "consent": "yes"})
    assert response.status_code == 404 and "nothing at this address" in response.text


def test_form_values_are_autoescaped(web_app: WebApp) -> None:
    response = web_app.sign_up("<script>alert(1)</script>", "<b>x</b>")
    assert response.status_code == 400
    assert "<script>alert(1)</script>" not in response.text and "&lt;b&gt;x&lt;/b&gt;" in response.text


def test_security_headers_on_every_page(web_app: WebApp) -> None:
    for path in ("/subscribe/news", "/archive/", "/u/bad", "/nowhere"):
        headers = web_app.client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src" not in csp and "default-src 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Set-Cookie" not in headers


def test_embed_frameable_only_by_configured_origins(web_app: WebApp) -> None:
    web_app.app.extensions["mailer"].settings = web_app.settings.replace(
        web_embed_origins=("https://group.example",))
    embed = web_app.client.get("/embed/news")
    assert "frame-ancestors https://group.example" in embed.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in embed.headers
    assert 'name="embed"' in embed.text and "<header" not in embed.text
    page = web_app.client.get("/subscribe/news")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    posted = web_app.sign_up("ned@example.org", embed="1", headers={"Origin": "https://group.example"})
    assert posted.status_code == 200
    assert "frame-ancestors https://group.example" in posted.headers["Content-Security-Policy"]


def test_api_subscribe_json_and_cors(web_app: WebApp) -> None:
    web_app.app.extensions["mailer"].settings = web_app.settings.replace(
        web_cors_origins=("https://group.example",))
    pre = web_app.client.options("/api/subscribe", headers={"Origin": "https://group.example"})
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == "https://group.example"
    ok = web_app.client.post("/api/subscribe", json={"list": "news", "email": "ola@example.org",
                                                      "consent": True}, headers={"Origin": "https://group.example"})
    assert ok.status_code == 202 and ok.json["ok"] is True
    assert ok.headers["Access-Control-Allow-Origin"] == "https://group.example"
    web_app.process_intake()
    assert web_app.status("ola@example.org") is SubscriptionStatus.PENDING
    with web_app.db.session() as session:
        assert session.scalar(select(Consent.form_id)) == "api:https://group.example"


@pytest.mark.parametrize("body, headers, status, field", [
    ({"list": "news", "email": "p@example.org", "consent": True}, {"Origin": "https://evil.example"}, 403, "origin"),
    ({"list": "news", "email": "nope", "consent": True}, {}, 400, "email"),
    ({"list": "news", "email": "p@example.org"}, {}, 400, "consent"),
    ({"list": "news", "email": "p@example.org", "consent": "yes"}, {}, 400, "consent"),
    ({"list": "gone", "email": "p@example.org", "consent": True}, {}, 404, "list"),
    ({"email": "p@example.org", "consent": True}, {}, 400, "list"),
    (["not", "an", "object"], {}, 400, "body"),
])
def test_api_bad_input(web_app: WebApp, body: object, headers: dict, status: int, field: str) -> None:
    """C8 (foreign Origin) and bad input on the JSON API: right status, the field named, nothing stored."""
    response = web_app.client.post("/api/subscribe", json=body, headers=headers)
    assert response.status_code == status
    assert response.json["ok"] is False and response.json["field"] == field and response.json["error"]
    assert "Access-Control-Allow-Origin" not in response.headers
    assert web_app.count(Subscriber) == 0 and web_app.queued() == 0


def test_api_needs_json_and_honours_honeypot(web_app: WebApp) -> None:
    form = web_app.client.post("/api/subscribe", data={"list": "news", "email": "q@example.org"})
    assert form.status_code == 415
    bot = web_app.client.post("/api/subscribe", json={"list": "news", "email": "q@example.org",
                                                       "consent": True, "website": "x"})
    assert bot.status_code == 202  # C7
    assert web_app.count(Subscriber) == 0


def test_templates_path_overrides_a_page(web_app: WebApp, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A group's own templates folder comes first; the rest falls back to the built-in ones."""
    from mailer.web import create_app

    own = tmp_path / "own" / "web"
    own.mkdir(parents=True)
    (own / "message.html").write_text("<!doctype html><html lang=\"{{ lang }}\"><p>OWN: {{ message }}</p></html>")
    settings = web_app.settings.replace(templates_path=(str(tmp_path / "own"), "templates"))
    client = create_app(settings, web_app.db).test_client()
    assert "OWN: There is nothing" in client.get("/nowhere").text
    assert "Subscribe to Riverside News" in client.get("/subscribe/news").text


def test_api_deeply_nested_json_is_400_with_the_json_error_shape(web_app: WebApp) -> None:
    """A 30,000-deep body (within the size limit) is refused like any body that is not an object, not a 500."""
    body = "[" * 30_000 + "]" * 30_000
    response = web_app.client.post("/api/subscribe", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json == {"ok": False, "error": "the body is not a JSON object", "field": "body"}
    assert web_app.count(Subscriber) == 0 and web_app.queued() == 0


def test_confirmation_mail_template_is_sandboxed(web_app: WebApp, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A group's own confirmation mail cannot reach Python internals: the mail is not sent, the row
    keeps one clear line naming the template, and the sign-up is retried once the template is fixed."""
    own = tmp_path / "own" / "web"
    own.mkdir(parents=True)
    (own / "confirm_mail.txt").write_text("Hello {{ name }}\n{{ ''.__class__.__mro__ }}\n{{ confirm_url }}\n")
    web_app.app.extensions["mailer"].settings = web_app.settings.replace(
        templates_path=(str(tmp_path / "own"), "templates"))
    web_app.sign_up("eve@example.org", name="Eve")
    report = web_app.deliver()
    assert (report.sent, report.retried) == (0, 1) and web_app.outbox() == []
    with web_app.db.session() as session:
        row = session.scalar(select(QueuedMail))
        assert row.status is QueueStatus.QUEUED
        assert row.last_error == (f"{own / 'confirm_mail.txt'}:2: template error: "
                                  "access to attribute '__class__' of 'str' object is unsafe.")
    (own / "confirm_mail.txt").write_text("Hello {{ name }}\n{{ confirm_url }}\n")
    with web_app.db.session() as session:
        session.scalar(select(QueuedMail)).next_attempt_at = session.scalar(select(QueuedMail)).created_at
    assert web_app.deliver().sent == 1
    assert body_text(web_app.outbox()[0]).startswith("Hello Eve\r\nhttps://news.example.org/confirm/")
