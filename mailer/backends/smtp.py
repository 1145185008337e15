"""The SMTP backend: parallel connections kept open across batches, per-recipient outcomes (STANDARDS E1).

`SMTPBackend` hands the messages of a batch to `smtp.connections` sessions
(mailer.backends.smtpconn), each taking the next message as soon as it is
free; what a reply means is mailer.backends.replies'. A refused or busy
connection is reopened with backoff without charging its message; one that
stays down gives the message back to the others, and when none is left the
send stops with DeliveryError.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

from mailer import retry
from mailer.backends.base import Backend, BatchResult, OutgoingMessage, DeliveryOutcome, Result
from mailer.backends.smtpconn import Connection
from mailer.backends.smtpopen import ConnectionUnavailable, ServerBusy
from mailer.config import Settings
from mailer.errors import DeliveryError

log = logging.getLogger("mailer.smtp")


class SMTPBackend(Backend):
    """Sends over `smtp.connections` parallel sessions, kept open across batches (E1)."""

    name = "smtp"
    OPEN_RETRY_SECONDS = 1.0
    RECONNECT_BASE_SECONDS = 0.5      # then 1, 2, 4 ... up to RECONNECT_MAX_WAIT_SECONDS
    RECONNECT_MAX_WAIT_SECONDS = 30.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.connections = [Connection(settings) for _ in range(max(1, settings.smtp_connections))]
        self._pool: ThreadPoolExecutor | None = None
        self._report_lock = threading.Lock()
        self.down_reason = ""

    def open(self) -> None:
        """Connect the first session now, so a wrong host, password or certificate fails here.

        A 421 greeting (server busy) is retried twice, after OPEN_RETRY_SECONDS and twice that.
        """
        for attempt in range(3):
            if self.connections[0].smtp is not None:
                break
            try:
                self.connections[0].connect()
            except ServerBusy:
                if attempt == 2:
                    raise
                time.sleep(retry.backoff(self.OPEN_RETRY_SECONDS, attempt + 1).total_seconds())
        if len(self.connections) > 1 and self._pool is None:
            self._pool = ThreadPoolExecutor(len(self.connections), thread_name_prefix="smtp")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for connection in self.connections:
            connection.quit()

    def send(self, batch: Iterable[OutgoingMessage],
             on_result: Callable[[Result], None] | None = None) -> BatchResult:
        """Send *batch* over the connections; every message gets a Result (see Backend.send).

        Each connection takes the next message as soon as it is free (no connection waits for
        another), so *batch* may be a generator that prepares each message when it is taken.
        A connection that cannot reopen within `smtp.reconnect_seconds` gives its message back
        to the others and stops; when none is left, DeliveryError (the messages taken and not
        tried are the caller's to put back, uncharged).
        """
        parallel = self._pool is not None and len(self.connections) > 1
        source = _Source(batch)
        if not parallel:
            results = self._run(self.connections[0], source, on_result)
        else:
            futures = [self._pool.submit(self._run, conn, source, on_result) for conn in self.connections]
            results = [r for future in futures for r in future.result()]
        if source.returned:   # every connection went down with messages left: none of them was tried
            raise DeliveryError(f"{self.down_reason} (no connection for "
                                f"{self.settings.smtp_reconnect_seconds:g} s; smtp.reconnect_seconds)")
        results.sort(key=lambda pair: pair[0])
        return BatchResult([result for _, result in results])

    def send_one(self, message: OutgoingMessage) -> Result:
        return self.send([message]).results[0]

    def _run(self, connection: Connection, source: "_Source",
             on_result: Callable[[Result], None] | None) -> list[tuple[int, Result]]:
        results: list[tuple[int, Result]] = []
        for index, message in source.take():
            try:
                result = self._deliver(connection, message)
            except Exception as exc:       # never let one message break the batch
                connection.drop()
                result = Result(message.key, DeliveryOutcome.TEMPORARY, 0, f"unexpected error: {exc!r}")
            if result is None:             # this connection cannot reopen: another may carry the message
                source.give_back(index, message)
                return results
            if on_result is not None:
                with self._report_lock:
                    on_result(result)
            else:                          # a stream reports through on_result only: nothing piles up
                results.append((index, result))
        return results

    def _deliver(self, connection: Connection, message: OutgoingMessage) -> Result | None:
        """Deliver on *connection*, reopening it with backoff while that may help; None when it can't.

        A refused, reset or busy (421) connection is the connection's trouble, not the
        recipient's: the message waits, uncharged, for `smtp.reconnect_seconds` at most.
        A failure that waiting cannot mend (TLS, login) gives up at once.
        """
        deadline = time.monotonic() + self.settings.smtp_reconnect_seconds
        for attempt in itertools.count(1):
            try:
                return connection.deliver(message)
            except DeliveryError as exc:
                self.down_reason = str(exc)
                wait = min(retry.backoff(self.RECONNECT_BASE_SECONDS, attempt).total_seconds(),
                           self.RECONNECT_MAX_WAIT_SECONDS)
                if not isinstance(exc, ConnectionUnavailable) or time.monotonic() + wait > deadline:
                    return None
                log.warning("%s; reopening in %.1f s", exc, wait)
                time.sleep(wait)
        return None


class _Source:
    """The messages of one send() call, handed out one at a time to whichever connection is free."""

    def __init__(self, batch: Iterable[OutgoingMessage]) -> None:
        self.items = enumerate(batch)
        self.lock = threading.Lock()
        self.returned: deque[tuple[int, OutgoingMessage]] = deque()   # taken by a connection that went down

    def give_back(self, index: int, message: OutgoingMessage) -> None:
        with self.lock:
            self.returned.append((index, message))

    def take(self) -> Iterator[tuple[int, OutgoingMessage]]:
        """Next (index, message), a given-back one first, until the batch is done."""
        while True:
            with self.lock:
                item = self.returned.popleft() if self.returned else next(self.items, None)
            if item is None:
                return
            yield item
