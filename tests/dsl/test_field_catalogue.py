"""The field catalogue's operators (dsl/fields.OPERATORS, served by `ruleFields`) are exactly the ones
the checker accepts for each kind of field, so an editor completing them never offers an error."""

from __future__ import annotations

import pytest

from segmenta.dsl.fields import ATTRIBUTE_FIELD, FIELDS, OPERATORS, FieldSpec
from segmenta.dsl.pipeline import check_source

EVERY_OPERATOR = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "between", "like", "contains", "is missing", "is present")
# A value of the right kind for each kind of field (for an attribute: a number, which every operator takes).
SAMPLE = {"text": "x", "number": "5", "date": "2026-01-01", "set": "x", "attribute": "5"}


def _value(spec: FieldSpec) -> str:
    return spec.values[0] if spec.kind == "ordered" else SAMPLE[spec.kind]


def _condition(name: str, operator: str, value: str) -> str:
    if operator in ("in", "not in"):
        return f"{name} {operator} ({value})"
    if operator == "between":
        return f"{name} between {value} and {value}"
    if operator.startswith("is "):
        return f"{name} {operator}"
    if operator == "like":
        return f'{name} like "x*"'
    return f"{name} {operator} {value}"


FIELD_CASES = [(name, spec) for name, spec in FIELDS.items()] + [("attr.tier", ATTRIBUTE_FIELD)]


@pytest.mark.parametrize(("name", "spec"), FIELD_CASES, ids=[name for name, _ in FIELD_CASES])
def test_a_field_takes_exactly_the_operators_it_lists(name: str, spec: FieldSpec) -> None:
    for operator in EVERY_OPERATOR:
        source = f"{_condition(name, operator, _value(spec))} -> team t\n"
        errors = [d for d in check_source(source).diagnostics if d.is_error]
        if operator in OPERATORS[spec.kind]:
            assert errors == [], (operator, source, errors)
        else:
            assert [d.code for d in errors] == ["type-mismatch"], (operator, source, errors)


def test_every_field_says_what_it_means_and_counts_in_units_where_it_has_them() -> None:
    assert all(spec.description for spec in FIELDS.values())
    assert FIELDS["days_since_purchase"].unit == "days"
    assert FIELDS["total_spent"].unit == "money" and FIELDS["total_spent"].money
    assert all(spec.unit == "date" for spec in FIELDS.values() if spec.kind == "date")
