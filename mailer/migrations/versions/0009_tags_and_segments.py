"""tags and segments: subscriber_tag, segment, and the audience filter of each send

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-03 07:45:00
"""

from alembic import op
import sqlalchemy as sa
import mailer.models

revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'subscriber_tag',
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('tag', sa.String(length=64), nullable=False),
        sa.Column('created_at', mailer.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscriber.id'],
                                name=op.f('fk_subscriber_tag_subscriber_id_subscriber'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('subscriber_id', 'tag', name=op.f('pk_subscriber_tag')),
    )
    op.create_index(op.f('ix_subscriber_tag_tag'), 'subscriber_tag', ['tag'], unique=False)
    op.create_table(
        'segment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('expression', sa.Text(), nullable=False),
        sa.Column('created_at', mailer.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_segment')),
        sa.UniqueConstraint('name', name=op.f('uq_segment_name')),
    )
    with op.batch_alter_table('send') as batch:
        batch.add_column(sa.Column('audience', sa.JSON(), nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('send') as batch:
        batch.drop_column('audience')
    op.drop_table('segment')
    op.drop_index(op.f('ix_subscriber_tag_tag'), table_name='subscriber_tag')
    op.drop_table('subscriber_tag')
