"""Formatter: canonical layout, comments kept, and the two properties (same AST, idempotent)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmenta.dsl.ast import RuleFile, Statement
from segmenta.dsl.diagnostics import RuleError
from segmenta.dsl.formatter import format_source, format_statement
from segmenta.dsl.parser import parse
from tests.dsl.strategies import statements
from tests.dsl.test_parser import DOCS_EXAMPLE

MESSY = """

# head comment
SEGMENT high_value = total_spent>=100k OR purchase_count >= 20   # trailing
segment at_risk    = days_since_purchase > 180
    # inner comment
    AND open_complaints > 0



# routing
enterprise_east: size = large and (region = east or region = 'west') -> TEAM senior_sales
"east china": (a and b) and c->team "East Team",tag 'x y'   otherwise -> team general_pool
# end
"""

CANONICAL = """\
# head comment
segment high_value = total_spent >= 100k or purchase_count >= 20  # trailing
# inner comment
segment at_risk = days_since_purchase > 180 and open_complaints > 0

# routing
enterprise_east: size = large and (region = east or region = 'west') -> team senior_sales
"east china": (a and b) and c -> team "East Team", tag "x y"
otherwise -> team general_pool
# end
"""


def test_canonical_layout() -> None:
    assert format_source(MESSY) == CANONICAL


def test_formatting_keeps_the_tree_and_is_idempotent_on_examples() -> None:
    for source in (MESSY, DOCS_EXAMPLE, "", "# only a comment\n", "a -> team x"):
        formatted = format_source(source)
        assert parse(formatted)[0] == parse(source)[0]
        assert format_source(formatted) == formatted


def test_parentheses_are_minimal_but_keep_the_tree() -> None:
    source = "a or (b or c) -> team x\n(a or b) and not (c and d) -> team y\nnot not a and (b and c) -> tag z"
    assert format_source(source) == (
        "a or (b or c) -> team x\n(a or b) and not (c and d) -> team y\nnot not a and (b and c) -> tag z\n"
    )
    assert format_source("((a)) and ((b or c)) -> team x") == "a and (b or c) -> team x\n"


def test_names_are_quoted_only_when_needed() -> None:
    assert format_source("'and': x -> team 'two words', tag \"ok\"") == '"and": x -> team "two words", tag ok\n'


def test_syntax_errors_are_raised_not_formatted() -> None:
    with pytest.raises(RuleError) as raised:
        format_source("a = -> team x")
    assert raised.value.diagnostics[0].code == "syntax"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(statements, max_size=5))
def test_generated_trees_survive_formatting(generated: list[Statement]) -> None:
    text = "\n".join(format_statement(statement) for statement in generated)
    parsed, diagnostics = parse(text)
    assert diagnostics == []
    assert parsed == RuleFile(tuple(generated))
    formatted = format_source(text)
    assert parse(formatted)[0] == parsed
    assert format_source(formatted) == formatted


@settings(max_examples=100, deadline=None)
@given(
    st.lists(statements, min_size=1, max_size=4),
    st.lists(st.sampled_from(["\n", "  # note\n", "\n\n\n", "\n   ", "\n# own line\n"]), min_size=4, max_size=4),
)
def test_comments_and_blank_lines_do_not_change_the_tree(generated: list[Statement], gaps: list[str]) -> None:
    # Statements start on new lines: `segment s = a not b -> ...` on one line is ambiguous by design.
    text = "".join(format_statement(statement) + gaps[i % len(gaps)] for i, statement in enumerate(generated))
    formatted = format_source(text)
    assert parse(formatted)[0] == parse(text)[0]
    assert format_source(formatted) == formatted
