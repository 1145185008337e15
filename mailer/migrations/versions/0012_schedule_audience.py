"""schedule audience: a recurring or digest schedule's tags, segment and exclusions

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-03 17:40:00
"""

from alembic import op
import sqlalchemy as sa

revision = '0012'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('schedule') as batch:
        batch.add_column(sa.Column('audience', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('schedule') as batch:
        batch.drop_column('audience')
