"""The `Money` scalar: every amount in the API, exact, as a decimal string.

Fields typed `Decimal` in the schema's Python code are `Money` in GraphQL (the schema maps
the one to the other with StrawberryConfig.scalar_map, schema/__init__.py).  Output is plain decimal text with two places
("2054930.82", never an exponent or a binary-float tail), the convention of large commerce
APIs: JSON numbers are read as binary floats by most clients.  Input is a string
("12.30") or a JSON number (12.3, read as the decimal it was written as); the domain then
checks its range and that it has no fraction of a cent (domain/validation.py, money).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry
from graphql import FloatValueNode, IntValueNode, StringValueNode, ValueNode

from segmenta.dsl.money import NotMoney, plain, to_decimal
from segmenta.schema.errors import client_error

MONEY_DESCRIPTION = (
    "An exact amount of money in the currency's units, as a decimal string with two places: \"2054930.82\". "
    "Accepted as a string (\"12.30\") or a number (12.3); at most 2 decimal places, never rounded on input. "
    "Sums are exact; averages are rounded half to even to the cent."
)


def serialize_money(value: Decimal) -> str:
    return plain(value if isinstance(value, Decimal) else to_decimal(value))


def parse_money(value: Any) -> Decimal:
    # A GraphQLError (not a ValueError): bad input the client caused, answered as BAD_USER_INPUT.
    try:
        return to_decimal(value)
    except NotMoney as error:
        raise client_error(f"Money is a decimal number as a string or number: {error}") from None


def parse_money_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> Decimal:
    # A literal's own text: `12.30` in a document is exactly 12.30, never a float first.
    if isinstance(node, (StringValueNode, IntValueNode, FloatValueNode)):
        return parse_money(node.value)
    raise client_error("Money is a decimal number as a string or number")


MONEY = strawberry.scalar(
    name="Money",
    description=MONEY_DESCRIPTION,
    serialize=serialize_money,
    parse_value=parse_money,
    parse_literal=parse_money_literal,
)
