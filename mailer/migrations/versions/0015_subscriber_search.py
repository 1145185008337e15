"""subscriber search: prefix indexes on the address key and the lower-cased name (the desk's search)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 23:30:00
"""

from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute('CREATE INDEX ix_subscriber_name_prefix ON subscriber ((lower(name) COLLATE "C"))')
        op.execute('CREATE INDEX ix_subscriber_email_key_prefix ON subscriber ((lower(email_key) COLLATE "C"))')
    else:    # binary order already; the unique index on email_key serves the address
        # (email_key is case-folded: lower() leaves it as it is, and serves as an expression index)
        op.execute("CREATE INDEX ix_subscriber_name_prefix ON subscriber (lower(name))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_subscriber_email_key_prefix")
    op.execute("DROP INDEX ix_subscriber_name_prefix")
