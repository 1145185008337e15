"""Per-recipient rendering cost: MessageFactory.render() vs a stdlib EmailMessage per recipient.

    .venv/bin/python -m bench.message_bench [--count 2000] [--kb 40 95]

The example issue is composed for real (Jinja + premailer, once) and its HTML
padded to the target size. Both methods do the same per-recipient work
(personalised links with signed tokens, same headers); only the way the MIME
message is built differs. Prints microseconds per message and the ratio.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr
from datetime import datetime, timezone
from pathlib import Path

from mailer.content.compose import compose_issue
from mailer.config import Settings
from mailer.mail.message import MessageFactory, Recipient, message_id, verp_address
from mailer.content.personalize import escape_html

REPO = Path(__file__).resolve().parent.parent
PARAGRAPH = ('<p style="margin:0 0 16px 0;font-family:Georgia,serif;font-size:16px;line-height:1.5;color:#222">'
             "The bakery workers held the line for a third week: the picket opens at six, soup at noon, and "
             "the solidarity fund paid out to forty-two families. Bring a flask and a friend. "
             '<a href="https://example.org/strike" style="color:#b00">Read the strike diary</a>.</p>\n')


def padded(html: str, text: str, kb: int) -> tuple[str, str]:
    """The issue's HTML grown to about *kb* KB, the text by the same paragraphs in plain form."""
    need = max(0, kb * 1024 - len(html.encode()))
    n = need // len(PARAGRAPH.encode()) + 1
    cut = html.lower().rfind("</body>")
    html = html[:cut] + PARAGRAPH * n + html[cut:]
    plain = ("The bakery workers held the line for a third week: the picket opens at six, soup at noon,\n"
             "and the solidarity fund paid out to forty-two families. Bring a flask and a friend.\n\n")
    return html, text + plain * (n // 3)


def recipients(n: int) -> list[Recipient]:
    return [Recipient(i, f"reader{i}@example.net", f"Reader Nummer {i}", f"uid{i:08d}x", "news", "Riverside News",
                      {"branch": f"Branch {i % 7}", "joined": 2020 + i % 6} if i % 3 else {})
            for i in range(n)]


def attribute_cost(settings: Settings, issue, people: list[Recipient]) -> None:  # type: ignore[no-untyped-def]
    """personal('attr.x') per recipient: the same issue with two attribute placeholders, one with a
    default, against the issue without them, measured alternately (issue 14's target: <= 5 µs)."""
    from mailer.content.personalize import placeholder

    marks = (f"<p>Your branch: {placeholder('attr.branch', 'the city')}, since "
             f"{placeholder('attr.joined')}</p>")
    cut = issue.html.lower().rfind("</body>")
    html = issue.html[:cut] + marks + issue.html[cut:]
    text = issue.text + "Your branch: " + placeholder("attr.branch", "the city") + "\n"
    plain = MessageFactory(settings, subject=issue.subject, html=issue.html, text=issue.text,
                           issue_slug=issue.slug)
    attrs = MessageFactory(settings, subject=issue.subject, html=html, text=text, issue_slug=issue.slug)
    base, with_attrs = [], []
    for _ in range(5):
        base.append(timed(lambda r: plain.render(r).data, people)[0])
        with_attrs.append(timed(lambda r: attrs.render(r).data, people)[0])
    b, a = min(base), min(with_attrs)
    print(f"personal('attr.x'), 3 placeholders (2 attributes): {a:.1f} µs/msg vs {b:.1f} µs/msg without: "
          f"+{a - b:.2f} µs per recipient, {(a - b) / 3:.2f} µs per placeholder (target <= 5 µs)")


def fill(template: str, values: dict[str, str], escape=str) -> str:  # type: ignore[no-untyped-def]
    """The reference's personalisation: the placeholders replaced in the text, before any encoding."""
    return re.sub(r"__mailer_([a-z_]+?)__", lambda m: escape(values.get(m.group(1), "")), template)


def stdlib_render(settings: Settings, subject: str, html: str, text: str, r: Recipient) -> bytes:
    """The reference: what the message module replaces (EmailMessage built per recipient)."""
    from mailer.mail import links

    unsub = links.unsubscribe_url(settings, r.subscriber_uid, r.list_slug)
    values = {"name": r.name, "email": r.email, "unsubscribe_url": unsub,
              "preferences_url": links.preferences_url(settings, r.subscriber_uid, r.list_slug),
              "view_online_url": links.archive_url(settings, "example")}
    msg = EmailMessage()
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = message_id(settings)
    msg["To"] = formataddr((r.name, r.email))
    msg["From"] = formataddr((settings.from_name, settings.from_email))
    msg["Subject"] = subject
    msg["List-Id"] = f"{r.list_name} <{r.list_slug}.{settings.list_id_domain}>"
    msg["List-Unsubscribe"] = f"<{unsub}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Feedback-ID"] = f"example:{r.list_slug}:{settings.feedback_id_sender}"
    msg.set_content(fill(text, values))
    msg.add_alternative(fill(html, values, escape_html), subtype="html")
    verp_address(settings, r.key)
    return msg.as_bytes(policy=SMTP)


def timed(fn, items) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    size = 0
    start = time.perf_counter()
    for item in items:
        size = len(fn(item))
    return (time.perf_counter() - start) / len(items) * 1e6, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--kb", type=int, nargs="+", default=[40, 95])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "templates", root / "templates")
        shutil.copytree(REPO / "issues" / "example", root / "issues" / "example")
        settings = Settings(root=root, secret_keys=("bench-key",), base_url="https://news.example.org")
        issue = compose_issue(settings, root / "issues" / "example")
    people = recipients(args.count)
    print(f"{args.count} recipients per method, example issue padded; one core")
    for kb in args.kb:
        html, text = padded(issue.html, issue.text, kb)
        build = time.perf_counter()
        factory = MessageFactory(settings, subject=issue.subject, html=html, text=text,
                                 issue_slug=issue.slug, preheader=issue.preheader)
        build_ms = (time.perf_counter() - build) * 1e3
        timed(lambda r: factory.render(r).data, people[:100])      # warm up
        ours, size = timed(lambda r: factory.render(r).data, people)
        ref, ref_size = timed(lambda r: stdlib_render(settings, issue.subject, html, text, r), people)
        print(f"html {len(html.encode()) / 1024:5.1f} KB  message {size / 1024:5.1f} KB | "
              f"MessageFactory.render {ours:7.1f} µs/msg ({1e6 / ours:7.0f} msgs/s, factory built once "
              f"in {build_ms:.1f} ms) | stdlib EmailMessage per recipient {ref:7.1f} µs/msg "
              f"({1e6 / ref:5.0f} msgs/s, {ref_size / 1024:5.1f} KB) | speed-up {ref / ours:4.1f}x")
    attribute_cost(settings, issue, people)


if __name__ == "__main__":
    main()
