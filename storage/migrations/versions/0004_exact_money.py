"""exact money: amounts become whole cents in a BIGINT (read as Decimal, storage/money_type.py)

Revision ID: 0004
Revises: 0003

Each money column (purchases.amount, customers.total_spent, employees.monthly_target,
teams.monthly_target) was a binary float.  Its value is read back as the shortest
decimal that reads back as the same float (what was written: 2054930.8200000005 is
stored for a sum whose decimal reading is that, and rounds to 2054930.82), rounded half
to even to the cent, and stored as whole cents.  The conversion runs in Python, so it
is exact and the same on both back ends (SQL ROUND of a float is neither).

No table is copied: the old column is renamed aside, the new one added, filled and
the old one dropped (a SQLite connection's temporary routing trigger names some of
these tables, and SQLite refuses to drop and rename a table a trigger names).
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# (table, column, nullable, indexed)
MONEY_COLUMNS = (
    ('purchases', 'amount', False, False),
    ('customers', 'total_spent', False, True),
    ('employees', 'monthly_target', True, False),
    ('teams', 'monthly_target', True, False),
)
CHUNK = 5000
_CENT = Decimal('0.01')


def cents_of_float(value: float) -> int:
    """Whole cents of a stored float: its shortest decimal reading, rounded half to even to the cent."""
    return int(Decimal(repr(float(value))).quantize(_CENT, rounding=ROUND_HALF_EVEN).scaleb(2))


def _convert(table: str, column: str, *, to_cents: bool) -> None:
    """Copy `{column}_old` into the new `{column}` (float -> cents, or cents -> float), chunk by chunk."""
    connection = op.get_bind()
    old = sa.table(table, sa.column('id'), sa.column(f'{column}_old'))
    new = sa.table(table, sa.column('id'), sa.column(column))
    last_id = None
    while True:
        query = sa.select(old.c.id, old.c[f'{column}_old']).where(old.c[f'{column}_old'].is_not(None))
        if last_id is not None:
            query = query.where(old.c.id > last_id)
        rows = connection.execute(query.order_by(old.c.id).limit(CHUNK)).all()
        if not rows:
            return
        values = [
            {'row_id': row[0], 'value': cents_of_float(row[1]) if to_cents else float(Decimal(int(row[1])).scaleb(-2))}
            for row in rows
        ]
        connection.execute(
            new.update().where(new.c.id == sa.bindparam('row_id')).values({column: sa.bindparam('value')}), values
        )
        last_id = rows[-1][0]


def _swap(table: str, column: str, nullable: bool, indexed: bool, *, new_type: sa.types.TypeEngine, to_cents: bool) -> None:
    index = f'ix_{table}_{column}'
    if indexed:
        op.drop_index(index, table_name=table)
    op.execute(f'ALTER TABLE {table} RENAME COLUMN {column} TO {column}_old')
    # NOT NULL needs a default for the rows already there (SQLite's ADD COLUMN); they are all filled next.
    op.add_column(table, sa.Column(column, new_type, nullable=nullable, server_default=None if nullable else '0'))
    _convert(table, column, to_cents=to_cents)
    op.drop_column(table, f'{column}_old')
    if indexed:
        op.create_index(index, table, [column])


def upgrade() -> None:
    for table, column, nullable, indexed in MONEY_COLUMNS:
        _swap(table, column, nullable, indexed, new_type=sa.BigInteger(), to_cents=True)


def downgrade() -> None:
    for table, column, nullable, indexed in MONEY_COLUMNS:
        _swap(table, column, nullable, indexed, new_type=sa.Float(), to_cents=False)
