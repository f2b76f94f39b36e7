"""Explanations: per-statement traces, the first failing comparison with the actual value,
and exactly the compiled evaluator's team, segments and tags."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from segmenta.dsl import ast, compile_rules
from segmenta.dsl.explain import Explanation, RuleTrace
from segmenta.dsl.ruleset import Ruleset
from tests.dsl.test_python_compiler import PROPERTY_SETTINGS, _customer_values, conditions

SOURCE = """\
segment high_value = total_spent >= 100000 or purchase_count >= 20
enterprise_east: size = large and region = east -> team senior_sales
finance: industry in (finance, insurance) and high_value -> team finance_desk, tag vip
recovery: not (lifecycle = at_risk) -> tag steady
"east china": region = 华东 -> team east_standard, tag local
otherwise -> team general_pool
"""


def trace(explanation: Explanation, label: str) -> RuleTrace:
    return next(t for t in explanation.rules if t.label == label)


def test_a_failing_rule_names_its_first_failing_comparison_with_the_actual_value() -> None:
    ruleset = compile_rules(SOURCE)
    explanation = ruleset.explain({"size": "large", "region": "west", "total_spent": 5200})
    enterprise = trace(explanation, "enterprise_east")
    assert (enterprise.matched, enterprise.line) == (False, 2)
    assert enterprise.detail == "region = east ✗ (region is west)"
    segment = trace(explanation, "segment high_value")
    assert segment.kind == "segment" and not segment.matched
    assert segment.detail == "total_spent >= 100000 ✗ (total_spent is 5200); purchase_count >= 20 ✗ (purchase_count is missing)"
    finance = trace(explanation, "finance")
    assert finance.detail == "industry in (finance, insurance) ✗ (industry is missing)"


def test_or_lists_every_failing_disjunct_and_segments_explain_themselves() -> None:
    ruleset = compile_rules(SOURCE)
    explanation = ruleset.explain({"industry": "finance", "total_spent": 5200, "purchase_count": 3})
    assert trace(explanation, "finance").detail == (
        "high_value ✗ (segment high_value: total_spent >= 100000 ✗ (total_spent is 5200); "
        "purchase_count >= 20 ✗ (purchase_count is 3))"
    )


def test_not_says_what_held() -> None:
    ruleset = compile_rules(SOURCE)
    explanation = ruleset.explain({"lifecycle": "at_risk"})
    assert trace(explanation, "recovery").detail == "not (lifecycle = at_risk) ✗ (held: lifecycle = at_risk ✓ (lifecycle is at_risk))"
    assert trace(ruleset.explain({}), "recovery").matched


def test_the_deciding_rule_team_segments_tags_and_text() -> None:
    ruleset = compile_rules(SOURCE)
    explanation = ruleset.explain({"region": "华东", "industry": "finance", "total_spent": 250_000, "lifecycle": "loyal"})
    assert (explanation.team, explanation.deciding_rule) == ("finance_desk", "finance")
    assert explanation.segments == ("high_value",)
    assert explanation.tags == ("vip", "steady", "local")
    east = trace(explanation, "east china")
    assert east.matched and not east.decided and "team already decided by finance" in east.detail
    assert trace(explanation, "finance").decided
    otherwise = trace(explanation, "line 6")
    assert not otherwise.matched and "finance" in otherwise.detail
    lines = explanation.text.splitlines()
    assert lines[:3] == ["Team: finance_desk (decided by finance)", "Segments: high_value", "Tags: vip, steady, local"]
    assert "  ✗ enterprise_east (line 2): size = large ✗ (size is missing)" in lines
    assert "  ✗ line 6: otherwise: the team was already decided by finance" in lines


def test_nobody_matches_without_otherwise() -> None:
    ruleset = compile_rules("big: size >= large -> team senior\n")
    explanation = ruleset.explain({"size": "medium"})
    assert explanation.team is None and explanation.deciding_rule is None
    assert explanation.text.splitlines()[0] == "Team: none (no team rule matched)"
    assert explanation.rules == [RuleTrace("big", 1, False, "size >= large ✗ (size is medium)")]


def test_values_are_rendered_readably() -> None:
    ruleset = compile_rules('a: city = "New York" -> tag x\nb: tags contains vip -> tag y\nc: last_purchase_at > 2026-01-01 -> tag z\n')
    explanation = ruleset.explain({"city": 'Los "LA"\nAngeles', "tags": ["gold", "east"], "last_purchase_at": datetime(2025, 5, 1, 8, 30)})
    assert trace(explanation, "a").detail == 'city = "New York" ✗ (city is "Los \\"LA\\"\\nAngeles")'
    assert trace(explanation, "b").detail == "tags contains vip ✗ (tags is [east, gold])"
    assert trace(explanation, "c").detail == "last_purchase_at > 2026-01-01 ✗ (last_purchase_at is 2025-05-01 08:30:00)"
    assert trace(ruleset.explain({"tags": []}), "b").detail == "tags contains vip ✗ (tags is missing)"


def test_derived_day_metrics_show_the_value_at_as_of() -> None:
    ruleset = compile_rules("stale: days_since_purchase > 180 -> tag stale\n")
    explanation = ruleset.explain({"last_purchase_at": datetime(2026, 1, 1)}, as_of=datetime(2026, 2, 1))
    assert trace(explanation, "stale").detail == "days_since_purchase > 180 ✗ (days_since_purchase is 31)"


def test_trees_built_without_source_text_are_rendered_from_the_tree() -> None:
    condition = ast.And((ast.Comparison(ast.FieldRef("region"), "=", ast.Value("text", "east", "east")),
                         ast.Or((ast.Presence(ast.FieldRef("age"), False), ast.Not(ast.BoolConst(True))))))
    rule = ast.Rule(condition, (ast.Action("team", "a"),), "r", span=ast.Span(1, 1, 1, 5))
    explanation = Ruleset(ast.RuleFile((rule,))).explain({"region": "east", "age": 40})
    assert explanation.rules[0].detail == "age is missing ✗ (age is 40); not true ✗ (held: true ✓)"


@PROPERTY_SETTINGS
@given(
    statements=st.lists(
        st.tuples(conditions, st.sampled_from(["team a", "team b", "tag t", "segment s", "define", "otherwise"]), st.sampled_from(["tag u", "segment v", ""])),
        min_size=1,
        max_size=6,
    ),
    customers=st.lists(_customer_values(), min_size=1, max_size=5),
)
def test_explanations_agree_with_the_compiled_evaluator(statements: list[tuple[ast.Condition, str, str]], customers: list[dict[str, Any]]) -> None:
    built: list[ast.Statement] = []
    defined: list[str] = []
    for line, (condition, action, extra) in enumerate(statements, start=1):
        if defined and line % 2 == 0:  # reuse an earlier segment in some conditions
            condition = ast.And((condition, ast.SegmentRef(defined[-1])))
        span = ast.Span(line, 1, line, 2)
        if action == "define":
            name = f"seg{line}"
            built.append(ast.SegmentDef(name, condition, span=span))
            defined.append(name)
            continue
        actions = [ast.Action(*a.split(" ")) for a in ([action] if action != "otherwise" else ["team z"]) + ([extra] if extra else [])]
        built.append(ast.Rule(None if action == "otherwise" else condition, tuple(actions), span=span))  # type: ignore[arg-type]
    ruleset = Ruleset(ast.RuleFile(tuple(built)))
    for customer in customers:
        outcome = ruleset.evaluate(customer)
        explanation = ruleset.explain(customer)
        assert (explanation.team, explanation.deciding_rule, explanation.segments, explanation.tags) == (
            outcome.team, outcome.rule, outcome.segments, outcome.tags
        )
        for statement, traced in zip(built, explanation.rules, strict=False):
            if isinstance(statement, ast.SegmentDef):
                assert traced.matched == (statement.name in outcome.segments)
            assert traced.detail  # every statement says why
