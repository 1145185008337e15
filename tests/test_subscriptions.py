"""The subscription state machine, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mailer.errors import InputError
from mailer.models import (AuditEvent, ConsentSource, MailingList, Subscriber, SubscriptionStatus,
                           Suppression, Reason)
from mailer.people.subscriptions import (ConsentInfo, Outcome, confirm, get_list, normalize_email, subscribe,
                                  unsubscribe)

ADMIN = ConsentInfo(ConsentSource.ADMIN)
WEB = ConsentInfo(ConsentSource.WEB, ip="203.0.113.9", user_agent="test", text_version="v1")


def test_case_variants_are_one_subscriber(db, settings):
    with db.session() as s:
        news = MailingList(slug="news", name="News")
        s.add(news)
        s.flush()
        subscribe(s, settings, news, normalize_email("Ana@Example.ORG"), consent=ADMIN, confirmed=True)
        _, outcome = subscribe(s, settings, news, normalize_email("ana@example.org"), consent=ADMIN,
                               confirmed=True)
        assert outcome is Outcome.ALREADY_CONFIRMED
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Subscriber)) == 1


def test_suppression_is_sticky_until_a_new_confirmed_opt_in(db, settings):
    """STANDARDS B8: re-adding an unsubscribed address does not make it sendable."""
    with db.session() as s:
        news = MailingList(slug="news", name="News")
        s.add(news)
        s.flush()
        sub, _ = subscribe(s, settings, news, normalize_email("bo@example.org"), consent=ADMIN, confirmed=True)
        unsubscribe(s, settings, sub.subscriber, news, Reason.USER, actor="test")
        again, outcome = subscribe(s, settings, news, normalize_email("bo@example.org"), consent=ADMIN,
                                   confirmed=True)
        assert outcome is Outcome.SUPPRESSED and again is None
        assert sub.status is SubscriptionStatus.UNSUBSCRIBED
        web, outcome = subscribe(s, settings, news, normalize_email("BO@example.org"), consent=WEB, confirmed=False)
        assert outcome is Outcome.NOW_PENDING and web.status is SubscriptionStatus.PENDING
        assert confirm(s, settings, web, ip="203.0.113.9")
        assert web.status is SubscriptionStatus.CONFIRMED
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Suppression)) == 0
        assert [e.action for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))] == [
            "subscribe", "unsubscribe", "subscribe", "confirm"]


@pytest.mark.parametrize("raw", ["", "no-at-sign", "a@b@c.org", "x@example.org\r\nBcc: y@z.org"])
def test_bad_addresses_are_refused_with_a_reason(raw):
    with pytest.raises(InputError):
        normalize_email(raw)


def test_unknown_list_names_the_list(db):
    with db.session() as s, pytest.raises(InputError, match="unknown list 'nope'"):
        get_list(s, "nope")
