"""send_list: each send's claim on its lists, unique per (issue, list, occurrence, generation)

The database itself refuses a second campaign of an issue to a list. Existing
sends are backfilled: the sends that went out (sending, paused, done) hold
generations 0, 1, 2... of their (issue, list) in id order; a pending one
(draft, scheduled) holds the next free claim only when nothing went out yet,
else it is recorded released, so a plan made after a hand send (which
`mailer schedule` used to accept) is refused when it fires; cancelled, failed
and missed sends are recorded released.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 07:10:00
"""

from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa
import mailer.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

WENT_OUT = ("sending", "paused", "done")
PENDING = ("draft", "scheduled")


def upgrade() -> None:
    op.create_table(
        'send_list',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('send_id', sa.Integer(), nullable=False),
        sa.Column('issue_slug', sa.String(length=200), nullable=False),
        sa.Column('list_id', sa.Integer(), nullable=False),
        sa.Column('occurrence', sa.String(length=40), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('held', sa.Boolean(), nullable=True),
        sa.Column('claimed_at', mailer.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['list_id'], ['mailing_list.id'], name=op.f('fk_send_list_list_id_mailing_list'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['send_id'], ['send.id'], name=op.f('fk_send_list_send_id_send'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_send_list')),
        sa.UniqueConstraint('issue_slug', 'list_id', 'occurrence', 'generation', 'held', name='uq_send_list_claim'),
    )
    op.create_index(op.f('ix_send_list_send_id'), 'send_list', ['send_id'], unique=False)
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    """One claim row per (existing send, list), as described in the module docstring."""
    send = sa.table('send', sa.column('id', sa.Integer), sa.column('issue_slug', sa.String),
                    sa.column('list_slugs', sa.JSON), sa.column('status', sa.String))
    mailing_list = sa.table('mailing_list', sa.column('id', sa.Integer), sa.column('slug', sa.String))
    send_list = sa.table('send_list', sa.column('send_id', sa.Integer), sa.column('issue_slug', sa.String),
                         sa.column('list_id', sa.Integer), sa.column('occurrence', sa.String),
                         sa.column('generation', sa.Integer), sa.column('held', sa.Boolean),
                         sa.column('claimed_at', mailer.models.UTCDateTime(timezone=True)))
    list_ids = dict(conn.execute(sa.select(mailing_list.c.slug, mailing_list.c.id)).all())
    sends = conn.execute(sa.select(send.c.id, send.c.issue_slug, send.c.list_slugs, send.c.status)
                         .order_by(send.c.id)).all()
    now = datetime.now(timezone.utc)
    held: dict[tuple[str, int], int] = {}          # (issue, list) -> generations held so far
    rows = []
    for phase in (WENT_OUT, PENDING):
        for send_id, slug, list_slugs, status in sends:
            if status not in phase:
                continue
            for list_id in _ids(list_slugs, list_ids):
                key = (slug, list_id)
                if phase is WENT_OUT or key not in held:
                    rows.append(_row(send_id, slug, list_id, held.get(key, 0), True, now))
                    held[key] = held.get(key, 0) + 1
                else:                              # a pending second claim: released, refused if it fires
                    rows.append(_row(send_id, slug, list_id, 0, None, now))
    for send_id, slug, list_slugs, status in sends:
        if status not in WENT_OUT + PENDING:       # cancelled, failed, missed: released
            rows.extend(_row(send_id, slug, list_id, 0, None, now) for list_id in _ids(list_slugs, list_ids))
    if rows:
        conn.execute(send_list.insert(), rows)


def _ids(list_slugs: list[str] | None, list_ids: dict[str, int]) -> list[int]:
    """The ids of a send's lists that still exist."""
    return [list_ids[s] for s in dict.fromkeys(list_slugs or []) if s in list_ids]


def _row(send_id: int, slug: str, list_id: int, generation: int, held: bool | None, now: datetime) -> dict:
    return {"send_id": send_id, "issue_slug": slug, "list_id": list_id, "occurrence": "",
            "generation": generation, "held": held, "claimed_at": now}


def downgrade() -> None:
    op.drop_index(op.f('ix_send_list_send_id'), table_name='send_list')
    op.drop_table('send_list')
