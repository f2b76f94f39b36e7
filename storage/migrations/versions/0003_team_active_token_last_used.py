"""admin screen: inactive teams, the last use of a token

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (SQLite has it for a column with a constant default), not a batch copy of the
    # table: a SQLite connection's temporary routing trigger (storage/sqlite_writes.py) names `teams`,
    # and SQLite refuses to drop and rename a table a trigger names.
    # Every existing team stays active; an inactive one takes no customers.
    op.add_column('teams', sa.Column('active', sa.Boolean(), nullable=False, server_default=sa.true()))
    # NULL: not used since this column exists.
    op.add_column('api_tokens', sa.Column('last_used_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_column('last_used_at')
    with op.batch_alter_table('teams') as batch:
        batch.drop_column('active')
