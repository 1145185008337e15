"""Claiming shared rows for one worker at a time, with a stale timeout: the one way to do it.

A table that several workers take rows from (sign-up intake, confirmation
mails, deliveries) describes its claim once, as a `Claim`: which rows are
free, which are taken, the column that dates the take, the values that mark a
row taken, and how long a take lasts before anyone may take the row over.

`Claim.claimable()` is the rule as one SQL expression ("free, or taken before
now - stale") and `Claim.take()` the compare-and-set UPDATE that claims rows:
both are Core elements that other statements can reuse (with their own
SELECT ... FOR UPDATE SKIP LOCKED, say). `Claim.claim()` runs the usual pair:
pick the oldest claimable ids, take those still claimable, return the ids this
caller got. May import the floor only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Mapping

from sqlalchemy import ColumnElement, Connection, Table, Update, and_, bindparam, or_, select, update

from mailer.models import utcnow

# bind parameters of claimable() and take(); params() fills them
NOW, STALE_BEFORE, IDS = "claim_now", "claim_stale_before", "claim_ids"


@dataclass(frozen=True)
class Claim:
    """How rows of *table* are claimed; see the module docstring."""

    table: Table
    free: ColumnElement[bool]          # waiting to be claimed
    taken: ColumnElement[bool]         # claimed by someone
    taken_at: Any                      # the column dating the claim
    stale: timedelta                   # a claim older than this may be taken over
    mark: Mapping[str, Any] = field(default_factory=dict)   # values that mark a row taken

    def claimable(self, stale_before: Any = None) -> ColumnElement[bool]:
        """Free, or taken before *stale_before* (default: the bind parameter params() fills)."""
        if stale_before is None:
            stale_before = bindparam(STALE_BEFORE, type_=self.taken_at.type)
        return or_(self.free, and_(self.taken, self.taken_at < stale_before))

    @cached_property
    def _take(self) -> Update:
        ids = self.table.c.id
        return (update(self.table).where(ids.in_(bindparam(IDS, expanding=True)), self.claimable())
                .values(**self.mark, **{self.taken_at.key: bindparam(NOW, type_=self.taken_at.type)})
                .returning(ids))

    def take(self) -> Update:
        """UPDATE SET <mark>, taken_at = now WHERE id IN ids AND claimable, RETURNING id.

        The compare-and-set: of the rows asked for, it takes only those nobody
        took meanwhile. Parameters: params(now) and ``claim_ids``.
        """
        return self._take

    def params(self, now: datetime) -> dict[str, Any]:
        return {NOW: now, STALE_BEFORE: now - self.stale}

    def claim(self, conn: Connection, limit: int, *where: ColumnElement[bool], now: datetime | None = None,
              **values: Any) -> list[int]:
        """Claim up to *limit* claimable rows (also matching *where*), oldest id first.

        *values* are set on the rows taken besides the mark. Returns the ids
        this call took, in order; run it inside the caller's transaction.
        """
        params = self.params(now or utcnow())
        ids = self.table.c.id
        found = list(conn.scalars(select(ids).where(self.claimable(), *where).order_by(ids).limit(limit),
                                  params))
        if not found:
            return []
        statement = self.take().values(**values) if values else self.take()
        return sorted(conn.scalars(statement, {**params, IDS: found}))
