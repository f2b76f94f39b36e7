"""The Python API (docs/python-api.md): compile_rules, RuleError, Ruleset, Outcome."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from segmenta import dsl
from segmenta.dsl import Outcome, RuleError, Ruleset, check_source, compile_rules, parse

# The example at the top of docs/rule-language.md.
DOCS_EXAMPLE = """\
# reusable, named conditions; each also maintains a dynamic segment of that key
segment high_value = total_spent >= 100k or purchase_count >= 20
segment at_risk    = days_since_purchase > 180 and open_complaints > 0

# routing rules: [label:] condition -> action, action ...
enterprise_east: size = large and region = east -> team senior_sales
finance: industry in (finance, insurance) and high_value -> team finance_desk, tag vip
recovery: at_risk -> team customer_success, tag needs_call
size = small and region = 华东 -> team east_standard
otherwise -> team general_pool
"""

AS_OF = datetime(2026, 6, 30, 12, 0)


def test_the_spec_example_routes_customers() -> None:
    ruleset = compile_rules(DOCS_EXAMPLE)
    assert isinstance(ruleset, Ruleset)
    assert ruleset.evaluate({"size": "large", "region": "east"}, AS_OF) == Outcome("senior_sales", "enterprise_east", (), ())
    finance = ruleset.evaluate({"industry": "insurance", "total_spent": 100_000}, AS_OF)
    assert finance == Outcome("finance_desk", "finance", ("high_value",), ("vip",))
    at_risk = {"last_purchase_at": date(2025, 12, 1), "open_complaints": 2}
    assert ruleset.evaluate(at_risk, AS_OF) == Outcome("customer_success", "recovery", ("at_risk",), ("needs_call",))
    assert ruleset.evaluate({"size": "small", "region": "华东"}, AS_OF).rule == "line 9"
    assert ruleset.evaluate({}, AS_OF) == Outcome("general_pool", "line 10", (), ())


def test_ruleset_exposes_its_source_tree_diagnostics_and_names() -> None:
    ruleset = compile_rules(DOCS_EXAMPLE)
    assert ruleset.source == DOCS_EXAMPLE
    assert len(ruleset.rule_file.statements) == 7
    assert ruleset.teams == ("senior_sales", "finance_desk", "customer_success", "east_standard", "general_pool")
    assert ruleset.segment_keys == ("high_value", "at_risk")
    assert ruleset.tag_names == ("vip", "needs_call")
    assert all(not d.is_error for d in ruleset.diagnostics)


def test_errors_raise_rule_error_with_every_located_diagnostic() -> None:
    with pytest.raises(RuleError) as raised:
        compile_rules("a: regon = east -> team x\nb: size > 5 -> team y\n")
    errors = [d for d in raised.value.diagnostics if d.is_error]
    assert [(d.code, d.line) for d in errors] == [("unknown-field", 1), ("type-mismatch", 2)]
    assert "line 1" in str(raised.value)
    assert dsl.RuleError is RuleError


def test_warnings_do_not_stop_compilation() -> None:
    ruleset = compile_rules("size = large -> team a\nsize = large and region = east -> team b\n")
    assert [d.code for d in ruleset.diagnostics] == ["shadowed-rule"]


def test_check_source_and_parse_are_exported() -> None:
    rule_file, diagnostics = parse("x: size = large -> team a\n")
    assert diagnostics == [] and rule_file.statements[0].label == "x"  # type: ignore[union-attr]
    assert check_source("x: size = large -> team a\n").ok


def test_number_suffixes() -> None:
    ruleset = compile_rules(
        "k: total_spent >= 100k -> tag k\nm: total_spent >= 1.5m -> tag m\n"
        "wan: total_spent >= 10万 -> tag wan\nyi: total_spent >= 1亿 -> tag yi\n"
    )
    assert ruleset.evaluate({"total_spent": 100_000}).tags == ("k", "wan")
    assert ruleset.evaluate({"total_spent": 1_500_000}).tags == ("k", "m", "wan")
    assert ruleset.evaluate({"total_spent": 99_999}).tags == ()
    assert ruleset.evaluate({"total_spent": 100_000_000}).tags == ("k", "m", "wan", "yi")


def test_quoted_labels_strings_dates_and_attributes_from_source() -> None:
    ruleset = compile_rules(
        '"east china": city = "New York" and attr.tier = gold -> team a\n'
        "fresh: first_purchase_at between 2026-01-01 and 2026-01-31 -> team b\n"
        'mail: email like "*@acme.com" -> team c\n'
        "scored: attr.score >= 7 -> team d\n"
    )
    assert ruleset.evaluate({"city": "New York", "attr.tier": "gold"}).rule == "east china"
    assert ruleset.evaluate({"first_purchase_at": datetime(2026, 1, 31, 23, 59)}).team == "b"
    assert ruleset.evaluate({"email": "ann@acme.com"}).team == "c"
    assert ruleset.evaluate({"email": "ann@acmexcom"}).team is None
    assert ruleset.evaluate({"attr.score": 7}).team == "d"
    assert ruleset.evaluate({"attr.score": "7"}).team is None


def test_keywords_as_quoted_values_and_unicode_words() -> None:
    ruleset = compile_rules('region in ("and", north-east, 华东) -> team a\n')
    assert [ruleset.evaluate({"region": r}).team for r in ("and", "north-east", "华东", "east")] == ["a", "a", "a", None]


def test_explain_is_available_on_the_ruleset() -> None:
    explanation = compile_rules(DOCS_EXAMPLE).explain({"size": "large", "region": "west"}, AS_OF)
    assert explanation.team == "general_pool"
    assert any(t.detail == "region = east ✗ (region is west)" for t in explanation.rules)
