"""Bounce and complaint reports (STANDARDS F1-F3), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from mailer.people.bounces import Verdict, apply_feedback, parse_report
from mailer.cli import cli
from mailer.models import (BounceEvent, BounceKind, ConsentSource, Delivery, DeliveryStatus, MailingList, Send,
                           SendStatus, Subscription, SubscriptionStatus, utcnow)
from mailer.people.subscriptions import ConsentInfo, normalize_email, subscribe, suppression_for
from tests.helpers import MID, arf, dsn

@pytest.fixture
def sent(db, settings):  # type: ignore[no-untyped-def]
    """Ana, confirmed on `news`, with one delivered message of a send; returns the delivery id."""
    with db.session() as s:
        news = MailingList(slug="news", name="News")
        s.add(news)
        s.flush()
        sub, _ = subscribe(s, settings, news, normalize_email("ana@example.org"),
                           consent=ConsentInfo(ConsentSource.ADMIN), confirmed=True)
        send = Send(issue_slug="dec", issue_path="issues/dec", subject="December", html="", text="",
                    content_hash="x", list_slugs=["news"], status=SendStatus.DONE)
        s.add(send)
        s.flush()
        delivery = Delivery(send_id=send.id, subscriber_id=sub.subscriber_id, list_id=news.id,
                            email="ana@example.org", status=DeliveryStatus.SENT, message_id=MID)
        s.add(delivery)
        s.flush()
        return delivery.id


def state(db, settings):  # type: ignore[no-untyped-def]
    with db.session() as s:
        status = s.scalar(select(Subscription.status))
        suppressed = suppression_for(s, settings, "ana@example.org", "news") is not None
        kinds = [e.kind for e in s.scalars(select(BounceEvent).order_by(BounceEvent.id))]
        return status, suppressed, kinds


def apply(db, settings, data: bytes):  # type: ignore[no-untyped-def]
    with db.session() as s:
        return [apply_feedback(s, settings, f) for f in parse_report(settings, data)]


def test_hard_bounce_via_verp_suppresses_at_once_F1_F2(db, settings, sent):
    """F1: Action failed + 5.x.x is hard; F2: a hard bounce suppresses at once."""
    [feedback] = parse_report(settings, dsn("failed", "5.1.1", f"bounces+{sent}@example.org"))
    assert (feedback.verdict, feedback.status, feedback.delivery_id) == (Verdict.HARD, "5.1.1", sent)
    apply(db, settings, dsn("failed", "5.1.1", f"bounces+{sent}@example.org"))
    assert state(db, settings) == (SubscriptionStatus.UNSUBSCRIBED, True, [BounceKind.HARD])
    with db.session() as s:
        delivery = s.get(Delivery, sent)
        assert delivery.status is DeliveryStatus.FAILED and delivery.last_code == "5.1.1"


def test_dsn_with_only_returned_headers_correlates_by_message_id_F1(db, settings, sent):
    """F1: a DSN whose third part is text/rfc822-headers, sent to the plain bounce address."""
    data = dsn("failed", "5.1.1", "bounces@example.org", third="headers", recipient="someone-else@example.org")
    [feedback] = parse_report(settings, data)
    assert feedback.delivery_id is None and feedback.message_id == MID
    [applied] = apply(db, settings, data)
    assert applied.subscriber_found and applied.suppressed
    assert state(db, settings)[:2] == (SubscriptionStatus.UNSUBSCRIBED, True)


@pytest.mark.parametrize("action, status", [("delayed", "4.4.7"), ("failed", "4.2.2")])
def test_delayed_or_4xx_is_soft_and_does_not_suppress_once_F1(db, settings, sent, action, status):
    apply(db, settings, dsn(action, status, f"bounces+{sent}@example.org"))
    assert state(db, settings) == (SubscriptionStatus.CONFIRMED, False, [BounceKind.SOFT])


@pytest.mark.parametrize("status, verdict", [("5.2.1", Verdict.HARD), ("5.2.2", Verdict.SOFT),
                                             ("5.2.3", Verdict.SOFT), ("5.2.4", Verdict.SOFT),
                                             ("5.2.0", Verdict.SOFT)])
def test_failed_5_2_x_mailbox_disabled_is_hard_mailbox_full_is_soft_F1_F2(db, settings, sent, status, verdict):
    """F1, E4: the one 5.2.x policy (mailer.backends.replies): 5.2.1 suppresses at once; every other 5.2.x counts
    as soft bounces toward bounce_soft_limit, the same as when the SMTP server refuses them during a send."""
    data = dsn("failed", status, f"bounces+{sent}@example.org")
    [feedback] = parse_report(settings, data)
    assert (feedback.verdict, feedback.status) == (verdict, status)
    apply(db, settings, data)
    if verdict is Verdict.HARD:
        assert state(db, settings) == (SubscriptionStatus.UNSUBSCRIBED, True, [BounceKind.HARD])
    else:
        assert state(db, settings) == (SubscriptionStatus.CONFIRMED, False, [BounceKind.SOFT])


@pytest.mark.parametrize("action", ["delivered", "relayed", "expanded"])
def test_delivered_relayed_expanded_are_ignored_F1(db, settings, sent, action):
    [feedback] = parse_report(settings, dsn(action, "2.0.0", f"bounces+{sent}@example.org"))
    assert feedback.verdict is Verdict.IGNORED
    apply(db, settings, dsn(action, "2.0.0", f"bounces+{sent}@example.org"))
    assert state(db, settings) == (SubscriptionStatus.CONFIRMED, False, [])


def test_soft_bounces_suppress_only_on_three_distinct_days_within_14_F2(db, settings, sent):
    """F2: the soft counter counts distinct days in the window; the same day twice is one day."""
    soft = dsn("delayed", "4.4.7", f"bounces+{sent}@example.org")
    apply(db, settings, soft)
    apply(db, settings, soft)
    assert state(db, settings)[:2] == (SubscriptionStatus.CONFIRMED, False)
    with db.session() as s:
        for i, event in enumerate(s.scalars(select(BounceEvent).order_by(BounceEvent.id))):
            event.at = utcnow() - timedelta(days=20 if i == 0 else 3)   # one outside the window
    apply(db, settings, soft)
    assert state(db, settings)[:2] == (SubscriptionStatus.CONFIRMED, False), "only 2 days in the window"
    with db.session() as s:
        first = s.scalars(select(BounceEvent).order_by(BounceEvent.id)).first()
        first.at = utcnow() - timedelta(days=10)
    apply(db, settings, soft)
    assert state(db, settings)[:2] == (SubscriptionStatus.UNSUBSCRIBED, True)


def _another_issue(db, slug: str) -> int:  # type: ignore[no-untyped-def]
    """A later send that reached Ana; returns its delivery id."""
    with db.session() as s:
        first = s.scalars(select(Delivery).order_by(Delivery.id)).first()
        send = Send(issue_slug=slug, issue_path=f"issues/{slug}", subject=slug, html="", text="",
                    content_hash="x", list_slugs=["news"], status=SendStatus.DONE)
        s.add(send)
        s.flush()
        delivery = Delivery(send_id=send.id, subscriber_id=first.subscriber_id, list_id=first.list_id,
                            email="ana@example.org", status=DeliveryStatus.SENT, message_id=f"<{slug}@example.org>")
        s.add(delivery)
        s.flush()
        return delivery.id


def test_soft_bounces_on_three_issues_in_a_row_suppress_however_far_apart_F2(db, settings, sent):
    """F2, the second counter: soft bounces on the subscriber's last three issues in a row (on distinct
    days) suppress even a month apart, as for a monthly newsletter; an issue that went through without
    a bounce breaks the row."""
    def soft_bounce(delivery_id: int, days_ago: int) -> None:
        apply(db, settings, dsn("failed", "5.2.2", f"bounces+{delivery_id}@example.org"))
        with db.session() as s:
            s.scalars(select(BounceEvent).order_by(BounceEvent.id.desc())).first().at = (
                utcnow() - timedelta(days=days_ago))

    soft_bounce(sent, 120)
    soft_bounce(_another_issue(db, "feb"), 90)
    _another_issue(db, "mar")                       # delivered, no bounce
    soft_bounce(_another_issue(db, "apr"), 60)
    soft_bounce(_another_issue(db, "may"), 30)
    assert state(db, settings)[:2] == (SubscriptionStatus.CONFIRMED, False), "march broke the row"
    soft_bounce(_another_issue(db, "jun"), 0)
    assert state(db, settings)[:2] == (SubscriptionStatus.UNSUBSCRIBED, True)


def test_arf_abuse_complaint_suppresses_at_once_F3(db, settings, sent):
    [feedback] = parse_report(settings, arf())
    assert feedback.verdict is Verdict.COMPLAINT and feedback.recipient == "ana@example.org"
    apply(db, settings, arf())
    assert state(db, settings) == (SubscriptionStatus.UNSUBSCRIBED, True, [BounceKind.COMPLAINT])


def test_cli_reads_a_maildir_and_skips_what_is_not_a_report(db, settings, sent, project, tmp_path):
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.eml").write_bytes(dsn("failed", "5.1.1", f"bounces+{sent}@example.org"))
    (maildir / "new" / "2.eml").write_bytes(b"From: someone@example.org\r\nSubject: hello\r\n\r\nhi\r\n")
    result = CliRunner().invoke(cli, ["--root", str(project), "bounces", str(maildir)],
                                env={"MAILER_DATABASE_URL": db.url, "MAILER_HASH_KEY": settings.hash_key},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "hard bounce 5.1.1 for ana@example.org: suppressed" in result.output
    assert "2.eml: not a bounce or complaint report; skipped" in result.output
    assert state(db, settings)[:2] == (SubscriptionStatus.UNSUBSCRIBED, True)
    missing = CliRunner().invoke(cli, ["--root", str(project), "bounces", str(tmp_path / "nope")],
                                 env={"MAILER_DATABASE_URL": db.url})
    assert missing.exit_code == 2 and "no such file or folder" in missing.output
