"""The database side of the SQL rule compiler: rule fields as columns of `customers`.

`CustomerFields` tells dsl.sql_compiler where each rule field lives;
`evaluate_in_database` runs a whole rule file for many customers in one SELECT;
`customers_where` turns a rule condition into a filter over customers.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Float, FromClause, and_, case, cast, exists, or_, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from segmenta.dsl.ast import Condition, RuleFile
from segmenta.dsl.fields import DAY_METRIC_SOURCES, FIELDS
from segmenta.dsl.sql_compiler import EMPTY_SEGMENTS, SqlRuleset, compile_condition, compile_ruleset
from segmenta.storage.models import Customer, CustomerAttribute, CustomerTag, Purchase
from segmenta.storage.money_type import Money

# Averages kept as a maintained sum and count; missing (NULL) when the count is 0.
# (avg_order_value is money: rounded to the cent, CustomerFields._average_order_value.)
RATIO_METRICS: dict[str, tuple[str, str]] = {
    "avg_satisfaction": ("survey_sum", "survey_count"),
    "nps": ("nps_sum", "nps_count"),
}

ID_CHUNK = 10_000

_attributes = CustomerAttribute.__table__
_tags = CustomerTag.__table__
_purchases = Purchase.__table__


class CustomerFields:
    """Implements dsl.sql_compiler.SqlFieldSource over `customers` (or an alias of it)."""

    def __init__(self, customers: FromClause | None = None) -> None:
        self.customers: FromClause = customers if customers is not None else Customer.__table__

    @property
    def _id(self) -> ColumnElement[int]:
        return self.customers.c.id

    def _exists(self, *criteria: ColumnElement[bool]) -> ColumnElement[bool]:
        # Correlated to the customer row explicitly, whatever the enclosing statement is.
        return exists().where(*criteria).correlate(self.customers)

    def column(self, name: str) -> ColumnElement[Any]:
        if name == "avg_order_value":
            return self._average_order_value()
        if name in RATIO_METRICS:
            total, count = (self.customers.c[part] for part in RATIO_METRICS[name])
            # Cast both sides: SQLite divides integers as integers, and PostgreSQL would raise on 0.
            return case((count > 0, cast(total, Float) / cast(count, Float)), else_=None)
        spec = FIELDS.get(name)
        if spec is None or spec.kind in ("set", "attribute") or spec.derived:
            raise KeyError(f"`{name}` is not a scalar column of customers")
        return self.customers.c[name]

    def _average_order_value(self) -> ColumnElement[Any]:
        """total_spent / purchase_count rounded half to even to the cent, in integer arithmetic on the stored cents.

        The same value as dsl.money.mean_to_cent (the Python evaluator's), so a rule comparing it gives the same
        answer in both.  Totals are never negative, so integer division (truncating on both back ends) is floor.
        """
        cents = type_coerce(self.customers.c.total_spent, BigInteger())
        count = type_coerce(self.customers.c.purchase_count, BigInteger())
        quotient = cents // count
        remainder = cents - quotient * count
        round_up = or_(2 * remainder > count, and_(2 * remainder == count, quotient % 2 == 1))
        rounded = quotient + case((round_up, 1), else_=0)
        return type_coerce(case((count > 0, rounded), else_=None), Money())

    def set_contains(self, name: str, value: ColumnElement[str]) -> ColumnElement[bool]:
        if name == "tags":
            return self._exists(_tags.c.customer_id == self._id, _tags.c.source == "manual", _tags.c.tag == value)
        if name == "product_categories":
            return self._exists(_purchases.c.customer_id == self._id, _purchases.c.category == value)
        raise KeyError(f"`{name}` is not a set field")

    def set_present(self, name: str) -> ColumnElement[bool]:
        if name == "tags":
            return self._exists(_tags.c.customer_id == self._id, _tags.c.source == "manual")
        if name == "product_categories":
            return self._exists(_purchases.c.customer_id == self._id, _purchases.c.category.is_not(None))
        raise KeyError(f"`{name}` is not a set field")

    def attribute(self, key: str, numeric: bool) -> ColumnElement[Any]:
        """The attribute's text (or number) value as a scalar subquery; NULL when missing or of the other kind."""
        value = _attributes.c.number_value if numeric else _attributes.c.text_value
        return (
            select(value)
            .where(_attributes.c.customer_id == self._id, _attributes.c.key == key)
            .scalar_subquery()
        )

    def attribute_where(
        self, key: str, numeric: bool, predicate: Callable[[ColumnElement[Any]], ColumnElement[bool]]
    ) -> ColumnElement[bool]:
        # EXISTS rather than a scalar subquery: never NULL, and the (key, value) indexes serve it.
        value = _attributes.c.number_value if numeric else _attributes.c.text_value
        return self._exists(_attributes.c.customer_id == self._id, _attributes.c.key == key, predicate(value))

    def attribute_present(self, key: str) -> ColumnElement[bool]:
        return self._exists(
            _attributes.c.customer_id == self._id,
            _attributes.c.key == key,
            (_attributes.c.text_value.is_not(None)) | (_attributes.c.number_value.is_not(None)),
        )

    def day_source(self, metric: str) -> ColumnElement[Any]:
        return self.customers.c[DAY_METRIC_SOURCES[metric]]

    def birthday_md(self) -> ColumnElement[int]:
        return self.customers.c.birthday_md


class DatabaseOutcome(NamedTuple):
    team: str | None
    rule: str | None
    segments: frozenset[str]
    tags: frozenset[str]
    tasks: frozenset[str] = frozenset()


async def evaluate_in_database(
    session: AsyncSession,
    rules: RuleFile | SqlRuleset,
    as_of: datetime,
    customer_ids: Collection[int] | None = None,
) -> dict[int, DatabaseOutcome]:
    """Team, deciding rule, segments, tags and task kinds of every (or each given) customer, in one SELECT."""
    fields = CustomerFields()
    compiled = rules if isinstance(rules, SqlRuleset) else compile_ruleset(rules, fields, as_of=as_of)
    segment_keys = list(compiled.segments)
    tag_keys = list(compiled.tags)
    task_keys = list(compiled.tasks)
    statement = select(
        fields.customers.c.id,
        compiled.team.label("team"),
        compiled.rule.label("rule"),
        *[compiled.segments[key].label(f"segment_{index}") for index, key in enumerate(segment_keys)],
        *[compiled.tags[key].label(f"tag_{index}") for index, key in enumerate(tag_keys)],
        *[compiled.tasks[key].label(f"task_{index}") for index, key in enumerate(task_keys)],
    )
    if customer_ids is None:
        statements = [statement]
    else:
        # Bound-parameter limits (SQLite 32766, asyncpg 32767): one statement per chunk of ids.
        ids = list(customer_ids)
        chunks = [ids[start : start + ID_CHUNK] for start in range(0, len(ids), ID_CHUNK)]
        statements = [statement.where(fields.customers.c.id.in_(chunk)) for chunk in chunks]
    outcomes: dict[int, DatabaseOutcome] = {}
    first_segment = 3
    first_tag = first_segment + len(segment_keys)
    first_task = first_tag + len(tag_keys)
    for chunk_statement in statements:
        for row in await session.execute(chunk_statement):
            outcomes[row[0]] = DatabaseOutcome(
                team=row[1],
                rule=row[2],
                segments=frozenset(key for index, key in enumerate(segment_keys) if row[first_segment + index]),
                tags=frozenset(key for index, key in enumerate(tag_keys) if row[first_tag + index]),
                tasks=frozenset(key for index, key in enumerate(task_keys) if row[first_task + index]),
            )
    return outcomes


def customers_where(
    condition: Condition,
    as_of: datetime,
    segments: Mapping[str, ColumnElement[bool]] = EMPTY_SEGMENTS,
) -> ColumnElement[bool]:
    """A rule condition as a filter over `customers` (GraphQL `customers(where: …)`)."""
    return compile_condition(condition, CustomerFields(), as_of=as_of, segments=segments)
