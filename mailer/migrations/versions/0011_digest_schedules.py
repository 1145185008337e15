"""digest schedules: the minimum of reports a digest run needs

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-03 08:15:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0011'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schedule') as batch:
        batch.add_column(sa.Column('min_reports', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM schedule WHERE kind = 'digest'")
    with op.batch_alter_table('schedule') as batch:
        batch.drop_column('min_reports')
