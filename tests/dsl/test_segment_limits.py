"""Segment chains and deep conditions: a located `too-deep` / `too-large` error, never a RecursionError.

Every pass that recurses (the explainer, the analysis, SQLAlchemy compiling the SQL
of a file, where each use of a segment is its whole definition written out) gets at
most MAX_DEPTH levels, and the SQL of one file at most MAX_EXPANDED_SIZE nodes.
The deepest file the checker accepts is compiled and run on the database from a
stack already 300 frames deep, as a served request's is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.dsl import compile_rules
from segmenta.dsl.checker import check_condition
from segmenta.dsl.diagnostics import RuleError
from segmenta.dsl.extent import MAX_COPIED, MAX_DEPTH
from segmenta.dsl.formatter import format_source
from segmenta.dsl.parser import parse, parse_condition
from segmenta.dsl.pipeline import check_source
from segmenta.dsl.sql_compiler import compile_packed
from segmenta.storage.rule_fields import CustomerFields, evaluate_in_database
from tests.dsl.test_sql_compiler import Person, insert_people

T = TypeVar("T")
AS_OF = datetime(2026, 3, 1)
SERVER_STACK = 300  # frames a request has used before it compiles SQL (uvicorn, Starlette, Strawberry, asyncio)


def chain(length: int, body: str = "s{previous}") -> str:
    """`segment s1 = age = 1`, then each segment built on the one before, then a rule on the last."""
    lines = ["segment s1 = age = 1"]
    lines += [f"segment s{i} = " + body.format(previous=i - 1, i=i) for i in range(2, length + 1)]
    lines.append(f"r: s{length} -> team a, tag t")
    return "\n".join(lines) + "\n"


def alternating(depth: int) -> str:
    """`region != x0 or (region != x1 and (...))`: `depth` levels, the costliest shape for SQLAlchemy."""
    condition = f"region != x{depth - 1}"
    for level in range(depth - 2, -1, -1):
        condition = f"region != x{level} {'and' if level % 2 else 'or'} ({condition})"
    return condition


def errors(source: str) -> list[tuple[str, int, int, str]]:
    return [(d.code, d.line, d.column, d.message) for d in check_source(source).diagnostics if d.is_error]


def at_depth(frames: int, action: Callable[[], T]) -> T:
    return action() if frames == 0 else at_depth(frames - 1, action)


def test_a_chain_of_400_segments_is_one_located_error() -> None:
    source = chain(400)
    found = errors(source)
    assert found == [("too-deep", MAX_DEPTH + 1, 15, "segment chain too deep: with the segments it uses written "
                      f"out, this condition is {MAX_DEPTH + 1} levels deep (at most {MAX_DEPTH})")]
    with pytest.raises(RuleError) as raised:
        compile_rules(source)
    assert raised.value.diagnostics[0].code == "too-deep"
    assert format_source(source).count("segment") == 400  # the formatter prints names, it does not expand


def test_the_longest_chain_allowed_compiles_and_explains() -> None:
    longest = MAX_DEPTH - 1  # the rule that uses the last segment is one level more
    rules = compile_rules(chain(longest))
    assert rules.evaluate({"age": 1}).team == "a"
    explanation = at_depth(SERVER_STACK, lambda: rules.explain({"age": 2}))
    assert explanation.team is None and f"s{longest} ✗" in explanation.rules[-1].detail
    assert [code for code, *_ in errors(chain(longest + 1))] == ["too-deep"]


def test_segments_that_multiply_at_every_step_are_too_large() -> None:
    """`s2 = s1 or s1 or ... (8 times)`, ...: 8^11 copies of s1 once written out, 13 short lines of text."""
    found = errors(chain(12, " or ".join(["s{previous}"] * 8)))
    # s5 brings 8^4 copies of s1 (and their `or`s): past the limit.
    assert [(code, line, column) for code, line, column, _message in found] == [("too-large", 5, 14)]
    assert f"they add more than {MAX_COPIED} parts" in found[0][3]


def test_copied_subqueries_count_more() -> None:
    """Each `tags contains` is a subquery that PostgreSQL plans in about 1.5 ms: 2^11 copies took 280 s."""
    doubling = chain(10, "s{previous} or s{previous}")
    assert [(code, line) for code, line, *_ in errors(doubling)] == []
    subqueries = doubling.replace("segment s1 = age = 1", "segment s1 = tags contains vip")
    assert [(code, line) for code, line, *_ in errors(subqueries)] == [("too-large", 10)]


def test_a_deep_written_out_condition_is_refused_by_the_checker() -> None:
    assert errors(f"r: {alternating(MAX_DEPTH)} -> team a\n") == []
    assert errors(f"r: {alternating(MAX_DEPTH + 1)} -> team a\n") == [
        ("too-deep", 1, 4, f"condition nested too deep: {MAX_DEPTH + 1} levels of `and`, `or` and `not` "
         f"(at most {MAX_DEPTH})")
    ]


def test_a_where_condition_gets_the_same_limit() -> None:
    deep, diagnostics = parse_condition(alternating(MAX_DEPTH + 1))
    assert deep is not None and not diagnostics
    assert [d.code for d in check_condition(deep)] == ["too-deep"]
    fine, _ = parse_condition(alternating(MAX_DEPTH))
    assert fine is not None and check_condition(fine) == []


def test_a_segment_reported_once_is_not_reported_at_every_use() -> None:
    source = chain(MAX_DEPTH + 1) + "\n".join(f"u{i}: s{MAX_DEPTH + 1} -> tag u" for i in range(5)) + "\n"
    assert [code for code, *_ in errors(source)] == ["too-deep"]


def _deepest_file() -> str:
    # A segment chain of not/and (three levels per segment), written-out rules at MAX_DEPTH, and an
    # `otherwise` with a tag: the CASE of the packed outcome nests a few levels more than the conditions.
    segments = (MAX_DEPTH - 2) // 3 + 1  # s_k is 3k - 2 deep, and the rule using it one more
    source = chain(segments, "not (s{previous} and region != x{i})")
    deepest = alternating(MAX_DEPTH)
    return source + f"w: {deepest} -> tag w\nv: {deepest} -> team b\notherwise -> team c, tag z\n"


def test_the_deepest_file_allowed_compiles_to_sql_on_a_served_stack() -> None:
    rule_file, diagnostics = parse(_deepest_file())
    assert not diagnostics and check_source(rule_file.source).ok
    packed = compile_packed(rule_file, CustomerFields(), as_of=AS_OF)
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        sql = at_depth(SERVER_STACK, lambda dialect=dialect: str(select(*packed.codes).compile(dialect=dialect)))
        assert "CASE" in sql


async def test_the_deepest_file_allowed_runs_on_the_database(session: AsyncSession) -> None:
    rules = compile_rules(_deepest_file())
    people = [Person(f"p{age}{region}", {"age": float(age), "region": region})
              for age in (1, 2) for region in ("x1", "x3", "east")]
    ids = await insert_people(session, people)
    # The async session cannot be driven from inside the extra frames; the compile it does is the part
    # that recurses, and test_the_deepest_file_allowed_compiles_to_sql_on_a_served_stack covers that.
    outcomes = await evaluate_in_database(session, rules.rule_file, AS_OF)
    for person in people:
        expected = rules.evaluate(_mapping(person.columns))
        actual = outcomes[ids[person.code]]
        assert (actual.team, actual.segments, actual.tags) == (
            expected.team, frozenset(expected.segments), frozenset(expected.tags)
        ), person


def _mapping(columns: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in columns.items() if value is not None}
