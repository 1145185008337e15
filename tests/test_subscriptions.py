"""The subscription state machine, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mailer.errors import InputError
from mailer.models import (AuditEvent, ConsentSource, MailingList, Subscriber, SubscriptionStatus,
                           Suppression, Reason)
from mailer.people.lists import get_list
from mailer.people.subscriptions import (ConsentInfo, Outcome, confirm, normalize_email, subscribe,
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


STATES = [None, SubscriptionStatus.PENDING, SubscriptionStatus.CONFIRMED, SubscriptionStatus.UNSUBSCRIBED]


def _prepare(db, settings, slug: str, address: str, state: SubscriptionStatus | None, suppressed: bool) -> None:
    from mailer.models import SuppressionReason
    from mailer.people.lists import add_list
    from mailer.people.subscriptions import suppress

    with db.session() as s:
        mlist = add_list(s, slug, slug.title())
        if state is not None:
            sub, _ = subscribe(s, settings, mlist, normalize_email(address), consent=ADMIN,
                               confirmed=state is SubscriptionStatus.CONFIRMED)
            sub.status = state      # unsubscribed without a suppression: only the rules decide
        if suppressed:
            suppress(s, settings, normalize_email(address), SuppressionReason.ADMIN, slug)


def _state(db, slug: str, address: str) -> tuple[str | None, int, bool]:
    from mailer.models import Consent, Subscription

    with db.session() as s:
        row = s.execute(select(Subscription.status, Subscription.confirmed_at).join(MailingList)
                        .join(Subscriber).where(MailingList.slug == slug, Subscriber.email_key == address)).first()
        consents = s.scalar(select(func.count()).select_from(Consent).join(MailingList)
                            .where(MailingList.slug == slug))
        return (row.status.value if row else None, consents, bool(row and row.confirmed_at))


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.value if s else "none")
@pytest.mark.parametrize("confirmed", [False, True])
@pytest.mark.parametrize("suppressed", [False, True])
def test_the_import_and_subscribe_apply_the_same_rules(db, settings, tmp_path, state, confirmed, suppressed):
    """One set of rules (people.rules.decide): an import row and `subscribe` from an import end alike."""
    from mailer.people.importing import import_csv
    from mailer.people.rules import decide

    address = "ana@example.org"
    for slug in ("one", "bulk"):
        _prepare(db, settings, slug, address, state, suppressed)
    with db.session() as s:
        _, outcome = subscribe(s, settings, get_list(s, "one"), normalize_email(address),
                               consent=ConsentInfo(ConsentSource.IMPORT), confirmed=confirmed)
    path = tmp_path / "m.csv"
    path.write_text(f"email\n{address}\n")
    report = import_csv(db, settings, path, "bulk", confirmed=confirmed)
    assert _state(db, "one", address) == _state(db, "bulk", address)
    assert outcome is decide(state, confirmed=confirmed, suppressed=suppressed, source=ConsentSource.IMPORT).outcome
    counted = {Outcome.SUPPRESSED: report.suppressed, Outcome.KEPT_UNSUBSCRIBED: report.kept_unsubscribed,
               Outcome.ALREADY_CONFIRMED: report.already_subscribed, Outcome.ALREADY_PENDING: report.already_subscribed,
               Outcome.NOW_CONFIRMED: report.confirmed, Outcome.CREATED_PENDING: report.subscribed,
               Outcome.CREATED_CONFIRMED: report.subscribed}[outcome]
    assert counted == 1


def test_the_rules_keep_suppression_sticky_and_imports_from_reopening():
    from mailer.people.rules import decide

    imp, web, admin = ConsentSource.IMPORT, ConsentSource.WEB, ConsentSource.ADMIN
    assert decide(None, confirmed=True, suppressed=True, source=imp).outcome is Outcome.SUPPRESSED
    assert decide(None, confirmed=True, suppressed=True, source=admin).outcome is Outcome.SUPPRESSED
    signup = decide(SubscriptionStatus.UNSUBSCRIBED, confirmed=True, suppressed=True, source=web)
    assert signup.outcome is Outcome.NOW_PENDING and not signup.confirmed
    unsub = SubscriptionStatus.UNSUBSCRIBED
    assert decide(unsub, confirmed=True, suppressed=False, source=imp).outcome is Outcome.KEPT_UNSUBSCRIBED
    assert decide(unsub, confirmed=True, suppressed=False, source=admin).outcome is Outcome.NOW_CONFIRMED
    again = decide(SubscriptionStatus.PENDING, confirmed=False, suppressed=False, source=imp)
    assert again.outcome is Outcome.ALREADY_PENDING and not again.record_consent
    assert decide(SubscriptionStatus.PENDING, confirmed=False, suppressed=False, source=web).record_consent
