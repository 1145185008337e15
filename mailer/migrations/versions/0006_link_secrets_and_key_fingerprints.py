"""link secrets and key fingerprints: links that survive key loss; the database knows its keys

Every subscriber gets a random link secret (existing ones are backfilled here, in batches, from
the operating system's random source); erased_link keeps an erased person's link secret under their
random uid only; key_fingerprint holds keyed hashes of the keys in force.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 07:10:00
"""

import os

from alembic import op
import sqlalchemy as sa
import mailer.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BATCH = 10_000


def upgrade() -> None:
    op.create_table(
        'key_fingerprint',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('salt', sa.String(length=64), nullable=False),
        sa.Column('fingerprints', sa.Text(), nullable=False),
        sa.Column('updated_at', mailer.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_key_fingerprint')),
    )
    op.create_table(
        'erased_link',
        sa.Column('uid', sa.String(length=32), nullable=False),
        sa.Column('link_secret', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('uid', name=op.f('pk_erased_link')),
    )
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_secret', sa.String(length=32), nullable=True))
    conn = op.get_bind()
    subscriber = sa.table('subscriber', sa.column('id', sa.Integer), sa.column('link_secret', sa.String))
    update = (sa.update(subscriber).where(subscriber.c.id == sa.bindparam('row_id'))
              .values(link_secret=sa.bindparam('secret')))
    after = 0
    while True:
        ids = conn.execute(sa.select(subscriber.c.id).where(subscriber.c.id > after)
                           .order_by(subscriber.c.id).limit(BATCH)).scalars().all()
        if not ids:
            break
        conn.execute(update, [{'row_id': i, 'secret': os.urandom(16).hex()} for i in ids])
        after = ids[-1]
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.alter_column('link_secret', existing_type=sa.String(length=32), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('subscriber', schema=None) as batch_op:
        batch_op.drop_column('link_secret')
    op.drop_table('erased_link')
    op.drop_table('key_fingerprint')
