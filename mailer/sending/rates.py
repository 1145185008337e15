"""Sending rate limits: token buckets per second, per hour and per recipient domain (STANDARDS E6).

A bucket with capacity 1 paces messages evenly (one every 1/rate seconds).
On top of that, the per-second limits keep a window of the last ``rate``
completion times, so that even when the server receives messages later than
we released them, no second of wall-clock time at the server ever holds more
than ``rate`` messages. A rate of 0 means unlimited.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Callable

from mailer.config import Settings

Clock = Callable[[], float]
# float rounding slack: a wait shorter than this is no wait (else a loop could sleep 1e-17 forever)
EPSILON = 1e-6


class TokenBucket:
    """`capacity` tokens, refilled at `rate` per second; `delay()` says how long to wait for one."""

    def __init__(self, rate: float, capacity: float = 1.0, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, capacity)
        self.clock = clock
        self.tokens = self.capacity
        self.updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def delay(self) -> float:
        """Seconds until a token is available (0 when one is now)."""
        self._refill()
        return 0.0 if self.tokens >= 1.0 - EPSILON else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self._refill()
        self.tokens -= 1.0


class Window:
    """At most `limit` completions in any `span` seconds: wait until the oldest has aged out."""

    def __init__(self, limit: float, span: float = 1.0, clock: Clock = time.monotonic) -> None:
        self.limit = max(1, math.floor(limit))
        self.span = span
        self.clock = clock
        self.done: deque[float] = deque(maxlen=self.limit)
        self.pending = 0

    def delay(self) -> float:
        if len(self.done) + self.pending < self.limit:
            return 0.0
        if self.pending >= self.limit:
            return self.span  # only messages still in flight fill the window: wait for them
        oldest = self.done[len(self.done) + self.pending - self.limit]
        return max(0.0, oldest + self.span - self.clock())

    def take(self) -> None:
        self.pending += 1

    def complete(self) -> None:
        self.pending = max(0, self.pending - 1)
        self.done.append(self.clock())


class _Gate:
    """One limit: a pacing bucket plus, for per-second limits, a completion window."""

    def __init__(self, rate: float, per: float, clock: Clock) -> None:
        self.bucket = TokenBucket(rate / per, 1.0, clock)
        self.window = Window(rate, per, clock) if per <= 1.0 else None

    def delay(self) -> float:
        wait = self.bucket.delay()
        if self.window is not None:
            wait = max(wait, self.window.delay())
        return wait

    def take(self) -> None:
        self.bucket.take()
        if self.window is not None:
            self.window.take()

    def complete(self) -> None:
        if self.window is not None:
            self.window.complete()


class RateLimiter:
    """The configured limits; `acquire(domain)` blocks until a message may go, `complete` after it went."""

    def __init__(self, per_second: float = 0.0, per_hour: float = 0.0, per_domain_per_second: float = 0.0,
                 clock: Clock = time.monotonic, sleep: Callable[[float], object] = time.sleep) -> None:
        self.clock, self.sleep = clock, sleep
        self.gates: list[_Gate] = []
        if per_second > 0:
            self.gates.append(_Gate(per_second, 1.0, clock))
        if per_hour > 0:
            self.gates.append(_Gate(per_hour, 3600.0, clock))
        self.per_domain = per_domain_per_second
        self.domains: dict[str, _Gate] = {}
        self.lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> "RateLimiter":
        return cls(settings.rate_per_second, settings.rate_per_hour, settings.rate_per_domain_per_second)

    @property
    def max_parallel(self) -> int:
        """How many messages may be acquired before any completes without breaking a window."""
        limits = [g.window.limit for g in self.gates if g.window is not None]
        if self.per_domain > 0:
            limits.append(max(1, math.floor(self.per_domain)))
        return min(limits) if limits else 1_000_000

    @property
    def unlimited(self) -> bool:
        return not self.gates and self.per_domain <= 0

    def _gates_for(self, domain: str) -> list[_Gate]:
        if self.per_domain <= 0:
            return self.gates
        gate = self.domains.get(domain)
        if gate is None:
            gate = self.domains[domain] = _Gate(self.per_domain, 1.0, self.clock)
        return [*self.gates, gate]

    def acquire(self, domain: str = "", stop: threading.Event | None = None) -> bool:
        """Wait until every limit allows one more message; False when *stop* was set meanwhile."""
        if self.unlimited:
            return True
        gates = self._gates_for(domain.lower())
        while True:
            with self.lock:
                wait = max(g.delay() for g in gates)
                if wait <= EPSILON:
                    for g in gates:
                        g.take()
                    return True
            if stop is not None:
                if stop.wait(min(wait, 0.5)):
                    return False
            else:
                self.sleep(wait)

    def complete(self, domain: str = "") -> None:
        """Record that a message acquired for *domain* has left (accepted or not)."""
        if self.unlimited:
            return
        with self.lock:
            for g in self._gates_for(domain.lower()):
                g.complete()
