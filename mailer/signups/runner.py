"""The sign-up runner: applies received sign-ups, then sends the confirmation mails they queued.

One pass applies a short batch of intake rows (`mailer.signups.intake`) and
sends what is due (`mailer.signups.confirmations`). `SignupRunner` repeats
passes in a thread: the web app's own (setting ``web.background_thread``) or
`mailer worker`'s; `drain` runs passes until nothing is left (``mailer worker
--until-idle``).
"""

from __future__ import annotations

import logging
import threading
import time

from mailer.config import Settings
from mailer.db import Database
from mailer.signups.confirmations import QueueReport, process_queue
from mailer.signups.intake import newest_intake, process_intake, prune_intake

log = logging.getLogger(__name__)
INTAKE_BATCH = 5     # short bursts: requests share the interpreter (and the SQLite write gate) with it
PRUNE_EVERY_S = 600.0


def drain(settings: Settings, db: Database, backend_name: str | None = None) -> tuple[int, QueueReport]:
    """Apply every sign-up waiting and send every mail due; returns (sign-ups applied, mail counts)."""
    applied, total = 0, QueueReport()
    while True:
        intake = process_intake(settings, db, limit=INTAKE_BATCH)
        sent = process_queue(settings, db, backend_name=backend_name)
        applied += intake.applied + intake.failed
        total.add(sent)
        if intake.applied + intake.failed + sent.total == 0:
            return applied, total


class SignupRunner(threading.Thread):
    """Applies received sign-ups, then sends due mail: every *interval* seconds, or at once when woken.

    It works in batches. While sign-ups keep arriving it pauses between
    batches (*duty* is the share of time it may then work), so the requests,
    which share the interpreter with it, keep short answer times; once the
    burst is over it drains the backlog at full speed.
    """

    def __init__(self, settings: Settings, db: Database, interval: float = 5.0, duty: float = 0.2,
                 backend_name: str | None = None, watch_intake: bool = False) -> None:
        super().__init__(name="mailer-signups", daemon=True)
        self.settings, self.db, self.interval, self.duty = settings, db, interval, duty
        self.backend_name = backend_name
        # in another process than the web app (`mailer worker`): nobody calls wake(), so
        # sign-ups arriving are seen as new rows in signup_intake
        self.watch_intake, self._newest = watch_intake, 0
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._pruned = 0.0
        self._arrivals = 0          # sign-ups since the thread last looked (a racy count is fine)

    def wake(self) -> None:
        """A sign-up arrived: run a pass now."""
        self._arrivals += 1
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._halt.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        while not self._halt.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self._pass()
            except Exception:  # keep the thread alive; the rows stay queued
                log.exception("sign-up runner: pass failed")

    def _pass(self) -> None:
        started, self._arrivals = time.monotonic(), 0
        intake = process_intake(self.settings, self.db, limit=INTAKE_BATCH)
        more = intake.applied + intake.failed >= INTAKE_BATCH
        process_queue(self.settings, self.db, backend_name=self.backend_name)
        if started - self._pruned > PRUNE_EVERY_S:
            prune_intake(self.db)
            self._pruned = started
        if not more:
            return
        # a backlog: go on without waiting to be woken, pausing while requests come in
        if self.watch_intake:
            newest = newest_intake(self.db)
            self._arrivals, self._newest = int(newest > self._newest), newest
        if self._arrivals:
            busy = time.monotonic() - started
            self._halt.wait(busy * (1 - self.duty) / self.duty)
        self._wake.set()
