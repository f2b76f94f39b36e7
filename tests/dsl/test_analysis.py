"""Analysis: shadowed rules, contradictions, overlaps — reported when certain, silent otherwise."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segmenta.dsl import ast, check_source
from segmenta.dsl.analysis import analyse
from segmenta.dsl.ruleset import Ruleset
from tests.dsl.test_python_compiler import (
    PROPERTY_SETTINGS,
    SIZE_WORDS,
    conditions,
    text_values,
)


def codes(source: str) -> list[tuple[str, int]]:
    result = check_source(source)
    assert result.ok, result.diagnostics
    return [(d.code, d.line) for d in result.diagnostics]


def diagnostics(source: str) -> list[Any]:
    return list(check_source(source).diagnostics)


# ---------------------------------------------------------------------------
# shadowed-rule
# ---------------------------------------------------------------------------


def test_a_narrower_rule_after_a_broader_one_is_shadowed_and_the_message_names_the_earlier_rule() -> None:
    source = "big: size = large -> team a\neast_big: size = large and region = east -> team b\n"
    [shadowed] = diagnostics(source)
    assert (shadowed.code, shadowed.severity, shadowed.line, shadowed.column) == ("shadowed-rule", "warning", 2, 1)
    assert shadowed.end_column == len("east_big: size = large and region = east -> team b") + 1
    assert "`big` (line 1)" in shadowed.message and "`east_big`" in shadowed.message


def test_everything_after_true_is_shadowed_including_otherwise() -> None:
    source = "true -> team x\nregion = east -> team y\notherwise -> team z\n"
    assert codes(source) == [("shadowed-rule", 2), ("shadowed-rule", 3)]


def test_a_rule_covered_by_the_union_of_earlier_rules_is_shadowed() -> None:
    source = "age > 5 -> team a\nage <= 5 -> team b\nage is present -> team c\n"
    [diagnostic] = [d for d in diagnostics(source) if d.code == "shadowed-rule"]
    assert diagnostic.line == 3 and "together" in diagnostic.message


def test_not_equal_covers_missing_values() -> None:
    assert ("shadowed-rule", 2) in codes("region != east -> team a\nregion is missing -> team b\n")


def test_ordered_comparison_covers_the_matching_words() -> None:
    assert ("shadowed-rule", 2) in codes("size >= large -> team a\nsize in (large, enterprise) -> team b\n")
    assert ("shadowed-rule", 2) in codes("purchasing_power > low -> team a\npurchasing_power = high -> team b\n")


def test_number_and_date_ranges_cover_narrower_ones() -> None:
    assert ("shadowed-rule", 2) in codes("total_spent >= 100k -> team a\ntotal_spent between 200k and 300k -> team b\n")
    assert ("shadowed-rule", 2) in codes(
        "last_purchase_at >= 2026-01-01 -> team a\nlast_purchase_at > 2026-03-31 -> team b\n"
    )
    # whole days: > Jan 1 and < Jan 3 leaves only Jan 2, which the first rule takes
    assert ("shadowed-rule", 2) in codes(
        "last_purchase_at = 2026-01-02 -> team a\nlast_purchase_at > 2026-01-01 and last_purchase_at < 2026-01-03 -> team b\n"
    )


def test_segments_are_inlined() -> None:
    source = "segment big = size >= large\nbig -> team a\nsize = enterprise -> team b\n"
    assert ("shadowed-rule", 3) in codes(source)


def test_not_shadowed_when_earlier_rules_leave_customers() -> None:
    for source in [
        "size = large -> team a\nsize = large or region = east -> team b\n",
        "age > 5 -> team a\nage < 5 -> team b\nage is present -> team c\n",  # age = 5 remains
        "region = east -> team a\nregion != west -> team b\n",
        "tags contains vip -> team a\ntags is present -> team b\n",
        "region = east -> tag east\nregion = east -> team b\n",  # a rule without a team takes nobody
        "age > 5 -> team a\nnot (age > 5) -> team b\n",  # missing age remains for the second
    ]:
        assert not [c for c in codes(source) if c[0] == "shadowed-rule"], source


def test_like_patterns_are_not_guessed_about() -> None:
    # the analysis cannot enumerate what `A*` matches: no claim either way
    source = 'name like "A*" -> team a\nname like "Ab*" -> team b\n'
    assert codes(source) == []
    # a pattern without wildcards is an equality
    assert ("shadowed-rule", 2) in codes('name = "Abc" -> team a\nname like "Abc" -> team b\n')


def test_rules_with_the_same_team_are_still_shadowed_but_never_overlapping() -> None:
    assert codes("size = large -> team a\nsize = large and region = east -> team a\n") == [("shadowed-rule", 2)]
    assert codes("size = large -> team a\nregion = east -> team a\n") == []


# ---------------------------------------------------------------------------
# contradiction
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        "age > 50 and age < 20",
        "region = east and region = west",
        "size < small",
        "size > enterprise",
        "region = east and region is missing",
        "tags contains vip and tags is missing",
        "tags contains vip and not (tags contains vip)",
        "age between 10 and 5",
        "last_purchase_at > 2026-01-01 and last_purchase_at < 2026-01-02",
        "region in (east, west) and region not in (east, west)",
        "attr.tier = gold and attr.tier = 5",
        'name like "A*" and name = "Bob"',
    ],
)
def test_contradictions_are_reported_on_the_condition(condition: str) -> None:
    source = f"r: {condition} -> team a\n"
    [diagnostic] = diagnostics(source)
    assert (diagnostic.code, diagnostic.severity, diagnostic.line) == ("contradiction", "warning", 1)
    assert diagnostic.column == 4  # the condition, after the label


def test_contradictory_segments_are_reported_too() -> None:
    assert ("contradiction", 1) in codes("segment never = age > 5 and age < 5\n")


def test_satisfiable_conditions_are_not_contradictions() -> None:
    for condition in [
        "age > 50 or age < 20",
        "age >= 5 and age <= 5",
        "region != east and region != west",
        "size >= large and size <= large",
        "attr.tier = gold or attr.tier = 5",
        "not (age > 5) and not (age <= 5)",  # a customer with no age
        "region = east and not (region = east and size = large)",
        "tags contains vip and tags contains gold",
        'name like "A*" and name like "*z"',
    ]:
        assert not [c for c in codes(f"{condition} -> team a\n") if c[0] == "contradiction"], condition


def test_the_literal_false_is_a_deliberate_switch_not_a_warning() -> None:
    assert codes("false -> team a\n") == []


def test_dependent_metrics_are_not_claimed_to_overlap() -> None:
    # `purchase_count = 0 and total_spent > 0` cannot happen in real data; say nothing.
    source = "purchase_count = 0 -> team a\ntotal_spent > 0 -> team b\n"
    assert codes(source) == []


# ---------------------------------------------------------------------------
# overlap
# ---------------------------------------------------------------------------


def test_overlapping_rules_with_different_teams_are_reported_on_the_later_rule() -> None:
    source = "east: region = east -> team a\nbig: size >= large -> team b\n"
    [diagnostic] = diagnostics(source)
    assert (diagnostic.code, diagnostic.severity, diagnostic.line) == ("overlap", "info", 2)
    assert "`east` (line 1" in diagnostic.message and "team a" in diagnostic.message


def test_disjoint_rules_do_not_overlap() -> None:
    assert codes("region = east -> team a\nregion = west -> team b\n") == []
    assert codes("size <= medium -> team a\nsize >= large -> team b\n") == []
    assert codes("age < 18 -> team a\nage >= 18 -> team b\n") == []
    assert codes("tags contains vip -> team a\nnot (tags contains vip) -> team b\n") == []


def test_a_shadowed_rule_is_not_also_reported_as_overlapping() -> None:
    assert codes("size = large -> team a\nsize = large and region = east -> team b\n") == [("shadowed-rule", 2)]


def test_analysis_of_a_large_file_stays_fast_and_finds_planted_problems() -> None:
    lines = [f"r{i}: region = reg{i % 50} and total_spent >= {i * 100} -> team t{i % 7}" for i in range(1000)]
    lines.append("late: region = reg3 and total_spent >= 100m -> team t1")  # covered by r3 (total_spent >= 300)
    lines.append("odd: age > 9 and age < 3 -> team t2")
    started = datetime.now()
    found = codes("\n".join(lines) + "\n")
    assert (datetime.now() - started).total_seconds() < 5
    assert ("shadowed-rule", 1001) in found
    assert ("contradiction", 1002) in found


# ---------------------------------------------------------------------------
# Soundness: whatever the analysis claims holds for every customer tried.
# ---------------------------------------------------------------------------

typed_customers = st.fixed_dictionaries(
    {},
    optional={
        "region": text_values,
        "size": st.sampled_from(SIZE_WORDS) | text_values,
        "age": st.sampled_from([0, 1, 5, 5.5, -1, 100_000, float("inf")]) | st.integers(-10, 10),
        "last_purchase_at": st.sampled_from([date(2026, 1, 31), date(2026, 1, 1), date(2000, 2, 29), datetime(2026, 1, 31, 9)]),
        "tags": st.lists(st.sampled_from(["vip", "east", "Vip", ""]), max_size=3),
        "attr.tier": text_values | st.sampled_from([0, 1, 5, 5.5, -1, 100_000]),
        "name": text_values,
    },
)


@PROPERTY_SETTINGS
@given(
    rules=st.lists(st.tuples(conditions, st.sampled_from(["a", "b", "c"])), min_size=1, max_size=5),
    customers=st.lists(typed_customers, min_size=1, max_size=20),
)
def test_analysis_claims_hold_for_every_customer(rules: list[tuple[ast.Condition, str]], customers: list[dict[str, Any]]) -> None:
    statements = tuple(
        ast.Rule(condition, (ast.Action("team", team),), span=ast.Span(line, 1, line, 2))
        for line, (condition, team) in enumerate(rules, start=1)
    )
    rule_file = ast.RuleFile(statements)
    found = analyse(rule_file)
    ruleset = Ruleset(rule_file)
    contradictory = {d.line for d in found if d.code == "contradiction"}
    shadowed = {d.line for d in found if d.code == "shadowed-rule"}
    for customer in customers:
        outcome = ruleset.evaluate(customer)
        assert outcome.rule not in {f"line {line}" for line in shadowed}
        for line in contradictory:
            single = Ruleset(ast.RuleFile((statements[line - 1],)))
            assert single.evaluate(customer).team is None
