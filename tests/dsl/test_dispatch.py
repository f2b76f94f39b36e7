"""Every pass over conditions dispatches by node type (segmenta.dsl.ast.NodeTable): a pass
that misses a node type refuses to load, and a node of an unknown type fails loudly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest

from segmenta.dsl import ast
from segmenta.dsl.explain import explain
from segmenta.dsl.formatter import format_condition
from segmenta.dsl.parser import parse
from segmenta.dsl.python_compiler import compile_rule_file


@dataclass(frozen=True)
class Unknown:
    """A node type no pass knows."""

    span: ast.Span = ast.NO_SPAN


def test_a_table_without_a_case_for_every_node_type_is_refused() -> None:
    cases = {node_type: str for node_type in ast.CONDITION_TYPES if node_type is not ast.Like}
    with pytest.raises(TypeError, match=r"pass: no case for \['Like'\]"):
        ast.NodeTable("pass", cases)
    with pytest.raises(TypeError, match=r"not node types \['Unknown'\]"):
        ast.NodeTable("pass", {**dict.fromkeys(ast.CONDITION_TYPES, str), Unknown: str})


def test_a_node_of_an_unknown_type_fails_at_the_lookup() -> None:
    table = ast.NodeTable("the pass", dict.fromkeys(ast.CONDITION_TYPES, str))
    with pytest.raises(TypeError, match="the pass has no case for Unknown"):
        table[Unknown]


def test_the_passes_refuse_an_unknown_node() -> None:
    rule = ast.Rule(Unknown(), (ast.Action("team", "x"),))  # type: ignore[arg-type]
    rule_file = ast.RuleFile((rule,))
    with pytest.raises(TypeError, match="python compiler has no case for Unknown"):
        compile_rule_file(rule_file)
    with pytest.raises(TypeError, match="has no case for Unknown"):
        explain(rule_file, {}, datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="formatter has no case for Unknown"):
        format_condition(Unknown())  # type: ignore[arg-type]


def test_operands_of_each_node() -> None:
    rule_file, _ = parse("r: not (a = 1 or b = 2) and c is present -> team x\n")
    condition = rule_file.statements[0].condition
    assert isinstance(condition, ast.And)
    negation, presence = ast.operands(condition)
    assert isinstance(negation, ast.Not) and isinstance(presence, ast.Presence)
    assert isinstance(ast.operands(negation)[0], ast.Or)
    assert ast.operands(presence) == ()
