"""submission: reports mailed to the submission address, each mail remembered once (`mailer intake`)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 23:30:00
"""

from alembic import op
import sqlalchemy as sa
import mailer.models

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

UTC = mailer.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'submission',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('status', sa.Enum('held', 'approved', 'rejected', 'refused', name='submissionstatus',
                                    native_enum=False, length=20), nullable=False),
        sa.Column('sender', sa.String(length=320), nullable=False),
        sa.Column('title', sa.String(length=300), nullable=False),
        sa.Column('received_at', UTC, nullable=False),
        sa.Column('digest', sa.Text(), nullable=False),
        sa.Column('folder', sa.String(length=100), nullable=False),
        sa.Column('details', sa.Text(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('decided_at', UTC, nullable=True),
        sa.Column('decided_by', sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_submission')),
        sa.UniqueConstraint('key', name=op.f('uq_submission_key')),
    )
    op.create_index('ix_submission_status_id', 'submission', ['status', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_submission_status_id', table_name='submission')
    op.drop_table('submission')
