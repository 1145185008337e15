"""the editor's desk: desk_user, desk_token, desk_session, desk_audit

Revision ID: 0010
Revises: 0011
Create Date: 2026-12-03 08:20:00
"""

from alembic import op
import sqlalchemy as sa
import mailer.models

revision = '0010'
down_revision = '0011'
branch_labels = None
depends_on = None

UTC = mailer.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'desk_user',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('email_key', sa.String(length=320), nullable=False),
        sa.Column('role', sa.String(length=10), nullable=False),
        sa.Column('password_hash', sa.Text(), nullable=False),
        sa.Column('disabled', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('password_at', UTC, nullable=True),
        sa.Column('last_login_at', UTC, nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_user')),
        sa.UniqueConstraint('email_key', name=op.f('uq_desk_user_email_key')),
    )
    op.create_table(
        'desk_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=20), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('expires_at', UTC, nullable=False),
        sa.Column('used_at', UTC, nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['desk_user.id'], name=op.f('fk_desk_token_user_id_desk_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_token')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_desk_token_token_hash')),
    )
    op.create_index(op.f('ix_desk_token_user_id'), 'desk_token', ['user_id'], unique=False)
    op.create_table(
        'desk_session',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('id_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('last_seen', UTC, nullable=False),
        sa.Column('expires_at', UTC, nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['desk_user.id'], name=op.f('fk_desk_session_user_id_desk_user'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_session')),
        sa.UniqueConstraint('id_hash', name=op.f('uq_desk_session_id_hash')),
    )
    op.create_index(op.f('ix_desk_session_user_id'), 'desk_session', ['user_id'], unique=False)
    op.create_table(
        'desk_audit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', UTC, nullable=False),
        sa.Column('actor', sa.String(length=320), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('target', sa.String(length=320), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_audit')),
    )
    op.create_index('ix_desk_audit_action_at', 'desk_audit', ['action', 'at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_desk_audit_action_at', table_name='desk_audit')
    op.drop_table('desk_audit')
    op.drop_index(op.f('ix_desk_session_user_id'), table_name='desk_session')
    op.drop_table('desk_session')
    op.drop_index(op.f('ix_desk_token_user_id'), table_name='desk_token')
    op.drop_table('desk_token')
    op.drop_table('desk_user')
