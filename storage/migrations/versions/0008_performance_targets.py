"""performance: per-month targets, indexes for the figures of a period

Revision ID: 0008
Revises: 0007

`performance_targets` holds a revenue target for one month of one employee or one team
(docs/performance.md, "Targets"); without a row for a month the owner's monthly_target
applies.  Two indexes serve the figures of a period: a customer's purchases in a time
window (retention) and the interactions of a period.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'performance_targets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('employee_id', sa.Integer(), nullable=True),
        sa.Column('team_id', sa.Integer(), nullable=True),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('set_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint('(employee_id IS NULL) <> (team_id IS NULL)', name=op.f('ck_performance_targets_one_owner')),
        sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_performance_targets_employee_id_employees'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_performance_targets_team_id_teams'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_performance_targets')),
        sa.UniqueConstraint('employee_id', 'month', name='uq_performance_targets_employee_month'),
        sa.UniqueConstraint('team_id', 'month', name='uq_performance_targets_team_month'),
    )
    op.create_index('ix_purchases_customer_purchased_at', 'purchases', ['customer_id', 'purchased_at'])
    op.create_index(op.f('ix_interactions_occurred_at'), 'interactions', ['occurred_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_interactions_occurred_at'), table_name='interactions')
    op.drop_index('ix_purchases_customer_purchased_at', table_name='purchases')
    op.drop_table('performance_targets')
