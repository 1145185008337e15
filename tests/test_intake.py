"""Reports by mail: `mailer intake` on a real Dovecot (IMAP and POP3 over TLS) and a Maildir.

Mails are delivered into a Dovecot account's Maildir as a delivery agent would (Return-Path
first). What is checked: allowed senders are filed held and refused ones are not; text and HTML
bodies become reports (the HTML sanitised); attachments are kept or dropped by kind and content;
the same mail polled twice is filed once; a held report is not taken by a digest until approved,
and then `mailer digest --preview` shows it; the RFC 3834 auto-reply's bytes and envelope; bad
configuration is one line.
"""

from __future__ import annotations

import email
import email.policy
import imaplib
import io
import poplib
import ssl
import zipfile
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailer.cli import cli
from mailer.content.reports import read_report
from mailer.models import (ConsentSource, MailingList, Submission, SubmissionStatus)
from mailer.people.subscriptions import ConsentInfo, normalize_email, subscribe
from mailer.scheduling import digest
from mailer.sending.worker import run_worker
from mailer.submissions.convert import docx_markdown
from mailer.submissions.poll import intake
from mailer.submissions.reply import reply_message, why_not
from mailer.submissions.poll import parse
from tests import dovecot
from tests.schedule_support import env_for
from tests.smtpserver import smtp_server, smtp_server_factory, tls_cert  # noqa: F401

sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
JO = "jo@riverside.example"


@pytest.fixture(scope="module")
def server() -> Iterator[dovecot.DovecotServer]:
    if not dovecot.available():
        pytest.skip("dovecot-imapd and dovecot-pop3d are not installed")
    running = dovecot.DovecotServer(accounts=30).start()
    yield running
    running.stop()


@pytest.fixture
def account(server: dovecot.DovecotServer) -> dovecot.Account:
    return server.add_account()


@pytest.fixture
def weekly(project: Path) -> Path:
    folder = project / "issues" / "weekly"
    (folder / "inbox").mkdir(parents=True)
    (folder / "issue.toml").write_text('subject = "Weekly reports, {date}"\nlists = ["news"]\n', encoding="utf-8")
    return folder


def env(project: Path, db, server, account, scheme: str = "imaps", **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    values = dict(MAILER_SUBMISSIONS_MAILBOX=account.url(scheme), MAILER_SUBMISSIONS_PASSWORD=account.password,
                  MAILER_SUBMISSIONS_CA_FILE=str(server.ca_file), MAILER_SUBMISSIONS_SENDERS=JO,
                  MAILER_SUBMISSIONS_DIGEST="weekly")
    values.update(extra)
    return env_for(project, db.url, **values)


def run(environ: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, list(args), env=environ)


def mail(*, sender: str = JO, subject: str = "Branch meeting", text: str | None = None, html: str | None = None,
         attachments: tuple[tuple[str, bytes, str], ...] = (), headers: dict[str, str] | None = None,
         envelope: str | None = None, mid: str | None = None) -> bytes:
    """A mail as a delivery agent stores it: Return-Path (the envelope sender) first."""
    msg = EmailMessage()
    msg["Return-Path"] = f"<{sender if envelope is None else envelope}>"
    msg["From"] = f"Jo Bloggs <{sender}>"
    msg["To"] = "reports@riverside.example"
    msg["Subject"] = subject
    msg["Date"] = formatdate()
    msg["Message-ID"] = mid or make_msgid(domain="riverside.example")
    for name, value in (headers or {}).items():
        msg[name] = value
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is not None:
            msg.add_alternative(html, subtype="html")
        else:
            msg.set_content(html, subtype="html")
    for name, data, kind in attachments:
        maintype, subtype = kind.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes(policy=email.policy.SMTP)


def rows(db) -> list[Submission]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return list(s.scalars(select(Submission).order_by(Submission.id)))


def held_files(weekly: Path) -> dict[str, list[str]]:
    held = weekly / "inbox" / "held"
    return {d.name: sorted(p.name for p in d.iterdir()) for d in sorted(held.iterdir())} if held.is_dir() else {}


def imap_flags(server: dovecot.DovecotServer, account: dovecot.Account) -> dict[str, str]:
    """Subject -> flags of every mail in INBOX."""
    conn = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port,
                             ssl_context=ssl.create_default_context(cafile=str(server.ca_file)))
    try:
        conn.login(account.name, account.password)
        conn.select("INBOX")
        _, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        found = {}
        for item in data:
            if isinstance(item, tuple):
                flags = item[0].decode().split("FLAGS (", 1)[1].split(")", 1)[0]
                found[item[1].decode().split(":", 1)[1].strip()] = flags
        return found
    finally:
        conn.logout()


def png(width: int = 40, height: int = 30) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def docx(paragraphs: list[str]) -> bytes:
    """A minimal Word document (what python-docx would write, cut to the parts mammoth reads)."""
    body = "".join(f"<w:p><w:r>{'<w:rPr><w:b/></w:rPr>' if i == 0 else ''}<w:t>{p}</w:t></w:r></w:p>"
                   for i, p in enumerate(paragraphs))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Default Extension="rels" ContentType="application/'
                   'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
                   '"application/xml"/><Override PartName="/word/document.xml" ContentType="application/'
                   'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels",
                   '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                   'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
        z.writestr("word/document.xml",
                   '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                   f'wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>')
    return out.getvalue()


def preview(environ: dict[str, str]):  # type: ignore[no-untyped-def]
    return run(environ, "digest", "weekly", "--preview")


def test_allowed_sender_is_filed_held_refused_is_not_and_approve_puts_it_in_the_digest(
        server, account, db, project, weekly):
    account.deliver("1.jo", mail(subject="Branch meeting", text="The branch met on Tuesday.\n\nWe agreed "
                                 "to march on Saturday.\n\n-- \nJo, 07700 900123\n"))
    account.deliver("2.stranger", mail(sender="stranger@elsewhere.example", subject="Buy now",
                                       text="Cheap pills.\n"))
    environ = env(project, db, server, account)
    first = run(environ, "intake")
    assert first.exit_code == 0, first.output
    assert "1 filed (held for approval), 1 refused, 0 already taken" in first.output
    assert "refused (stranger@elsewhere.example): not an allowed sender" in first.output
    held, refused = rows(db)
    assert (held.status, held.sender, held.title) == (SubmissionStatus.HELD, JO, "Branch meeting")
    assert (refused.status, refused.sender) == (SubmissionStatus.REFUSED, "stranger@elsewhere.example")
    [(folder, files)] = held_files(weekly).items()
    assert files == ["01-report.txt"]
    report = read_report(weekly / "inbox" / "held" / folder / "01-report.txt")
    assert report.title == "Branch meeting"
    assert "march on Saturday" in report.html and "07700" not in report.html   # the signature is cut
    # filed: flagged seen on the server; refused: left unread for a person
    assert imap_flags(server, account) == {"Branch meeting": "\\Seen", "Buy now": ""}

    # held: the digest does not take it
    assert digest.inbox_files(weekly) == []
    shown = preview(environ)
    assert shown.exit_code == 0, shown.output
    assert "would be skipped: 0 report(s)" in shown.output

    listed = run(environ, "intake", "list")
    assert listed.exit_code == 0, listed.output
    assert str(held.id) in listed.output and JO in listed.output and "Branch meeting" in listed.output
    again = run(environ, "intake")
    assert "0 filed (held for approval), 0 refused, 2 already taken" in again.output
    assert len(rows(db)) == 2

    approved = run(environ, "intake", "approve", str(held.id))
    assert approved.exit_code == 0, approved.output
    [name] = [p.name for p in digest.inbox_files(weekly)]
    assert name.endswith(f"-branch-meeting-{held.id}.txt")
    assert held_files(weekly) == {}
    assert rows(db)[0].status is SubmissionStatus.APPROVED
    shown = preview(environ)
    assert "next digest of weekly: 'Weekly reports, " in shown.output and "1 report(s)" in shown.output
    assert name in shown.output
    assert "no held reports" in run(environ, "intake", "list").output
    twice = run(environ, "intake", "approve", str(held.id))
    assert twice.exit_code == 2 and twice.output.strip() == f"error: submission #{held.id} is approved, not held"


@sqlite_only
def test_html_body_is_sanitised_to_paragraphs_bold_italics_links_and_lists(server, account, db, project, weekly):
    html = ('<html><head><style>p { color: red }</style><title>t</title></head><body>'
            '<script>alert("x")</script><p onclick="steal()">We <b>won</b> the <i>vote</i>, see '
            '<a href="https://riverside.example/minutes" onmouseover="x()">the minutes</a> and '
            '<a href="javascript:alert(1)">this</a>.</p><ul><li>rent freeze</li><li>repairs</li></ul>'
            '<img src="https://tracker.example/pixel.gif"><iframe src="https://evil.example"></iframe>'
            '<p style="display:none">Thank you all.</p></body></html>')
    account.deliver("1.html", mail(subject="Tenants' vote", text="We won the vote.", html=html))
    result = run(env(project, db, server, account), "intake")
    assert result.exit_code == 0, result.output
    [(folder, files)] = held_files(weekly).items()
    assert files == ["01-report.md"]
    path = weekly / "inbox" / "held" / folder / "01-report.md"
    text = path.read_text(encoding="utf-8")
    for gone in ("script", "alert", "steal", "onclick", "color", "style", "javascript", "pixel", "iframe",
                 "evil", "onmouseover"):
        assert gone not in text, (gone, text)
    assert "We **won** the *vote*, see [the minutes](<https://riverside.example/minutes>) and this." in text
    assert "- rent freeze\n- repairs" in text
    report = read_report(path)
    assert report.title == "Tenants\u2019 vote"
    assert "<strong>won</strong>" in report.html and '<a href="https://riverside.example/minutes"' in report.html
    assert "<li>rent freeze</li>" in report.html and "<script" not in report.html


@sqlite_only
def test_attachments_kept_by_kind_and_content_others_dropped_pop3(server, account, db, db_settings, project, weekly):
    """.md and .docx become the reports, an image is kept, an .exe and a fake .jpg are dropped;
    over POP3 the filed mail is deleted from the server."""
    attachments = (
        ("march.md", "# The march\n\nFive hundred people walked down Mill Lane.\n".encode(), "text/markdown"),
        ("Minutes.docx", docx(["Committee minutes", "We elected a new treasurer."]),
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("banner.png", png(), "image/png"),
        ("banner.png", png(20, 20), "image/png"),          # the same name twice: both kept
        ("setup.exe", b"MZ\x90\x00" + b"\x00" * 100, "application/octet-stream"),
        ("photo.jpg", b"this is not a JPEG", "image/jpeg"),
    )
    account.deliver("1.attach", mail(subject="Two reports", text="Hi, two reports attached.",
                                     attachments=attachments))
    environ = env(project, db, server, account, "pop3s")
    result = run(environ, "intake")
    assert result.exit_code == 0, result.output
    assert "1 filed" in result.output and "dropped setup.exe, photo.jpg" in result.output
    [(folder, files)] = held_files(weekly).items()
    assert files == ["01-march.md", "02-Minutes.md", "banner-2.png", "banner.png"]
    held = weekly / "inbox" / "held" / folder
    assert read_report(held / "01-march.md").title == "The march"
    minutes = read_report(held / "02-Minutes.md")
    assert minutes.title == "Two reports (2)" and "<strong>Committee minutes</strong>" in minutes.html
    assert "new treasurer" in minutes.html
    [row] = rows(db)
    shown = run(environ, "intake", "show", str(row.id))
    assert shown.exit_code == 0, shown.output
    assert "dropped: setup.exe: not accepted" in shown.output
    assert "dropped: photo.jpg: not accepted" in shown.output and "not an image" in shown.output
    assert "image: banner.png" in shown.output and "image: banner-2.png" in shown.output and "Hi, two reports attached." in shown.output
    assert "--- 02-Minutes.md" in shown.output and "We elected a new treasurer." in shown.output
    pop = poplib.POP3_SSL("127.0.0.1", server.pop3s_port, context=ssl.create_default_context(cafile=str(server.ca_file)))
    pop.user(account.name)
    pop.pass_(account.password)
    assert pop.list()[1] == []          # taken and deleted (after it was recorded)
    pop.quit()

    approved = run(environ, "intake", "approve", str(row.id))
    assert approved.exit_code == 0, approved.output
    assert "2 image(s) linked" in approved.output
    names = [p.name for p in digest.inbox_files(weekly)]
    assert len(names) == 2 and all(n.endswith(".md") for n in names)
    first = (weekly / "inbox" / sorted(names)[0]).read_text(encoding="utf-8")
    assert "](<https://news.example.org/media/" + folder + "/" in first
    assert len(list((project / "media" / folder).glob("*-banner*.png"))) == 2
    assert "2 report(s)" in preview(environ).output


def test_the_same_mail_polled_twice_or_delivered_twice_is_filed_once(server, account, db, db_settings, project, weekly):
    data = mail(subject="Once", text="Only once, please.")
    no_id = mail(subject="No id", text="A mail without a Message-ID.").replace(b"Message-ID:", b"X-Old-ID:")
    account.deliver("1.once", data)
    account.deliver("2.twice", data)            # the same mail, delivered again
    account.deliver("3.noid", no_id)
    box = account.maildir                       # read as a plain Maildir folder this time
    settings = db_settings.replace(submissions_mailbox=str(box), submissions_senders=(JO,), submissions_digest="weekly",
                                   submissions_reply=False)
    first = intake(db, settings)
    second = intake(db, settings)
    assert (first.filed, first.already, second.filed, second.already) == (2, 1, 0, 3)
    assert sorted(r.title for r in rows(db)) == ["No id", "Once"]
    assert any(r.key.startswith("sha256:") for r in rows(db))
    assert len(held_files(weekly)) == 2
    assert sorted(p.parent.name for p in box.rglob("*") if p.is_file() and p.parent.name in ("new", "cur")) == \
        ["cur", "cur", "cur"]


@sqlite_only
def test_reject_deletes_the_files_and_keeps_the_record(server, account, db, project, weekly):
    account.deliver("1", mail(subject="Not for us", text="An advert for a car boot sale."))
    environ = env(project, db, server, account)
    assert run(environ, "intake").exit_code == 0
    [row] = rows(db)
    result = run(environ, "intake", "reject", str(row.id), "--reason", "off topic")
    assert result.exit_code == 0, result.output
    assert f"rejected #{row.id} from {JO}: Not for us" in result.output
    [row] = rows(db)
    assert (row.status, row.reason, row.decided_by) == (SubmissionStatus.REJECTED, "off topic", "cli")
    assert held_files(weekly) == {} and digest.inbox_files(weekly) == []
    missing = run(environ, "intake", "approve", "999")
    assert missing.exit_code == 2 and missing.output.startswith("error: no submission #999")


@sqlite_only
def test_senders_need_the_envelope_a_list_membership_and_your_servers_authentication(
        server, account, db, db_settings, project, weekly):
    with db.session() as s:
        committee = MailingList(slug="committee", name="Committee")
        s.add(committee)
        s.flush()
        subscribe(s, db_settings, committee, normalize_email("ana@riverside.example"), confirmed=True,
                  consent=ConsentInfo(ConsentSource.ADMIN))
        subscribe(s, db_settings, committee, normalize_email("pending@riverside.example"), confirmed=False,
                  consent=ConsentInfo(ConsentSource.ADMIN))
    auth = "Authentication-Results"
    account.deliver("1", mail(sender="ana@riverside.example", subject="Member", text="From a member.",
                              headers={auth: "mx.riverside.example; dkim=pass header.d=riverside.example"}))
    account.deliver("2", mail(sender="pending@riverside.example", subject="Pending", text="Not confirmed."))
    account.deliver("3", mail(subject="Forged", text="From says Jo.", envelope="spoofer@evil.example"))
    account.deliver("4", mail(subject="No auth", text="Jo, but not authenticated by our server.",
                              headers={auth: "mx.evil.example; dmarc=pass header.from=riverside.example"}))
    account.deliver("5", mail(sender="MAILER-DAEMON@riverside.example", subject="Daemon", text="x"))
    settings = db_settings.replace(submissions_mailbox=account.url("imaps"), submissions_password=account.password,
                                   submissions_ca_file=str(server.ca_file), submissions_senders=(JO,),
                                   submissions_members_of=("committee",), submissions_digest="weekly",
                                   submissions_authserv_id="mx.riverside.example", submissions_reply=False)
    lines: list[str] = []
    tally = intake(db, settings, log=lines.append)
    assert (tally.filed, tally.refused) == (1, 4), lines
    reasons = {r.title or r.sender: (r.status.value, r.reason) for r in rows(db)}
    assert reasons["Member"] == ("held", "")
    assert reasons["Pending"][1].startswith("not authenticated by mx.riverside.example")
    assert reasons["Forged"][1] == f"From {JO} does not match the envelope sender spoofer@evil.example"
    assert reasons["No auth"][1].startswith("not authenticated")
    assert reasons["Daemon"][1] == "from a mail system, not a person"
    # without authserv_id the membership decides: a pending member is not allowed
    account.deliver("6", mail(sender="pending@riverside.example", subject="Pending again", text="Still pending."))
    intake(db, settings.replace(submissions_authserv_id=""), log=lines.append)
    assert reasons_of(db)["Pending again"] == ("refused", "not an allowed sender")


def reasons_of(db) -> dict[str, tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {r.title: (r.status.value, r.reason) for r in rows(db)}


@sqlite_only
def test_auto_reply_is_rfc3834_and_none_goes_to_automatic_or_list_mail(
        server, account, db, db_settings, project, weekly, smtp_server):
    mid = "<report-1@riverside.example>"
    account.deliver("1", mail(subject="=?utf-8?q?Rent_strike=0D=0ABcc:_victim@example.net?=", text="We strike.",
                              mid=mid, headers={"References": "<older@riverside.example>"},
                              attachments=(("virus.exe", b"MZ", "application/octet-stream"),)))
    account.deliver("2", mail(subject="Out of office", text="I am away.",
                              headers={"Auto-Submitted": "auto-replied"}))
    account.deliver("3", mail(subject="List copy", text="Via the list.", headers={"List-Id": "<x.riverside.example>"}))
    account.deliver("4", mail(subject="Bulk", text="Bulk.", headers={"Precedence": "bulk"}))
    settings = smtp_server.settings(db_settings.replace(
        backend="smtp", submissions_mailbox=account.url("imaps"), submissions_password=account.password,
        submissions_ca_file=str(server.ca_file), submissions_senders=(JO,), submissions_digest="weekly"))
    lines: list[str] = []
    tally = intake(db, settings, log=lines.append)
    assert (tally.filed, tally.replied) == (4, 1), lines
    assert any("no auto-reply (Auto-Submitted: auto-replied)" in line for line in lines)
    assert any("no auto-reply (from a mailing list)" in line for line in lines)
    assert any("no auto-reply (Precedence: bulk)" in line for line in lines)
    [sent] = smtp_server.messages
    assert sent.mail_from == "<>" and sent.rcpt_tos == [JO]       # a null envelope sender: nothing answers it
    head = sent.data.split(b"\r\n\r\n", 1)[0].decode()
    reply = email.message_from_bytes(sent.data, policy=email.policy.default)
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == mid
    assert reply["References"] == f"<older@riverside.example> {mid}"
    assert reply["To"] == JO and str(reply["Subject"]).startswith("Auto: Rent strike")
    assert "\r\nBcc:" not in head and "victim" not in reply["To"]
    assert "List-Unsubscribe" not in head
    body = reply.get_body(("plain",)).get_content()
    assert "virus.exe: not accepted" in body and "arrived" in body


def test_why_not_and_reply_headers_are_clean():
    msg = parse(mail(text="x", headers={"Auto-Submitted": "no"}))
    assert why_not(msg) == ""
    assert why_not(parse(mail(text="x", envelope=""))).startswith("from a mail system")
    assert why_not(parse(mail(text="x", headers={"X-Auto-Response-Suppress": "OOF, AutoReply"}))) != ""
    from mailer.config import Settings

    out = reply_message(Settings(), msg, "Title\r\nBcc: x@y.z", 7, [])
    assert out.envelope_from == "" and b"\r\nBcc:" not in out.data.split(b"\r\n\r\n", 1)[0]


def test_a_docx_zip_bomb_is_refused_unopened():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"<x/>" + b" " * 20_000_000)
    with pytest.raises(ValueError, match="compressed more than 100:1"):
        docx_markdown(out.getvalue())
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as z:
        for i in range(600):
            z.writestr(f"part{i}.xml", b"x")
    with pytest.raises(ValueError, match="600 parts"):
        docx_markdown(many.getvalue())
    with pytest.raises(ValueError, match="not a zip"):
        docx_markdown(b"not a zip at all")


@sqlite_only
def test_bad_config_is_one_line_and_exit_2(server, account, db, project, weekly):
    environ = env(project, db, server, account)
    del environ["MAILER_SUBMISSIONS_MAILBOX"]
    result = run(environ, "intake")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: setting 'submissions.mailbox' is not set: give the Maildir path or the imaps:// or pop3s:// "
        "URL members mail their reports to"]
    nodigest = env(project, db, server, account, MAILER_SUBMISSIONS_DIGEST="nowhere")
    result = run(nodigest, "intake")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "setting 'submissions.digest'" in result.output and "not a digest folder" in result.output
    nopass = env(project, db, server, account)
    del nopass["MAILER_SUBMISSIONS_PASSWORD"]
    result = run(nopass, "intake")
    assert result.exit_code == 3
    assert result.output.strip().endswith("no password: set MAILER_SUBMISSIONS_PASSWORD "
                                          "(or MAILER_SUBMISSIONS_PASSWORD_FILE)")


@sqlite_only
def test_the_worker_files_reports_when_the_submission_mailbox_is_set(server, account, db, db_settings, project, weekly):
    account.deliver("1", mail(subject="Via the worker", text="Filed by the worker."))
    settings = db_settings.replace(submissions_mailbox=account.url("imaps"), submissions_password=account.password,
                                   submissions_ca_file=str(server.ca_file), submissions_senders=(JO,),
                                   submissions_digest="weekly", submissions_reply=False)
    lines: list[str] = []
    run_worker(db, settings, until_idle=True, log=lines.append)
    assert any("submission mailbox: 1 filed" in line for line in lines), lines
    assert [r.title for r in rows(db)] == ["Via the worker"]
