"""The SMTP backend: parallel connections kept open across batches, per-recipient outcomes (STANDARDS E1).

`SMTPBackend` hands the messages of a batch to `smtp.connections` sessions
(mailer.backends.smtpconn), each taking the next message as soon as it is
free; what a reply means is mailer.backends.replies'. A connection that cannot
reconnect stops; the last one left reports the rest as temporary.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

from mailer import retry
from mailer.backends.base import Backend, BatchResult, OutgoingMessage, DeliveryOutcome, Result
from mailer.backends.smtpconn import Connection
from mailer.backends.smtpopen import ServerBusy
from mailer.config import Settings
from mailer.errors import DeliveryError


class SMTPBackend(Backend):
    """Sends over `smtp.connections` parallel sessions, kept open across batches (E1)."""

    name = "smtp"
    OPEN_RETRY_SECONDS = 1.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.connections = [Connection(settings) for _ in range(max(1, settings.smtp_connections))]
        self._pool: ThreadPoolExecutor | None = None
        self._report_lock = threading.Lock()

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
        A connection that cannot reconnect stops taking messages; the last one left reports
        each remaining message as temporary with the reason.
        """
        parallel = self._pool is not None and len(self.connections) > 1
        source = _Source(batch, len(self.connections) if parallel else 1)
        if not parallel:
            results = self._run(self.connections[0], source, on_result)
        else:
            futures = [self._pool.submit(self._run, conn, source, on_result) for conn in self.connections]
            results = [r for future in futures for r in future.result()]
        results.sort(key=lambda pair: pair[0])
        return BatchResult([result for _, result in results])

    def send_one(self, message: OutgoingMessage) -> Result:
        return self._run(self.connections[0], _Source([message], 1), None)[0][1]

    def _run(self, connection: Connection, source: "_Source",
             on_result: Callable[[Result], None] | None) -> list[tuple[int, Result]]:
        results: list[tuple[int, Result]] = []
        down = ""
        for index, message in source.take(lambda: down):
            if down:
                result = Result(message.key, DeliveryOutcome.TEMPORARY, 0, down)
            else:
                try:
                    result = connection.deliver(message)
                except DeliveryError as exc:   # cannot reconnect: others go on, the last one drains
                    down = str(exc)
                    source.went_down()
                    result = Result(message.key, DeliveryOutcome.TEMPORARY, 0, down)
                except Exception as exc:       # never let one message break the batch
                    connection.drop()
                    result = Result(message.key, DeliveryOutcome.TEMPORARY, 0, f"unexpected error: {exc!r}")
            if on_result is not None:
                with self._report_lock:
                    on_result(result)
            else:                              # a stream reports through on_result only: nothing piles up
                results.append((index, result))
        return results


class _Source:
    """The messages of one send() call, handed out one at a time to whichever connection is free."""

    def __init__(self, batch: Iterable[OutgoingMessage], live: int) -> None:
        self.items = enumerate(batch)
        self.lock = threading.Lock()
        self.live = live      # connections still able to send (changed under self.lock)

    def went_down(self) -> None:
        with self.lock:
            self.live -= 1

    def take(self, down: Callable[[], str]) -> Iterator[tuple[int, OutgoingMessage]]:
        """Next (index, message) until the batch is done; a down connection stops unless it is the last."""
        while True:
            with self.lock:
                if down() and self.live > 0:
                    return
                item = next(self.items, None)
            if item is None:
                return
            yield item
