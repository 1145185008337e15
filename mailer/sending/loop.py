"""The resumable send loop: ledger rows in id order -> rendered bytes -> backend -> ledger.

`run_send` freezes the audience (once), then claims batches of due rows,
re-checks each batch's eligibility (STANDARDS B7), and hands the backend the
batch as a stream: each of its connections takes the next message when it is
free, and that message is rendered and its row marked ``sending`` (committed)
right then. Each outcome is recorded as soon as the backend reports it and
committed before the next message on that connection starts (E5). What each
outcome means is mailer.sending.policy's (E4); bounces go to
mailer.people.bounces.record_bounce, and `max_send_errors` errors in a row pause
the send. dev_redirect is applied where the message is built (mailer.mail.message).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterator

from mailer import liveness
from mailer.locking import holder_id
from mailer.sending import ledger, recovery
from mailer.backends import load_backend
from mailer.backends.base import Backend, OutgoingMessage, Result
from mailer.config import Settings
from mailer.db import Database
from mailer.errors import DatabaseError, DeliveryError, InputError, database_error
from mailer.mail.message import MessageFactory, Recipient
from mailer.models import BounceKind, DeliveryStatus, Send, SendStatus, utcnow
from mailer.people.bounces import record_bounce
from mailer.people.subscriptions import GLOBAL, email_hash
from mailer.sending.policy import decide, result_status
from mailer.sending.rates import RateLimiter
from mailer.settingrules import require_public_links
from mailer.sending.summary import Progress, SendSummary, conclude


def _domain(address: str) -> str:
    return address.rpartition("@")[2]


def _parallel(backend: Backend) -> int:
    """How many messages the backend sends at once (one per SMTP connection); 1 when it does not say."""
    connections = getattr(backend, "connections", None)
    return len(connections) if isinstance(connections, list) and connections else 1


class _Run:
    """The state of one run_send call: the connection, the counters, the pause reason."""

    PROGRESS_EVERY_S = 0.2

    def __init__(self, db: Database, settings: Settings, send: Send, backend: Backend,
                 progress: Progress | None, stop: threading.Event) -> None:
        self.db, self.settings, self.send, self.backend = db, settings, send, backend
        self.progress, self.stop = progress, stop
        self.me = holder_id()
        self.limiter = RateLimiter.from_settings(settings)
        self.factory = MessageFactory(settings, subject=send.subject, html=send.html, text=send.text,
                                      issue_slug=send.issue_slug, preheader=send.preheader, send_uid=send.uid)
        self.summary = SendSummary(send.id)
        self.errors_in_row = 0
        self.pause_reason = ""
        self.lock = threading.Lock()       # the database connection is shared by the backend's threads
        self.conn = db.engine.connect()
        self.writer = ledger.Writer(self.conn, self.me)
        # rows handed to the backend whose outcome is not recorded yet, with their Message-ID
        self.in_flight: dict[int, tuple[ledger.Row, str]] = {}
        # in flight at once: the backend's connections, fewer when a per-second limit is smaller
        self.group = max(1, min(_parallel(backend), self.limiter.max_parallel))
        self.slots = threading.Semaphore(self.group)
        self.last_progress = 0.0

    # -- batches -----------------------------------------------------------------------------
    def next_batch(self, after: int) -> tuple[list[ledger.Row], int] | None:
        """(the eligible due rows after id *after*, the last id claimed), or None when none is left."""
        with self.lock:
            self.writer.commit()
            claimed = ledger.claim_batch(self.conn, self.send.id, self.me, after, self.settings.batch_size)
            if not claimed:
                return None
            rows = ledger.claimed_rows(self.conn, self.send.id, self.me, after, claimed)
            return (self.eligible(rows), rows[-1].id) if rows else None

    def eligible(self, rows: list[ledger.Row]) -> list[ledger.Row]:
        """Mark rows whose subscriber left or is suppressed since the freeze as skipped (B7)."""
        hashes = {r.id: email_hash(self.settings, r.email_key) for r in rows if r.email_key}
        scopes = ledger.suppressed_hashes(self.conn, list(set(hashes.values())))
        keep = []
        for r in rows:
            why = ("subscriber erased during the send" if r.subscriber_id is None
                   else "unsubscribed during the send" if not r.subscribed
                   else "suppressed during the send" if scopes.get(hashes.get(r.id, ""), set()) & {GLOBAL, r.list_slug}
                   else "")
            if why:
                self.writer.finish(r.id, DeliveryStatus.SKIPPED, reply=why)
                self.summary.skipped += 1
            else:
                keep.append(r)
        self.writer.commit()
        return keep

    def messages(self) -> Iterator[OutgoingMessage]:
        """Every due row's message, made when a connection takes it: rate limits, render, mark ``sending``.

        Rows are claimed and re-checked a batch at a time (B7); the backend's connections take
        messages as they become free, none waiting for another. Marking commits, and with it
        the outcomes recorded since (E5).
        """
        after = 0
        while not self.stop.is_set() and not self.pause_reason:
            batch = self.next_batch(after)
            if batch is None:
                return
            rows, after = batch
            self.report_progress()
            for r in rows:
                if self.stop.is_set() or self.pause_reason:
                    return
                domain = _domain(r.email)
                self.slots.acquire()          # released by record(), or below
                if not self.limiter.acquire(domain, self.stop):
                    self.slots.release()
                    return
                message = self.factory.render(Recipient(r.id, r.email, r.name, r.uid, r.list_slug, r.list_name,
                                                           r.link_secret, r.attributes))
                with self.lock:
                    ours = self.writer.mark_sending(r.id)
                    if ours:
                        self.in_flight[r.id] = (r, message.message_id)
                if not ours:                  # lost to another worker: not ours to send
                    self.limiter.complete(domain)
                    self.slots.release()
                    continue
                yield message

    def stream(self) -> None:
        """Send every due row through the backend; each message handed to it ends with a recorded outcome."""
        try:
            self.backend.send(self.messages(), on_result=self.record)
        except DeliveryError:
            with self.lock:
                self.writer.commit()
                left = list(self.in_flight)
                self.in_flight.clear()
            ledger.requeue(self.conn, left)
            raise
        finally:
            for row, _ in list(self.in_flight.values()):
                self.limiter.complete(_domain(row.email))
                self.slots.release()
        with self.lock:
            for delivery_id in self.in_flight:   # a backend that reported nothing: it may have gone out
                self.writer.finish(delivery_id, DeliveryStatus.UNKNOWN, reply="the backend reported no outcome")
            self.in_flight.clear()
        self.report_progress()

    def record(self, result: Result) -> None:
        """Persist one outcome (called by the backend before that connection goes on)."""
        with self.lock:
            row, message_id = self.in_flight.pop(int(result.key))
        self.limiter.complete(_domain(row.email))
        self.slots.release()
        decision = decide(self.settings, result, row.attempts + 1, row.first_attempt_at, utcnow())
        if decision.hard_bounce or decision.soft_bounce:
            self.bounce(row, result, BounceKind.HARD if decision.hard_bounce else BounceKind.SOFT)
        with self.lock:
            self.writer.finish(row.id, decision.status, code=result.code, reply=decision.reply,
                               message_id=message_id, next_attempt_at=decision.next_attempt_at)
        s = self.summary
        if decision.status is DeliveryStatus.SENT:
            self.errors_in_row = 0
            s.sent += 1
        else:
            self.errors_in_row += 1
            s.deferred += decision.status is DeliveryStatus.DEFERRED
            s.failed += decision.status is DeliveryStatus.FAILED
            s.unknown += decision.status is DeliveryStatus.UNKNOWN
            self.pause_reason = self.pause_reason or decision.pause
            if not self.pause_reason and self.errors_in_row >= self.settings.max_send_errors:
                self.pause_reason = (f"{self.errors_in_row} errors in a row (max_send_errors); "
                                     f"last: {result.code} {result.reply[:200]}")
        if time.monotonic() - self.last_progress >= self.PROGRESS_EVERY_S:
            self.last_progress = time.monotonic()
            self.report_progress()

    def report_progress(self) -> None:
        """Call the progress callback with nothing of ours uncommitted: it may write to the database."""
        if self.progress:
            with self.lock:
                self.writer.commit()
                self.progress(self.summary)

    def bounce(self, row: ledger.Row, result: Result, kind: BounceKind) -> None:
        """Record a bounce of *row*'s subscriber (a hard one suppresses the address everywhere)."""
        with self.lock:
            self.writer.commit()   # our pending writes first: SQLite has one writer
            with self.db.session() as session:
                suppressed = record_bounce(
                    session, self.settings, row.subscriber_id, kind, result_status(result) or str(result.code),
                    result.reply[:2000], send_id=self.send.id, actor="sending",
                    detail=f"{result.code} {result.reply[:200]}")
        self.summary.bounced += kind is BounceKind.HARD and suppressed   # not when the subscriber is gone

    def close(self, failing: bool = False) -> None:
        """Commit and release our claims; after a database failure, discard the connection instead."""
        if failing:
            self.conn.invalidate()   # never handed back to the pool: resetting it would fail again
            self.conn.close()
            return
        try:
            with self.lock:
                self.writer.commit()
            ledger.release(self.conn, self.send.id, self.me)
        finally:
            self.writer.close()
            self.conn.close()


def run_send(db: Database, settings: Settings, send_id: int, *, backend: Backend | None = None,
             progress: Progress | None = None, stop: threading.Event | None = None) -> SendSummary:
    """Send everything of *send_id* that is due now; resumable, never twice to one row.

    The send must be in status ``sending`` (see claim_send). Afterwards it is
    ``done`` when no row is left to try, ``paused`` (with the reason) on a
    policy error or too many errors, and still ``sending`` while deferred
    rows wait for their retry or when *stop* was set.
    """
    with db.session() as session:
        send = session.get(Send, send_id)
        if send is None:
            raise InputError(f"no send #{send_id}")
        if send.status is not SendStatus.SENDING:
            raise InputError(f"send #{send_id} is {send.status.value}, not sending")
    own_backend = backend is None
    backend = backend or load_backend(settings)
    require_public_links(settings.base_url, backend.name)
    ledger.freeze_audience(db, send_id)
    summary_unknown, _ = recovery.reap_stale(db, send_id)
    stop = stop or threading.Event()
    run = None
    heartbeat = None
    failing = False
    try:
        backend.open()   # idempotent: a backend that cannot work fails here, before any row moves
        heartbeat = liveness.Heartbeat(db, holder_id()).start()   # others on other hosts see us alive
        run = _Run(db, settings, send, backend, progress, stop)
        run.summary.unknown = summary_unknown
        run.stream()
        ledger.release(run.conn, send_id, run.me)
    except DeliveryError as exc:
        failing = True
        ledger.set_send_status(db, send_id, SendStatus.PAUSED, f"delivery stopped: {exc}",
                               only_from=SendStatus.SENDING)
        raise
    except Exception as exc:
        failing = True
        failure = database_error(exc)
        if failure is None:
            raise
        # every row is accounted for: outcomes committed before each next message, the one in
        # flight becomes unknown when the next run reaps this process's claims
        raise DatabaseError(f"{failure} (send #{send_id}); once the database works again, continue with "
                            f"`mailer send {send.issue_slug} --resume`") from None
    finally:
        steps = ([lambda: run.close(failing)] if run is not None else []) + \
            ([heartbeat.stop] if heartbeat is not None else []) + ([backend.close] if own_backend else [])
        _close_quietly(failing, *steps)
    return conclude(db, run.summary, run.pause_reason)


def _close_quietly(failing: bool, *steps: Callable[[], None]) -> None:
    """Run each closing step; while a failure is on its way out, a step's own error must not hide it."""
    for step in steps:
        try:
            step()
        except Exception:
            if not failing:
                raise
