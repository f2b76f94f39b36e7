"""The column type of every amount of money: whole cents in a BIGINT, a Decimal in Python.

Why whole cents rather than NUMERIC: SQLite has no exact decimal type (a NUMERIC column
stores a fractional value as an 8-byte float), and one representation on both back ends
keeps the SQL rule compiler one code path.  An integer column compares, sums and indexes
exactly and fast on both: `total_spent >= :bound` binds the bound as cents (the type's
bind processing) and the index on total_spent serves it; `total_spent + :amount` adds
integers.  BIGINT holds ±92 million billion cents, far past the data limits
(domain/validation.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from segmenta.dsl.money import cents_of, from_cents, to_decimal


class Money(TypeDecorator[Decimal]):
    """An exact amount: bound from Decimal (or int, or a float read as its shortest decimal), read as Decimal
    with two places.  Binding a fraction of a cent raises rather than rounding silently."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return cents_of(to_decimal(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        # PostgreSQL's SUM of a BIGINT is NUMERIC (a Decimal); SQLite's is an int.
        return from_cents(int(value))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal
