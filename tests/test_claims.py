"""The one claim helper (mailer.claims): compare-and-set, oldest first, stale claims taken over."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select

from mailer.claims import IDS
from mailer.db import Database
from mailer.models import ConsentSource, IntakeStatus, MailingList, SignupIntake, utcnow
from mailer.signups.intake import CLAIM

T = SignupIntake.__table__


def _rows(db: Database, n: int) -> list[int]:
    with db.session() as session:
        mlist = MailingList(slug="news", name="News")
        session.add(mlist)
        session.flush()
        list_id = mlist.id
    with db.engine.begin() as conn:
        return [conn.execute(insert(T).values(list_id=list_id, source=ConsentSource.WEB, status=IntakeStatus.NEW)
                             .returning(T.c.id)).scalar_one() for _ in range(n)]


def test_claims_oldest_first_once_each_and_takes_over_stale_claims(db: Database) -> None:
    ids = _rows(db, 3)
    now = utcnow()
    with db.engine.begin() as conn:
        assert CLAIM.claim(conn, 2, now=now) == ids[:2]
        assert CLAIM.claim(conn, 5, now=now) == ids[2:]
        assert CLAIM.claim(conn, 5, now=now + CLAIM.stale - timedelta(seconds=1)) == []
        # the compare-and-set alone: rows someone holds are not taken
        assert list(conn.scalars(CLAIM.take(), {**CLAIM.params(now), IDS: ids})) == []
        later = now + CLAIM.stale + timedelta(seconds=1)
        assert CLAIM.claim(conn, 5, now=later) == ids
        assert set(conn.scalars(select(T.c.status))) == {IntakeStatus.CLAIMED}
        assert set(conn.scalars(select(T.c.claimed_at))) == {later}


def test_claimable_is_a_reusable_sql_expression(db: Database) -> None:
    ids = _rows(db, 2)
    now = utcnow()
    with db.engine.begin() as conn:
        CLAIM.claim(conn, 1, now=now)
        free = select(T.c.id).where(CLAIM.claimable(now - CLAIM.stale)).order_by(T.c.id)
        assert list(conn.scalars(free)) == ids[1:]
