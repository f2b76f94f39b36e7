"""The field catalogue: every name a rule can read, with its type (docs/rule-language.md, 'Fields').

Shared by the checker (types, "did you mean"), both compilers and the domain
layer (which builds the per-customer mapping for the Python evaluator).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from segmenta.dsl.money import to_decimal

if TYPE_CHECKING:
    from segmenta.dsl.ast import Value

FieldKind = Literal["text", "ordered", "number", "date", "set", "attribute"]
FIELD_KINDS: tuple[FieldKind, ...] = ("text", "ordered", "number", "date", "set", "attribute")


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: FieldKind
    # For ordered fields: the words from lowest to highest.  For closed text
    # fields (kind, lifecycle): the allowed words.  Empty means open.
    values: tuple[str, ...] = ()
    # True for day-based metrics derived at `as_of` (never stored).
    derived: bool = False
    description: str = ""
    # True for amounts of money (a number kind): values are exact Decimals with two places, and a
    # number literal compared with them is read as an exact decimal too (money_literal).
    money: bool = False
    # What a number or date counts in ("days", "money", "score 1–5"); empty when it is a plain word or number.
    unit: str = ""


SIZES = ("small", "medium", "large", "enterprise")
PURCHASING_POWERS = ("low", "medium", "high")
LIFECYCLES = ("prospect", "new", "active", "loyal", "at_risk", "churned")
CUSTOMER_KINDS = ("company", "person")
# The rule language's number suffixes (dsl/ast_builder.py) as exact multipliers.
MONEY_SUFFIXES = {"k": Decimal(1000), "K": Decimal(1000), "m": Decimal(10**6), "M": Decimal(10**6),
                  "万": Decimal(10**4), "亿": Decimal(10**8)}

_FIELDS = [
    # Customer attributes (docs/domain.md, 'Data model').
    FieldSpec("code", "text", description="the customer's unique external id"),
    FieldSpec("name", "text", description="the customer's name"),
    FieldSpec("kind", "text", CUSTOMER_KINDS, description="a company or a person"),
    FieldSpec("industry", "text", description="the customer's industry"),
    FieldSpec("size", "ordered", SIZES, description="the customer's size, from small to enterprise"),
    FieldSpec("region", "text", description="the region the customer is in"),
    FieldSpec("city", "text", description="the customer's city"),
    FieldSpec("country", "text", description="the customer's country"),
    FieldSpec("lifecycle", "text", LIFECYCLES, description="where the customer is in their life with us"),
    FieldSpec("purchasing_power", "ordered", PURCHASING_POWERS, description="how much the customer can buy, low to high"),
    FieldSpec("channel", "text", description="how the customer came to us"),
    FieldSpec("email", "text", description="the customer's email address"),
    FieldSpec("phone", "text", description="the customer's phone number"),
    FieldSpec("address", "text", description="the customer's postal address"),
    FieldSpec("age", "number", description="a person's age", unit="years"),
    FieldSpec("gender", "text", description="a person's gender as stated"),
    FieldSpec("income", "number", description="income as the customer stated it (a number, not an exact amount)"),
    FieldSpec("occupation", "text", description="a person's occupation"),
    FieldSpec("birthday", "date", description="a person's birthday", unit="date"),
    FieldSpec("created_at", "date", description="when the customer was created", unit="date"),
    FieldSpec("tags", "set", description="manual tags only"),
    # Metrics (docs/rule-language.md, 'Fields'; docs/domain.md, 'Maintained metrics').
    FieldSpec("purchase_count", "number", description="purchases made, 0 when none", unit="purchases"),
    FieldSpec("total_spent", "number", money=True, description="the sum of all purchases, exact", unit="money"),
    FieldSpec("avg_order_value", "number", money=True, description="total_spent / purchase_count, rounded half to even to the cent", unit="money"),
    FieldSpec("first_purchase_at", "date", description="when the first purchase was made", unit="date"),
    FieldSpec("last_purchase_at", "date", description="when the latest purchase was made", unit="date"),
    FieldSpec("days_since_purchase", "number", derived=True, description="whole days since the latest purchase", unit="days"),
    FieldSpec("product_categories", "set", description="the categories of every purchase"),
    FieldSpec("avg_satisfaction", "number", description="mean survey score", unit="score 1–5"),
    FieldSpec("nps", "number", description="mean NPS score", unit="score 0–10"),
    FieldSpec("feedback_count", "number", description="feedback items given, of every kind", unit="feedback items"),
    FieldSpec("complaint_count", "number", description="complaints made, open or not", unit="complaints"),
    FieldSpec("open_complaints", "number", description="complaints not yet resolved or closed", unit="complaints"),
    FieldSpec("interaction_count", "number", description="calls, visits, emails and other contacts recorded", unit="interactions"),
    FieldSpec("days_since_contact", "number", derived=True, description="whole days since the latest interaction", unit="days"),
    FieldSpec("tenure_days", "number", derived=True, description="whole days since the customer was created", unit="days"),
    FieldSpec("days_to_birthday", "number", derived=True, description="days until the next birthday, 0 on the day", unit="days"),
]

FIELDS: dict[str, FieldSpec] = {spec.name: spec for spec in _FIELDS}
ATTRIBUTE_PREFIX = "attr."
ATTRIBUTE_FIELD = FieldSpec("attr.*", "attribute", description="custom attribute (text or number)")

_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
_PRESENCE = ("is missing", "is present")
# The operators each kind of field takes (docs/rule-language.md, 'Fields'), as they are written.
OPERATORS: dict[FieldKind, tuple[str, ...]] = {
    "text": ("=", "!=", "in", "not in", "like", *_PRESENCE),
    "ordered": (*_COMPARISONS, "in", "not in", "between", *_PRESENCE),
    "number": (*_COMPARISONS, "in", "not in", "between", *_PRESENCE),
    "date": (*_COMPARISONS, "in", "not in", "between", *_PRESENCE),
    "set": ("contains", *_PRESENCE),
    "attribute": (*_COMPARISONS, "in", "not in", "between", "like", *_PRESENCE),
}

# The stored field each day-based metric is measured from.
DAY_METRIC_SOURCES = {
    "days_since_purchase": "last_purchase_at",
    "days_since_contact": "last_contact_at",
    "tenure_days": "created_at",
    "days_to_birthday": "birthday",
}


def money_literal(value: Value) -> Decimal:
    """A number literal as the exact decimal it was written as (`0.1` is one tenth, `1.5m` 1,500,000).

    Rules compare money with these; other numbers keep the float of `value.value` (faster, and exact
    enough for counts, ages and days).  A literal built without its text falls back to the float's
    shortest decimal reading.
    """
    raw = value.raw
    if not raw:
        return to_decimal(value.value)
    multiplier = MONEY_SUFFIXES.get(raw[-1])
    if multiplier is None:
        return Decimal(raw)
    return Decimal(raw[:-1]) * multiplier


def literal_value(spec: FieldSpec, value: Value) -> Any:
    """What a literal compares as against `spec`'s values: an exact Decimal for a number against money."""
    if spec.money and value.kind == "number":
        return money_literal(value)
    return value.value


def lookup(name: str) -> FieldSpec | None:
    """The spec of a field, or None when the rule language has no such field."""
    if name.startswith(ATTRIBUTE_PREFIX) and len(name) > len(ATTRIBUTE_PREFIX):
        return ATTRIBUTE_FIELD
    return FIELDS.get(name)


def rank(spec: FieldSpec, word: object) -> int | None:
    """Position of `word` in an ordered field's declared order (None when it is not one of them)."""
    try:
        return spec.values.index(word)
    except ValueError:
        return None


def naive_utc(moment: datetime | None) -> datetime:
    """`moment` as every timestamp is stored: naive UTC; now when None.

    The one rule for instants, whether an evaluation's `as_of` or a datetime field
    value handed to the Python evaluator: an aware datetime is converted to UTC and
    then loses its zone; a naive one is taken as UTC already.
    """
    if moment is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _as_datetime(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return naive_utc(value)
    return datetime(value.year, value.month, value.day)


def days_between(earlier: date | datetime, later: datetime) -> int:
    """Whole 24-hour periods from `earlier` to `later` (floor; negative when `earlier` is later)."""
    return (_as_datetime(later) - _as_datetime(earlier)) // timedelta(days=1)


def next_birthday(birthday: date, today: date) -> date:
    """The next occurrence of `birthday` on or after `today`; 29 February falls on 1 March in other years."""
    for year in (today.year, today.year + 1):
        try:
            candidate = date(year, birthday.month, birthday.day)
        except ValueError:  # 29 February in a common year
            candidate = date(year, 3, 1)
        if candidate >= today:
            return candidate
    raise AssertionError("unreachable: a birthday recurs within a year")


def days_to_birthday(birthday: date, as_of: datetime) -> int:
    today = naive_utc(as_of).date()
    return (next_birthday(birthday, today) - today).days


def derive_day_metrics(values: Mapping[str, Any], as_of: datetime) -> dict[str, Any]:
    """Day-based metrics at `as_of`, from the stored dates in `values`; missing dates give missing metrics."""
    derived: dict[str, Any] = {}
    for metric, source in DAY_METRIC_SOURCES.items():
        stamp = values.get(source)
        if stamp is None:
            continue
        if metric == "days_to_birthday":
            derived[metric] = days_to_birthday(stamp if not isinstance(stamp, datetime) else naive_utc(stamp).date(), as_of)
        else:
            derived[metric] = days_between(stamp, as_of)
    return derived
