"""hardening: token expiry, run ownership

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_tokens') as batch:
        # A token past its expiry authenticates nothing; NULL never expires.
        batch.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('evaluation_runs') as batch:
        # The process executing a running run, and when it last said so: a server starting up
        # marks runs whose owner has gone silent as interrupted.
        batch.add_column(sa.Column('owner', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('heartbeat_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('customers') as batch:
        # Raised by every routing write; an apply leaves customers re-routed after its snapshot alone.
        batch.add_column(sa.Column('routing_version', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('routing_version')
    with op.batch_alter_table('evaluation_runs') as batch:
        batch.drop_column('heartbeat_at')
        batch.drop_column('owner')
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_column('expires_at')
