"""The one retry schedule: exponential backoff for anything retried later (STANDARDS E4)."""

from __future__ import annotations

from datetime import timedelta


def backoff(base_seconds: float, attempts: int) -> timedelta:
    """Delay before attempt ``attempts + 1``: ``base * 2^(attempts - 1)``, the exponent capped at 20."""
    return timedelta(seconds=base_seconds * 2 ** min(max(attempts - 1, 0), 20))
