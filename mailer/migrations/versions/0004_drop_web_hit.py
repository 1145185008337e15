"""drop web_hit: sign-up rate limits are counted in process memory, seeded from signup_intake

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 14:43:45
"""

from alembic import op
import sqlalchemy as sa
import mailer.models

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_web_hit_bucket_at', table_name='web_hit')
    op.drop_table('web_hit')


def downgrade() -> None:
    op.create_table(
        'web_hit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bucket', sa.String(length=80), nullable=False),
        sa.Column('at', mailer.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_web_hit')),
    )
    op.create_index('ix_web_hit_bucket_at', 'web_hit', ['bucket', 'at'], unique=False)
