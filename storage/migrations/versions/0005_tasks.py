"""follow-up tasks: tasks (at most one open per customer and kind) and task_triggers (the re-arm marker)

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_table(
        'tasks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('employee_id', sa.Integer(), nullable=True),
        sa.Column('team_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=100), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False, server_default='open'),
        sa.Column('source', sa.String(length=10), nullable=False, server_default='manual'),
        sa.Column('rule', sa.String(length=200), nullable=True),
        sa.Column('ruleset_id', sa.Integer(), nullable=True),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('completed_at', sa.DateTime(), nullable=True),
        sa.Column('completed_by_id', sa.Integer(), nullable=True),
        sa.Column('outcome', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_tasks_customer_id_customers'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['employee_id'], ['employees.id'], name=op.f('fk_tasks_employee_id_employees'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_tasks_team_id_teams'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['ruleset_id'], ['rulesets.id'], name=op.f('fk_tasks_ruleset_id_rulesets'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['run_id'], ['evaluation_runs.id'], name=op.f('fk_tasks_run_id_evaluation_runs'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['created_by_id'], ['employees.id'], name=op.f('fk_tasks_created_by_id_employees'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['completed_by_id'], ['employees.id'], name=op.f('fk_tasks_completed_by_id_employees'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
    )
    # The guarantee behind `-> task KIND`: one open task per customer and kind, whoever inserts it.
    op.create_index('uq_tasks_open_customer_kind', 'tasks', ['customer_id', 'kind'], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_index('ix_tasks_employee_status_due', 'tasks', ['employee_id', 'status', 'due_at'])
    op.create_index('ix_tasks_team_status_due', 'tasks', ['team_id', 'status', 'due_at'])
    op.create_index('ix_tasks_status_due', 'tasks', ['status', 'due_at'])
    op.create_index('ix_tasks_customer_status', 'tasks', ['customer_id', 'status'])
    op.create_table(
        'task_triggers',
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=100), nullable=False),
        sa.Column('since', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_task_triggers_customer_id_customers'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('customer_id', 'kind', name=op.f('pk_task_triggers')),
    )


def downgrade() -> None:
    op.drop_table('task_triggers')
    op.drop_index('ix_tasks_customer_status', table_name='tasks')
    op.drop_index('ix_tasks_status_due', table_name='tasks')
    op.drop_index('ix_tasks_team_status_due', table_name='tasks')
    op.drop_index('ix_tasks_employee_status_due', table_name='tasks')
    op.drop_index('uq_tasks_open_customer_kind', table_name='tasks')
    op.drop_table('tasks')
