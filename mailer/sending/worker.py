"""`mailer worker`: run every send that has rows due (new ones and deferred retries) until stopped.

Alongside, a thread applies the web sign-ups waiting in `signup_intake` and
sends their confirmation mails (`mailer.signups.runner.SignupRunner`, the same
work the web app's own thread does unless ``web.background_thread = false``),
and, when ``bounces.mailbox`` is set, another polls it every
``bounces.poll_minutes`` and applies its reports (mailer.people.bouncebox); when
``submissions.mailbox`` is set, a third files the reports mailed to it every
``submissions.poll_minutes`` (mailer.submissions.poll, held for an editor).

On PostgreSQL any number of workers, on one or several machines, share the
work: each claims batches of rows with ``FOR UPDATE SKIP LOCKED``. On SQLite
one worker only: it holds mailer.locking.worker_lock and a second one exits
with a clear message. May import the rest of sending, signups and the floor.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from mailer.backends import load_backend
from mailer.settingrules import require_public_links
from mailer.config import Settings
from mailer.db import Database
from mailer.errors import DeliveryError, InputError
from mailer.locking import holder_id, worker_lock
from mailer.sending import recovery
from mailer.sending.loop import run_send
from mailer.sending.summary import SendSummary

Log = Callable[[str], None]


@contextmanager
def sign_up_thread(db: Database, settings: Settings, backend_name: str | None, poll: float,
                   start: bool) -> Iterator[None]:
    """Apply web sign-ups and send their mails in a thread while the block runs (if *start*)."""
    from mailer.signups.runner import SignupRunner

    thread = SignupRunner(settings, db, interval=poll, backend_name=backend_name,
                          watch_intake=True) if start else None
    if thread is not None:
        thread.start()
    try:
        yield
    finally:
        if thread is not None:
            thread.stop()


def poll_bounces(db: Database, settings: Settings, log: Log) -> None:
    """Apply the new reports of `bounces.mailbox` once; a failure is one logged line, never fatal."""
    from mailer.errors import MailerError
    from mailer.people.bouncebox import collect_reports, settings_mailbox

    try:
        tally = collect_reports(db, settings, settings_mailbox(settings))
    except MailerError as exc:
        log(f"bounce mailbox: {exc}")
        return
    except Exception as exc:   # noqa: BLE001  (the thread must live on: say it, retry next time)
        log(f"bounce mailbox: {type(exc).__name__}: {exc}")
        return
    if tally.reports or tally.not_reports:
        log(f"bounce mailbox: {tally.line()}")


@contextmanager
def bounce_thread(db: Database, settings: Settings, stop: threading.Event, log: Log,
                  start: bool) -> Iterator[None]:
    """Poll the bounce mailbox every `bounces.poll_minutes` while the block runs (if *start* and one is set)."""
    done = threading.Event()

    def loop() -> None:
        while not (stop.is_set() or done.is_set()):
            poll_bounces(db, settings, log)
            done.wait(settings.bounces_poll_minutes * 60)

    thread = threading.Thread(target=loop, name="bounce-mailbox", daemon=True) if (
        start and settings.bounces_mailbox) else None
    if thread is not None:
        thread.start()
    try:
        yield
    finally:
        done.set()
        if thread is not None:
            thread.join()


def poll_intake(db: Database, settings: Settings, log: Log, backend_name: str | None = None) -> None:
    """File the new reports of `submissions.mailbox` once; a failure is one logged line, never fatal."""
    from mailer.errors import MailerError
    from mailer.submissions.poll import intake

    try:
        tally = intake(db, settings, log=log, backend_name=backend_name)
    except MailerError as exc:
        log(f"submission mailbox: {exc}")
        return
    except Exception as exc:   # noqa: BLE001  (the thread must live on: say it, retry next time)
        log(f"submission mailbox: {type(exc).__name__}: {exc}")
        return
    if tally.filed or tally.refused:
        log(f"submission mailbox: {tally.line()}")


@contextmanager
def intake_thread(db: Database, settings: Settings, stop: threading.Event, log: Log, start: bool,
                  backend_name: str | None = None) -> Iterator[None]:
    """Poll the submission mailbox every `submissions.poll_minutes` while the block runs (if *start* and set)."""
    done = threading.Event()

    def loop() -> None:
        while not (stop.is_set() or done.is_set()):
            poll_intake(db, settings, log, backend_name)
            done.wait(settings.submissions_poll_minutes * 60)

    thread = threading.Thread(target=loop, name="submission-mailbox", daemon=True) if (
        start and settings.submissions_mailbox) else None
    if thread is not None:
        thread.start()
    try:
        yield
    finally:
        done.set()
        if thread is not None:
            thread.join()


def run_worker(db: Database, settings: Settings, *, backend_name: str | None = None, poll: float = 5.0,
               until_idle: bool = False, stop: threading.Event | None = None,
               log: Log = lambda line: None) -> list[SendSummary]:
    """Send what is due, sleep *poll* seconds, repeat; return when *stop* is set (or idle, if asked).

    Web sign-ups, the bounce and the submission mailboxes are handled by threads meanwhile, or, with *until_idle*,
    once at the end.
    """
    stop = stop or threading.Event()
    done: list[SendSummary] = []
    require_public_links(settings.base_url, load_backend(settings, backend_name).name)
    with worker_lock(db), sign_up_thread(db, settings, backend_name, poll, start=not until_idle), \
            bounce_thread(db, settings, stop, log, start=not until_idle), \
            intake_thread(db, settings, stop, log, not until_idle, backend_name):
        log(f"worker {holder_id()} started on {db.dialect}")
        while not stop.is_set():
            ids = recovery.due_sends(db)
            if ids:
                backend = load_backend(settings, backend_name)
                try:
                    backend.open()
                    for send_id in ids:
                        if stop.is_set():
                            break
                        try:
                            summary = run_send(db, settings, send_id, backend=backend, stop=stop)
                        except InputError:       # another worker finished or paused it meanwhile
                            continue
                        done.append(summary)
                        log(f"send #{send_id}: {summary.sent} sent, {summary.deferred} deferred, "
                            f"{summary.failed} failed, {summary.skipped} skipped; now {summary.status.value}"
                            + (f" ({summary.reason})" if summary.reason else ""))
                except DeliveryError as exc:
                    log(f"delivery stopped: {exc}")
                finally:
                    backend.close()
                continue
            if until_idle:
                from mailer.signups.runner import drain

                applied, mails = drain(settings, db, backend_name)
                if applied or mails.sent or mails.retried or mails.failed:
                    log(f"sign-ups: {applied} applied; confirmation mails: {mails.sent} sent, "
                        f"{mails.retried} to retry, {mails.failed} failed")
                if settings.bounces_mailbox:
                    poll_bounces(db, settings, log)
                if settings.submissions_mailbox:
                    poll_intake(db, settings, log, backend_name)
                break
            stop.wait(poll)
        log("worker stopped")
    return done
