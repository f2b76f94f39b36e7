"""Money as exact decimals: the one definition every layer shares (docs/domain.md, "Money").

An amount is a `Decimal` with exactly two decimal places (whole cents).  The database
stores it as a whole number of cents (storage/money_type.py), rules compare it with
decimal literals (dsl/fields.py marks the money fields), and the API prints it as a
decimal string.  Binary floating point never holds an amount: 0.10 + 0.20 is 0.30 here.

Where an amount is derived (an average, a sum of rounded values) it is rounded half
to even to the cent (banker's rounding, so a long run of halves does not drift up).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MONEY_DECIMALS = 2


class NotMoney(ValueError):
    """The value cannot be read as an exact amount of money."""


def to_decimal(value: object) -> Decimal:
    """`value` as an exact Decimal: an int or Decimal as is, a float by the shortest decimal that reads back
    as it (what a client wrote as 12.3 arrives as the float 12.3 and means 12.3), a string by its decimal text.

    Raises NotMoney for bool, NaN, infinities and anything else.
    """
    if isinstance(value, bool):
        raise NotMoney("a boolean is not an amount")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise NotMoney(f"{value!r} is not a decimal number") from None
    else:
        raise NotMoney(f"a {type(value).__name__} is not an amount")
    if not result.is_finite():
        raise NotMoney("an amount is a finite number")
    return result


def decimals_of(value: Decimal) -> int:
    """How many decimal places `value` is written with (trailing zeros count: 1.50 has 2)."""
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def is_whole_cents(value: Decimal) -> bool:
    return value == value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def to_cent(value: Decimal) -> Decimal:
    """`value` rounded half to even to the cent, with exactly two decimal places."""
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def mean_to_cent(total: Decimal, count: int) -> Decimal | None:
    """The average of `count` amounts summing to `total`, rounded half to even to the cent; None when count is 0.

    Computed on whole cents with integer arithmetic, so it is exact whatever the size
    (and the SQL compiler can compute the same in the database: storage/rule_fields.py).
    """
    if not count:
        return None
    cents = int(total.scaleb(MONEY_DECIMALS))
    quotient, remainder = divmod(cents, count)
    if 2 * remainder > count or (2 * remainder == count and quotient % 2 == 1):
        quotient += 1
    return Decimal(quotient).scaleb(-MONEY_DECIMALS)


def cents_of(value: Decimal) -> int:
    """Whole cents of an amount; NotMoney when it has a fraction of a cent."""
    scaled = value.scaleb(MONEY_DECIMALS)
    if scaled != scaled.to_integral_value():
        raise NotMoney(f"{value} has a fraction of a cent")
    return int(scaled)


def from_cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-MONEY_DECIMALS)


def plain(value: Decimal) -> str:
    """The amount as plain decimal text with two places, never an exponent ("2054930.82", "0.00")."""
    return f"{to_cent(value):f}"
