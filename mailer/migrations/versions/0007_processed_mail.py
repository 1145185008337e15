"""processed_mail: mails read from the bounce mailbox, remembered by Message-ID so each is processed once;
an index of deliveries by subscriber (soft bounces on a subscriber's last issues in a row suppress)

Revision ID: 0007
Revises: 0008
Create Date: 2026-12-03 07:15:00
"""

from alembic import op
import sqlalchemy as sa
import mailer.models

revision = '0007'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'processed_mail',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('source', sa.String(length=255), nullable=False),
        sa.Column('at', mailer.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_processed_mail')),
        sa.UniqueConstraint('key', name=op.f('uq_processed_mail_key')),
    )
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_subscriber_send', ['subscriber_id', 'send_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('delivery', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_subscriber_send')
    op.drop_table('processed_mail')
