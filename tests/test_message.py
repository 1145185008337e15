"""Message bytes (STANDARDS A1-A16 where checkable on bytes, D1, D2, I7)."""

from __future__ import annotations

import base64
import re
import subprocess
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

import dkim
import pytest

from mailer.content.compose import ComposedIssue, compose_issue
from mailer.config import Settings
from mailer.errors import ConfigError
from mailer.mail.message import MessageFactory, Recipient, transactional_message
from mailer.mail.tokens import Purpose, read_token

CVE_PAYLOAD = "A 💩 subject=?UTF-8?Q?=0A?=Bcc: x@y"


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> ComposedIssue:
    """The repo's example issue, composed for real (Jinja + premailer) once."""
    import shutil

    from tests.conftest import REPO

    root = tmp_path_factory.mktemp("issue")
    shutil.copytree(REPO / "templates", root / "templates")
    shutil.copytree(REPO / "issues" / "example", root / "issues" / "example")
    return compose_issue(Settings(root=root, secret_keys=("k",)), root / "issues" / "example")


def factory_for(settings: Settings, composed: ComposedIssue, subject: str | None = None) -> MessageFactory:
    return MessageFactory(settings, subject=subject or composed.subject, html=composed.html,
                          text=composed.text, issue_slug=composed.slug, preheader=composed.preheader)


def alice(key: int | str = 41, **changes: str) -> Recipient:
    values = dict(email="alice@example.net", name="Alice Example", subscriber_uid="Qx7vR2pLk9",
                  list_slug="news", list_name="Riverside News")
    values.update(changes)
    return Recipient(key=key, **values)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    return message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


def header_block(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


def test_exactly_one_of_each_core_header_A1(settings, composed):
    """A1: exactly one From, To, Date, Message-ID, Subject."""
    msg = parse(factory_for(settings, composed).render(alice()).data)
    for name in ("From", "To", "Date", "Message-ID", "Subject"):
        assert len(msg.get_all(name) or []) == 1, name
    assert msg["From"] == "Riverside Solidarity Network <news@example.org>"
    assert msg["To"] == "Alice Example <alice@example.net>"


def test_message_id_format_domain_and_distinct_A2(settings, composed):
    """A2: <left@sending_domain>, no colon, N messages -> N distinct ids."""
    s = settings.replace(sending_domain="mail.riverside.example")
    factory = factory_for(s, composed)
    ids = []
    for i in range(50):
        out = factory.render(alice(i))
        mid = parse(out.data)["Message-ID"]
        assert re.fullmatch(r"<[^<>\s@:]+@mail\.riverside\.example>", mid)
        assert out.message_id == mid
        ids.append(mid)
    assert len(set(ids)) == 50


def test_date_has_zone_and_is_stamped_at_render_time_A3(settings, composed):
    """A3: Date parses, carries an offset, and is the render (= send) time, not composition time."""
    factory = factory_for(settings, composed)
    msg = parse(factory.render(alice()).data)
    date = parsedate_to_datetime(msg["Date"])
    assert date.tzinfo is not None
    assert abs(date - datetime.now(timezone.utc)) < timedelta(minutes=5)
    later = datetime(2027, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert parsedate_to_datetime(parse(factory.render(alice(), now=later).data)["Date"]) == later


def test_multipart_alternative_text_first_utf8_with_unsubscribe_A4_A11(settings, composed):
    """A4: multipart/alternative, text/plain then text/html, utf-8; A11: both bodies hold the unsubscribe link."""
    out = factory_for(settings, composed).render(alice())
    msg = parse(out.data)
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    unsubscribe = msg["List-Unsubscribe"].strip("<>")
    text, html = parts[0].get_content(), parts[1].get_content()
    assert text.strip() and unsubscribe in text
    assert f'href="{unsubscribe}"' in html
    assert "__mailer_" not in text + html


def test_list_unsubscribe_one_https_opaque_token_A5_A6(settings, composed):
    """A5: one https URI in <...> with a signed opaque token; A6: List-Unsubscribe-Post byte-exact."""
    out = factory_for(settings, composed).render(alice())
    msg = parse(out.data)
    value = msg["List-Unsubscribe"]
    assert re.fullmatch(r"<https://news\.example\.org/u/[A-Za-z0-9_.-]+>", value)
    token = value[1:-1].rsplit("/", 1)[1]
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==")
    assert b"alice" not in payload and b"41" not in payload   # no address, no row id: the random uid
    assert "alice" not in value and "example.net" not in value
    assert read_token(settings, Purpose.UNSUBSCRIBE, token).subscriber_uid == "Qx7vR2pLk9"
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in header_block(out.data)
    assert len(msg.get_all("List-Unsubscribe-Post")) == 1


def test_list_unsubscribe_with_optional_mailto_A5(settings, composed):
    """A5: plus at most one <mailto:...>, comma-separated."""
    s = settings.replace(unsubscribe_mailto="unsubscribe@example.org")
    value = parse(factory_for(s, composed).render(alice()).data)["List-Unsubscribe"]
    uris = [u.strip() for u in value.split(",")]
    assert len(uris) == 2
    assert uris[0].startswith("<https://") and uris[1] == "<mailto:unsubscribe@example.org?subject=unsubscribe>"


def test_transactional_has_no_list_headers_and_own_from_A7_I7(settings):
    """A7: a confirmation mail carries neither List-Unsubscribe nor -Post; I7: its own From."""
    s = settings.replace(transactional_from_email="confirm@example.org")
    out = transactional_message(s, to="bob@example.net", to_name="Bob", subject="Please confirm",
                                text="Confirm: https://news.example.org/confirm/x\n", key="c-1")
    msg = parse(out.data)
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert msg["From"] == "Riverside Solidarity Network <confirm@example.org>"
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert out.recipient == "bob@example.net" and out.envelope_from == "bounces+c-1@example.org"
    assert msg.defects == []
    html = transactional_message(s, to="bob@example.net", to_name="", subject="x", text="t", html="<p>h</p>")
    assert [p.get_content_type() for p in parse(html.data).iter_parts()] == ["text/plain", "text/html"]


def test_list_id_per_list_stable_across_issues_A8(settings, composed):
    """A8: List-Id is the same for every issue of a list, differs between lists, <= 255 octets."""
    first = factory_for(settings, composed)
    other_issue = MessageFactory(settings, subject="Another", html="<p>x __mailer_unsubscribe_url__</p>",
                                 text="x __mailer_unsubscribe_url__", issue_slug="2027-01")
    a = parse(first.render(alice()).data)["List-Id"]
    b = parse(other_issue.render(alice(2)).data)["List-Id"]
    c = parse(first.render(alice(3, list_slug="alerts", list_name="Action alerts")).data)["List-Id"]
    assert a == b == "Riverside News <news.lists.example.org>"
    assert c == "Action alerts <alerts.lists.example.org>"
    long_domain = factory_for(settings.replace(list_id_domain="lists." * 50 + "example.org"), composed)
    long = parse(long_domain.render(alice(4, list_slug="x" * 64)).data)["List-Id"]
    assert len(long.split("<", 1)[1].rstrip(">")) <= 255


def test_feedback_id_has_no_per_recipient_value_A9(settings, composed):
    """A9: <= 4 fields, SenderId 5-15 chars and constant, same for every recipient."""
    factory = factory_for(settings, composed)
    values = {parse(factory.render(alice(i, email=f"r{i}@example.net", name=f"R{i}")).data)["Feedback-ID"]
              for i in range(5)}
    assert values == {"example:news:mailer"}
    fields = values.pop().split(":")
    assert len(fields) <= 4 and 5 <= len(fields[-1]) <= 15
    with pytest.raises(ConfigError, match="feedback_id_sender"):
        factory_for(settings.replace(feedback_id_sender="abc"), composed)


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """(private key file, DNS TXT record) of a fresh 2048-bit key (openssl CLI)."""
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"], check=True, capture_output=True)
    pub = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout"], check=True, capture_output=True).stdout
    b64 = b"".join(line for line in pub.splitlines() if not line.startswith(b"-----"))
    return key, b"v=DKIM1; k=rsa; p=" + b64


def test_dkim_signature_covers_list_headers_and_verifies_A10(settings, composed, dkim_key):
    """A10: h= holds from, list-unsubscribe, list-unsubscribe-post, feedback-id; dkim.verify passes."""
    key, record = dkim_key
    s = settings.replace(dkim_selector="news2026", dkim_domain="example.org", dkim_private_key_file=str(key))
    out = factory_for(s, composed).render(alice())

    def dns(name: bytes, timeout: int = 5) -> bytes:
        return record if name == b"news2026._domainkey.example.org." else b""

    assert out.data.startswith(b"DKIM-Signature: ")
    assert dkim.verify(out.data, dnsfunc=dns)
    signature = parse(out.data)["DKIM-Signature"]
    signed = re.search(r"h=([^;]+)", signature.replace(" ", "")).group(1).lower().split(":")  # type: ignore[union-attr]
    for name in ("from", "to", "subject", "date", "message-id", "list-id", "list-unsubscribe",
                 "list-unsubscribe-post", "feedback-id"):
        assert name in signed
    tampered = out.data.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=One-Clack")
    assert not dkim.verify(tampered, dnsfunc=dns)
    # the transactional mail is signed too
    assert dkim.verify(transactional_message(s, to="b@example.net", to_name="B", subject="s", text="t").data,
                       dnsfunc=dns)


def test_dkim_half_configured_is_a_config_error(settings, composed):
    with pytest.raises(ConfigError, match="dkim.selector"):
        factory_for(settings.replace(dkim_selector="x"), composed)
    with pytest.raises(ConfigError, match="cannot read"):
        factory_for(settings.replace(dkim_selector="x", dkim_domain="example.org",
                                     dkim_private_key_file="missing.pem"), composed)


def test_crlf_only_and_short_lines_A12(settings, composed):
    """A12: CRLF line ends only, no line over 998 octets, even with long and non-ASCII values."""
    factory = factory_for(settings, composed, subject="Ünïcödé " * 60)
    out = factory.render(alice(name="Zoë " + "Ω" * 150, list_name="L" * 180))
    assert re.search(rb"(?<!\r)\n", out.data) is None
    assert re.search(rb"\r(?!\n)", out.data) is None
    lines = out.data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    assert max(len(line) for line in header_block(out.data).split(b"\r\n")) <= 998
    assert all(len(line) <= 76 for line in out.data.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
    msg = parse(out.data)
    assert msg["Subject"] == ("Ünïcödé " * 60).strip()
    # Python's parser puts a space between adjacent encoded words of a phrase: compare without spaces
    assert msg["To"].addresses[0].display_name.replace(" ", "") == "Zoë" + "Ω" * 150


def test_html_part_under_102_kb_A13(settings, composed):
    """A13: the example issue's HTML part, as encoded, stays under 102,000 bytes."""
    data = factory_for(settings, composed).render(alice()).data
    html_part = data.split(b"Content-Type: text/html", 1)[1].split(b"\r\n--=_mailer_", 1)[0]
    assert 0 < len(html_part) < 102_000


def test_envelope_verp_bounce_and_exact_recipient_A14_A15(settings, composed):
    """A14: MAIL FROM is bounces+<key>@bounce domain; A15: the one recipient, no Bcc header."""
    s = settings.replace(bounce_address="bounces@bounce.example.org")
    out = factory_for(s, composed).render(alice(key=9001))
    assert out.envelope_from == "bounces+9001@bounce.example.org"
    assert out.recipient == "alice@example.net"
    assert b"\nbcc:" not in out.data.lower()
    odd = factory_for(s, composed).render(alice(key="test send/1 <x>"))
    assert re.fullmatch(r"bounces\+[A-Za-z0-9._-]+@bounce\.example\.org", odd.envelope_from)


def test_round_trips_without_defects_A16(settings, composed):
    """A16: email.message_from_bytes finds no defect in the message or any part."""
    msg = parse(factory_for(settings, composed).render(alice(name="Jürgen Ö")).data)
    assert all(part.defects == [] for part in msg.walk())
    assert msg["To"].addresses[0].display_name == "Jürgen Ö"


@pytest.mark.parametrize("field", ["subject", "name", "email", "list_name", "from_name"])
def test_header_injection_cleaned_cve_2024_6923_D1(settings, composed, field):
    """D1: CR, LF and encoded-word newlines in subject, names or address never add a header or a blank line."""
    payloads = [CVE_PAYLOAD, "Evil\r\nBcc: x@y", "Evil\nBcc: x@y\n\nbody", "x =?utf-8?b?Cg==?=Bcc: x@y"]
    for payload in payloads:
        s = settings.replace(from_name=payload) if field == "from_name" else settings
        subject = payload if field == "subject" else "Hello"
        changes = {field: payload} if field in ("name", "email", "list_name") else {}
        out = factory_for(s, composed, subject=subject).render(alice(**changes))
        head = header_block(out.data)
        lines = head.split(b"\r\n")
        assert all(re.match(rb"[A-Za-z-]+: |[ \t]", line) for line in lines), head
        assert not any(line.lower().startswith(b"bcc:") for line in lines)
        msg = parse(out.data)
        assert msg["Bcc"] is None
        assert all(part.defects == [] for part in msg.walk())
        names = [line.split(b":", 1)[0].lower() for line in lines if line[:1] not in (b" ", b"\t")]
        assert names.count(b"to") == 1 and names.count(b"subject") == 1 and names.count(b"from") == 1


def test_subject_and_text_not_html_escaped_html_is_D2(settings, composed):
    """D2: `Tips & tricks` reaches Subject and text unchanged; in HTML the name is escaped."""
    factory = factory_for(settings, composed, subject="Tips & tricks")
    msg = parse(factory.render(alice(name="Tom & <Jerry>")).data)
    assert msg["Subject"] == "Tips & tricks"
    text, html = (p.get_content() for p in msg.iter_parts())
    assert "&amp;" not in text
    assert "Tom &amp; &lt;Jerry&gt;" in html or "Tom & <Jerry>" not in html


def test_personal_values_filled_escaped_in_html_raw_in_text(settings):
    factory = MessageFactory(settings, subject="s", issue_slug="i",
                             html='<p title="__mailer_name__">__mailer_email__</p><a href="__mailer_view_online_url__">web</a>',
                             text="Hello __mailer_name__ (__mailer_email__)\n")
    msg = parse(factory.render(alice(name='Ann "<b>"', email="ann@example.net")).data)
    text, html = (p.get_content() for p in msg.iter_parts())
    assert text.replace("\r\n", "\n") == 'Hello Ann "<b>" (ann@example.net)\n'
    assert 'title="Ann &quot;&lt;b&gt;&quot;"' in html
    assert 'href="https://news.example.org/archive/i"' in html


def test_preheader_inserted_once_when_template_lacks_it(settings):
    factory = MessageFactory(settings, subject="s", issue_slug="i", preheader="Strike news inside",
                             html="<html><body><p>x</p></body></html>", text="x")
    html = list(parse(factory.render(alice()).data).iter_parts())[1].get_content()
    assert html.count("Strike news inside") == 1
    assert html.index("Strike news inside") < html.index("<p>x</p>")


def test_dev_redirect_changes_envelope_recipient_only(settings, composed):
    """dev_redirect: every message goes to one address; the To header still shows the subscriber."""
    s = settings.replace(dev_redirect="dev@example.org")
    out = factory_for(s, composed).render(alice())
    assert out.recipient == "dev@example.org"
    assert parse(out.data)["To"] == "Alice Example <alice@example.net>"


@pytest.mark.parametrize("name", ["Ana", ".dot", "." * 120, ". " * 60, "é." * 50, ".=x" * 40])
def test_no_line_starts_with_a_dot_and_the_text_survives_A12(settings, name):
    """Messages are built dot-safe (a line-leading "." is sent as =2E), so SMTP needs no dot-stuffing
    scan; the decoded parts are exactly the text, and every line stays within 76 octets."""
    text = ".leading dot\n" + "x" * 74 + "\n." + "y" * 80 + "\nHi __mailer_name__\n..\n.\n"
    html = "<p>\n.a</p>\n" + "." * 200 + "\n<b>__mailer_name__</b>\n"
    factory = MessageFactory(settings, subject="Dots", issue_slug="2026-12", html=html, text=text)
    message = factory.render(Recipient(1, "ana@example.net", name, "uid1", "news", "News"))
    assert message.dot_safe
    lines = message.data.split(b"\r\n")
    assert not [line for line in lines if line.startswith(b".")]
    head, _, body = message.data.partition(b"\r\n\r\n")
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    parsed = message_from_bytes(message.data, policy=policy.SMTP)
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == text.replace("__mailer_name__", name)
    assert f"<b>{name}</b>".replace(" ", "") in parsed.get_body(("html",)).get_content().replace(" ", "")
