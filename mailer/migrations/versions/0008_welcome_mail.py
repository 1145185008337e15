"""welcome mail: a list's welcome issue, and when each subscription was welcomed

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-03 07:20:00
"""

from alembic import op
import sqlalchemy as sa
import mailer.models

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mailing_list') as batch:
        batch.add_column(sa.Column('welcome_issue', sa.String(length=500), nullable=False, server_default=''))
    with op.batch_alter_table('subscription') as batch:
        batch.add_column(sa.Column('welcomed_at', mailer.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM queued_mail WHERE kind = 'welcome'")
    with op.batch_alter_table('subscription') as batch:
        batch.drop_column('welcomed_at')
    with op.batch_alter_table('mailing_list') as batch:
        batch.drop_column('welcome_issue')
