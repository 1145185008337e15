"""The delivery ledger and the send loop with the memory backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.helpers import add_subscribers, composed_issue, make_list
from mailer.sending import ledger
from mailer.backends.base import DeliveryOutcome
from mailer.backends.memory import MemoryBackend
from mailer.errors import InputError
from mailer.models import (BounceEvent, Delivery, DeliveryStatus, Send, SendStatus, Subscriber, Subscription,
                           SubscriptionStatus, Suppression, SuppressionReason, utcnow)
from mailer.sending.policy import backoff
from mailer.sending.loop import run_send
from mailer.sending.recovery import resume_interrupted
from mailer.people.lists import get_list
from mailer.people.subscriptions import Address, find_subscriber, suppress, unsubscribe


@pytest.fixture(autouse=True)
def memory_outbox():
    MemoryBackend.reset()
    yield
    MemoryBackend.reset()


def start(db, settings, lists=("news",), status=SendStatus.DRAFT):
    with db.session() as session:
        send = ledger.create_send(session, composed_issue(settings.root / "issues" / "t"), lists, status)
        send_id = send.id
    assert ledger.claim_send(db, send_id, status)
    return send_id


def rows(db, send_id):
    with db.session() as session:
        return {d.email: d for d in session.scalars(select(Delivery).where(Delivery.send_id == send_id))}


def test_freeze_dedups_across_lists_and_skips_unconfirmed_and_suppressed(db, db_settings):
    """Freezing: confirmed, not suppressed, one row per subscriber with the first list's id (E5 unique)."""
    add_subscribers(db, "news", 5)
    add_subscribers(db, "actions", 3, start=3)        # user3, user4 in both lists
    add_subscribers(db, "actions", 2, start=10)
    with db.session() as session:
        news = get_list(session, "news")
        s1 = find_subscriber(session, "user1@example.net")
        session.execute(update(Subscription).where(Subscription.subscriber_id == s1.id)
                        .values(status=SubscriptionStatus.PENDING))
        suppress(session, db_settings, Address("user2@example.net", "user2@example.net"),
                 SuppressionReason.ADMIN, "news")
        news_id = news.id
    send_id = start(db, db_settings, ("news", "actions"))
    assert ledger.freeze_audience(db, send_id) == 6
    assert ledger.freeze_audience(db, send_id) == 6      # idempotent
    got = rows(db, send_id)
    assert set(got) == {f"user{i}@example.net" for i in (0, 3, 4, 5, 10, 11)}
    assert got["user3@example.net"].list_id == news_id
    assert all(d.status is DeliveryStatus.QUEUED for d in got.values())
    with db.session() as session:
        assert ledger.audience_count(session, ["news", "actions"]) == (6, {"news": 3, "actions": 5})


def test_create_send_unknown_list_names_it(db, db_settings):
    make_list(db, "news")
    with pytest.raises(InputError, match="unknown list 'nope'"):
        with db.session() as session:
            ledger.create_send(session, composed_issue(db_settings.root), ["news", "nope"])
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Send)) == 0


def test_claim_send_is_compare_and_set_G3(db, db_settings):
    """G3: of two claims of the same send, exactly one wins."""
    make_list(db, "news")
    with db.session() as session:
        send_id = ledger.create_send(session, composed_issue(db_settings.root), ["news"], SendStatus.SCHEDULED).id
    results = []
    threads = [threading.Thread(target=lambda: results.append(ledger.claim_send(db, send_id, SendStatus.SCHEDULED)))
               for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(results) == [False, False, False, True]


def test_run_send_sends_each_once_and_finishes(db, db_settings):
    """E5: every row ends sent, one message each, the send is done; a second run sends nothing."""
    emails = add_subscribers(db, "news", 25)
    send_id = start(db, db_settings)
    settings = db_settings.replace(batch_size=7)
    summary = run_send(db, settings, send_id, backend=MemoryBackend(settings))
    assert summary.sent == 25 and summary.status is SendStatus.DONE
    assert sorted(m.recipient for m in MemoryBackend.outbox) == sorted(emails)
    got = rows(db, send_id)
    assert {d.status for d in got.values()} == {DeliveryStatus.SENT}
    assert all(d.message_id.startswith("<") and d.claimed_by == "" and d.attempts == 1 for d in got.values())
    with pytest.raises(InputError, match="is done"):
        run_send(db, settings, send_id, backend=MemoryBackend(settings))
    assert len(MemoryBackend.outbox) == 25


def test_failure_policy_E4(db, db_settings):
    """E4: 4xx deferred with backoff, 5.1.x failed + hard bounce + suppression, other 5xx failed."""
    add_subscribers(db, "news", 6)
    MemoryBackend.outcomes["user1@example.net"] = (DeliveryOutcome.TEMPORARY, 450, "4.2.1 mailbox busy")
    MemoryBackend.outcomes["user2@example.net"] = (DeliveryOutcome.PERMANENT, 550, "5.1.1 user unknown")
    MemoryBackend.outcomes["user3@example.net"] = (DeliveryOutcome.PERMANENT, 552, "5.2.2 mailbox full")
    send_id = start(db, db_settings)
    summary = run_send(db, db_settings, send_id, backend=MemoryBackend(db_settings))
    assert (summary.sent, summary.deferred, summary.failed, summary.bounced) == (3, 1, 2, 1)
    assert summary.status is SendStatus.SENDING       # a deferred row is still to be retried
    got = rows(db, send_id)
    d1 = got["user1@example.net"]
    assert d1.status is DeliveryStatus.DEFERRED and d1.last_code == "450"
    assert timedelta(seconds=55) < d1.next_attempt_at - d1.updated_at <= timedelta(seconds=61)
    assert got["user2@example.net"].status is DeliveryStatus.FAILED
    assert "5.1.1" in got["user2@example.net"].last_reply
    with db.session() as session:
        bounced = find_subscriber(session, "user2@example.net")
        assert bounced.subscriptions[0].status is SubscriptionStatus.UNSUBSCRIBED
        # 5.1.1 a hard bounce; 5.2.2 (mailbox full) a soft one that counts toward bounce_soft_limit
        assert sorted(k.value for k in session.scalars(select(BounceEvent.kind))) == ["hard", "soft"]
        assert session.scalar(select(Suppression.scope).where(Suppression.email == "user2@example.net")) == "*"
        full = find_subscriber(session, "user3@example.net")
        assert full.subscriptions[0].status is SubscriptionStatus.CONFIRMED   # not a 5.1.x: no suppression
    # the retry: due now, succeeds, the send is done
    MemoryBackend.outcomes.clear()
    with db.engine.begin() as conn:
        conn.execute(update(Delivery).where(Delivery.email == "user1@example.net")
                     .values(next_attempt_at=d1.updated_at - timedelta(seconds=1)))
    summary = run_send(db, db_settings, send_id, backend=MemoryBackend(db_settings))
    assert summary.sent == 1 and summary.status is SendStatus.DONE
    assert rows(db, send_id)["user1@example.net"].attempts == 2


def test_backoff_doubles_and_gives_up_after_max_age(db, db_settings):
    """E4: backoff is exponential; a row older than retry_max_age_hours fails instead of deferring."""
    assert [backoff(db_settings, n).total_seconds() for n in (1, 2, 3)] == [60, 120, 240]
    add_subscribers(db, "news", 1)
    MemoryBackend.outcomes["user0@example.net"] = (DeliveryOutcome.TEMPORARY, 451, "4.3.0 try later")
    send_id = start(db, db_settings)
    settings = db_settings.replace(retry_max_age_hours=0.0)
    summary = run_send(db, settings, send_id, backend=MemoryBackend(settings))
    assert summary.failed == 1 and summary.status is SendStatus.DONE
    assert rows(db, send_id)["user0@example.net"].last_reply.startswith("gave up after 0 h")


def test_policy_error_pauses_without_blaming_recipient(db, db_settings):
    """E4: a 5.7.x policy refusal pauses the send with the reason and does not suppress anyone."""
    add_subscribers(db, "news", 5)
    MemoryBackend.outcomes["user2@example.net"] = (DeliveryOutcome.POLICY, 550, "5.7.1 message refused by policy")
    send_id = start(db, db_settings)
    summary = run_send(db, db_settings, send_id, backend=MemoryBackend(db_settings))
    assert summary.status is SendStatus.PAUSED and "5.7.1" in summary.reason
    got = rows(db, send_id)
    assert got["user2@example.net"].status is DeliveryStatus.QUEUED
    assert got["user3@example.net"].status is DeliveryStatus.QUEUED      # nothing after the pause
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    MemoryBackend.outcomes.clear()
    assert ledger.claim_send(db, send_id, SendStatus.PAUSED)
    summary = run_send(db, db_settings, send_id, backend=MemoryBackend(db_settings))
    assert summary.status is SendStatus.DONE and summary.counts[DeliveryStatus.SENT] == 5
    assert len(MemoryBackend.outbox) == 5


def test_max_send_errors_pauses_E6(db, db_settings):
    """E6: the send pauses after max_send_errors consecutive errors."""
    add_subscribers(db, "news", 10)
    for i in range(10):
        MemoryBackend.outcomes[f"user{i}@example.net"] = (DeliveryOutcome.TEMPORARY, 421, "4.4.2 gone")
    send_id = start(db, db_settings)
    settings = db_settings.replace(max_send_errors=3)
    summary = run_send(db, settings, send_id, backend=MemoryBackend(settings))
    assert summary.status is SendStatus.PAUSED and "3 errors in a row" in summary.reason
    assert summary.deferred == 3 and summary.counts[DeliveryStatus.QUEUED] == 7


def test_unsubscribed_during_send_gets_nothing_B7(db, db_settings):
    """B7: a subscriber who unsubscribes (or is suppressed) mid-send gets no further message."""
    add_subscribers(db, "news", 30)
    send_id = start(db, db_settings)
    settings = db_settings.replace(batch_size=5)

    once = []

    def progress(summary):
        if summary.sent >= 3 and not once:
            once.append(summary.sent)
            with db.session() as session:
                sub = find_subscriber(session, "user20@example.net")
                unsubscribe(session, settings, sub, get_list(session, "news"))
                suppress(session, settings, Address("user25@example.net", "user25@example.net"),
                         SuppressionReason.COMPLAINED)

    summary = run_send(db, settings, send_id, backend=MemoryBackend(settings), progress=progress)
    sent_to = {m.recipient for m in MemoryBackend.outbox}
    assert once and once[0] < 20    # they left before their batch came up
    assert "user20@example.net" not in sent_to and "user25@example.net" not in sent_to
    assert len(sent_to) == 28 and summary.skipped == 2
    got = rows(db, send_id)
    assert got["user20@example.net"].status is DeliveryStatus.SKIPPED
    assert got["user25@example.net"].last_reply == "suppressed during the send"


def test_stale_sending_rows_become_unknown_and_are_not_resent_G7(db, db_settings):
    """G7: after a crash, rows in flight become unknown, sent ones are skipped, the rest resumes."""
    add_subscribers(db, "news", 10)
    send_id = start(db, db_settings)
    ledger.freeze_audience(db, send_id)
    dead = "ghost-host:999999"
    with db.engine.begin() as conn:
        ids = [r[0] for r in conn.execute(select(Delivery.id).where(Delivery.send_id == send_id).order_by(Delivery.id))]
        conn.execute(update(Delivery).where(Delivery.id.in_(ids[:3])).values(status="sent", claimed_by=""))
        conn.execute(update(Delivery).where(Delivery.id == ids[3]).values(status="sending", claimed_by=dead,
                                                                            updated_at=utcnow() - timedelta(hours=1)))
        conn.execute(update(Delivery).where(Delivery.id.in_(ids[4:6])).values(
            claimed_by=dead, updated_at=utcnow() - timedelta(hours=1)))
    assert resume_interrupted(db) == [send_id]
    summary = run_send(db, db_settings, send_id, backend=MemoryBackend(db_settings))
    assert summary.sent == 6 and summary.status is SendStatus.DONE
    assert summary.counts[DeliveryStatus.UNKNOWN] == 1 and summary.counts[DeliveryStatus.SENT] == 9
    got = rows(db, send_id)
    assert {m.recipient for m in MemoryBackend.outbox} == {e for e, d in got.items() if d.id in ids[4:]}
    assert ledger.requeue_unknown(db, send_id) == 1


@pytest.mark.parametrize("outcome, code, reply, status, bounce, pause", [
    (DeliveryOutcome.SENT, 250, "2.0.0 ok", DeliveryStatus.SENT, False, False),
    (DeliveryOutcome.TEMPORARY, 450, "4.2.0 busy", DeliveryStatus.DEFERRED, False, False),
    (DeliveryOutcome.TEMPORARY, 421, "4.3.2 closing", DeliveryStatus.DEFERRED, False, False),
    (DeliveryOutcome.TEMPORARY, 0, "connection lost (EOD)", DeliveryStatus.DEFERRED, False, False),
    (DeliveryOutcome.PERMANENT, 550, "5.1.1 no such user", DeliveryStatus.FAILED, True, False),
    (DeliveryOutcome.PERMANENT, 552, "5.2.2 mailbox full", DeliveryStatus.FAILED, False, False),
    (DeliveryOutcome.POLICY, 550, "5.7.1 rejected by policy", DeliveryStatus.QUEUED, False, True),
])
def test_policy_decides_each_outcome_E4(settings, outcome, code, reply, status, bounce, pause):
    """E4: per-recipient classification, as a pure function of the backend's result."""
    from mailer.backends.base import Result
    from mailer.sending.policy import decide

    now = utcnow()
    d = decide(settings, Result(1, outcome, code, reply), 3, now - timedelta(hours=1), now)
    assert (d.status, d.hard_bounce, bool(d.pause)) == (status, bounce, pause)
    if status is DeliveryStatus.DEFERRED:
        assert d.next_attempt_at == now + timedelta(seconds=240)        # 60 s doubled twice
    old = decide(settings, Result(1, DeliveryOutcome.TEMPORARY, 450, "4.2.0"), 9, now - timedelta(hours=73), now)
    assert old.status is DeliveryStatus.FAILED and old.reply.startswith("gave up after 72 h")


def test_a_row_taken_over_by_another_worker_is_not_sent_twice(db, db_settings):
    """E5: a claim another worker took over (stale) is skipped at the last moment, not sent twice."""
    add_subscribers(db, "news", 6)
    send_id = start(db, db_settings)
    taken = {}

    def progress(summary):
        if summary.sent == 1 and not taken:      # another worker grabs user4's row meanwhile
            with db.engine.begin() as conn:
                conn.execute(update(Delivery).where(Delivery.email == "user4@example.net")
                             .values(claimed_by="elsewhere:1"))
            taken["done"] = True

    summary = run_send(db, db_settings, send_id, backend=MemoryBackend(db_settings), progress=progress)
    assert "user4@example.net" not in {m.recipient for m in MemoryBackend.outbox}
    assert summary.sent == 5 and summary.status is SendStatus.SENDING
    row = rows(db, send_id)["user4@example.net"]
    assert row.status is DeliveryStatus.QUEUED and row.claimed_by == "elsewhere:1" and row.attempts == 0
