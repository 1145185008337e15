"""desk second factor: desk_user TOTP columns, desk_challenge (the login's code step), desk_setting

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 20:10:00
"""

from alembic import op
import sqlalchemy as sa
import mailer.models

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

UTC = mailer.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('desk_user') as batch:
        batch.add_column(sa.Column('totp_secret', sa.Text(), nullable=False, server_default=''))
        batch.add_column(sa.Column('totp_pending', sa.Text(), nullable=False, server_default=''))
        batch.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    op.create_table(
        'desk_challenge',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('id_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('expires_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['desk_user.id'], name=op.f('fk_desk_challenge_user_id_desk_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_challenge')),
        sa.UniqueConstraint('id_hash', name=op.f('uq_desk_challenge_id_hash')),
    )
    op.create_index(op.f('ix_desk_challenge_user_id'), 'desk_challenge', ['user_id'], unique=False)
    op.create_table(
        'desk_setting',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('value', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_desk_setting')),
    )


def downgrade() -> None:
    op.drop_table('desk_setting')
    op.drop_index(op.f('ix_desk_challenge_user_id'), table_name='desk_challenge')
    op.drop_table('desk_challenge')
    with op.batch_alter_table('desk_user') as batch:
        batch.drop_column('totp_last_step')
        batch.drop_column('totp_pending')
        batch.drop_column('totp_secret')
