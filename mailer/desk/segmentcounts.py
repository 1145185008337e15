"""How many subscribers each saved segment selects, as the desk's segment pages show it.

Counting a segment reads every subscriber (an expression can test anything about them: 20-100 ms
at 100,000 subscribers, bench/desk_bench.py), so the pages count each expression at most once a
minute and say so; *Try it* and every change count afresh (mailer.people.tagging).
"""

from __future__ import annotations

import threading
import time

from mailer.db import Database
from mailer.people import tagging

TTL_S = 60.0
_cache: dict[tuple[str, str, int], tuple[float, int, list[str]]] = {}
_lock = threading.Lock()


def counted(db: Database, expression: str, sample: int = 0) -> tuple[int, list[str]]:
    """The count (and the first *sample* addresses) of *expression*, at most TTL_S old."""
    key = (str(db.engine.url), expression, sample)
    now = time.monotonic()
    with _lock:
        found = _cache.get(key)
    if found is not None and now - found[0] < TTL_S:
        return found[1], found[2]
    count = tagging.count_of(db, expression)
    addresses = tagging.sample_of(db, expression, sample) if sample else []
    with _lock:
        if len(_cache) > 500:
            _cache.clear()
        _cache[key] = (now, count, addresses)
    return count, addresses


def forget(db: Database) -> None:
    """Count afresh from now on (a segment or a tag changed on the desk)."""
    url = str(db.engine.url)
    with _lock:
        for key in [k for k in _cache if k[0] == url]:
            del _cache[key]


def views(db: Database) -> list[tagging.SegmentView]:
    """Every saved segment with its count (at most TTL_S old)."""
    return [tagging.SegmentView(name, expression, counted(db, expression)[0])
            for name, expression in tagging.saved_segments(db)]
