"""Fuzzing the parser, the checker and both evaluators with hostile rule text.

Hypothesis writes rule files the way an attacker would: any Unicode (NUL and lone
surrogates included), identifiers and strings thousands of characters long, deep
nesting, like patterns full of `*`, numbers at the edge of a double (1e308, 9e999,
-0), the first and last calendar days, and long or multiplying segment chains.
The parser and the checker must answer with located diagnostics, never raise; a
file they accept must compile, and the Python evaluator and the SQL the database
runs must give every customer the same team, rule, segments and tags, in bounded time.
"""

from __future__ import annotations

import time
from datetime import date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.dsl.parser import parse, parse_condition
from segmenta.dsl.pipeline import check_source
from segmenta.dsl.ruleset import Ruleset
from segmenta.storage.rule_fields import evaluate_in_database
from tests.dsl.test_differential import evaluator_mapping
from tests.dsl.test_sql_compiler import Person, insert_people, remove_everyone

AS_OF = datetime(2026, 6, 15, 12, 0)
# Generous bounds for a loaded 2-core machine; each step takes milliseconds.
CHECK_SECONDS = 10.0
EVALUATE_SECONDS = 20.0

any_text = st.text(st.characters(codec=None), max_size=40)  # every code point, NUL and surrogates included
long_word = st.integers(1, 3_000).map(lambda n: "w" * n)
# Spellings the grammar takes, at the edges of a double: the largest, the smallest subnormal, -0, 10^308 * 10^8.
numbers = st.sampled_from(["-0", "0", "-0.0", "1" + "0" * 308, "17976931348623157" + "0" * 292, "0." + "0" * 323 + "5",
                           "0.000000000000000000001", "1" + "0" * 300 + "亿", "-1.5m", "3", "-1"])
# ... and spellings it refuses: exponents, overflow to infinity.
bad_numbers = st.sampled_from(["1e308", "9e999", "9" * 400, "1" + "0" * 308 + "亿", "4.9e-324"])
dates = st.sampled_from(["9999-12-31", "0001-01-01", "2024-02-29", "2026-06-15", "2026-06-14"])
bad_dates = st.sampled_from(["2023-02-29", "0000-01-01", "2026-13-01", "99999-01-01"])
like_patterns = st.text(st.sampled_from(list("a*?%_[]!\\华")), max_size=60) | st.integers(10, 60).map(
    lambda stars: "*a" * stars + "*b"
)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


@st.composite
def predicates(draw: st.DrawFn, hostile: bool) -> str:
    """One comparison; `hostile` adds spellings the parser must refuse and arbitrary text."""
    shapes = ["text", "number", "date", "like", "tags", "attr"] + (["raw", "bad_number", "bad_date"] if hostile else [])
    shape = draw(st.sampled_from(shapes))
    if shape == "bad_number":
        return f"age > {draw(bad_numbers)}"
    if shape == "bad_date":
        return f"birthday = {draw(bad_dates)}"
    if shape == "text":
        return f"{draw(st.sampled_from(['name', 'region', 'city']))} = {quoted(draw(any_text | long_word))}"
    if shape == "number":
        op = draw(st.sampled_from(["=", "!=", "<", ">=", "between"]))
        if op == "between":
            return f"age between {draw(numbers)} and {draw(numbers)}"
        return f"{draw(st.sampled_from(['age', 'income', 'total_spent']))} {op} {draw(numbers)}"
    if shape == "date":
        return f"{draw(st.sampled_from(['birthday', 'created_at']))} {draw(st.sampled_from(['=', '<', '>=']))} {draw(dates)}"
    if shape == "like":
        return f"name like {quoted(draw(like_patterns))}"
    if shape == "tags":
        return f"tags contains {quoted(draw(any_text))}"
    if shape == "attr":
        return f"attr.{draw(long_word)} {draw(st.sampled_from(['=', '>']))} {draw(numbers)}"
    return draw(any_text)  # anything at all where a condition belongs


@st.composite
def conditions(draw: st.DrawFn, segments: list[str], hostile: bool, depth: int = 0) -> str:
    choice = draw(st.sampled_from(["leaf", "leaf", "leaf", "not", "and", "or", "deep"] + (["segment"] if segments else [])))
    predicate = predicates(hostile)
    if choice == "leaf" or depth > 4:
        return draw(predicate)
    if choice == "segment":
        return draw(st.sampled_from(segments))
    if choice == "deep":  # near and past the depth limit, written out
        levels = draw(st.integers(1, 30))
        inner = draw(predicate)
        return "".join(f"{draw(predicate)} {'and' if i % 2 else 'or'} (" for i in range(levels)) + inner + ")" * levels
    if choice == "not":
        return f"not ({draw(conditions(segments, hostile, depth + 1))})"
    operands = [draw(conditions(segments, hostile, depth + 1)) for _ in range(draw(st.integers(2, 3)))]
    return "(" + f" {choice} ".join(operands) + ")"


@st.composite
def rule_files(draw: st.DrawFn, hostile: bool = True) -> str:
    lines: list[str] = []
    segments: list[str] = []
    if draw(st.booleans()):  # a chain, sometimes long enough to pass the depth limit, sometimes multiplying
        length = draw(st.integers(2, 40))
        fan_out = draw(st.integers(1, 4))
        lines.append(f"segment c1 = {draw(predicates(hostile))}")
        lines += [f"segment c{i} = " + " or ".join([f"c{i - 1}"] * fan_out) for i in range(2, length + 1)]
        segments.append(f"c{length}")
    for index in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["segment", "rule", "rule"]))
        if kind == "segment":
            name = draw(st.sampled_from([f"s{index}", "w" * draw(st.integers(1, 2_000))]))
            lines.append(f"segment {name} = {draw(conditions(segments, hostile))}")
            segments.append(name)
        else:
            team = draw(st.sampled_from(["a", "b", quoted(draw(any_text)), "t" * 3_000]))
            label = draw(st.sampled_from(["", f"r{index}: ", quoted(draw(any_text)) + ": "]))
            lines.append(f"{label}{draw(conditions(segments, hostile))} -> team {team}, tag x")
    if draw(st.booleans()):
        lines.append("otherwise -> team rest")
    return "\n".join(lines) + "\n"


def _population() -> list[Person]:
    return [
        Person("p0", {"name": "a" * 150, "region": "华东", "age": 0.0, "income": 1e308,
                      "birthday": date(2000, 2, 29), "created_at": datetime(2001, 1, 1)}, tags=["x", "\x7f"]),
        Person("p1", {"name": "ab", "region": "", "age": -0.0, "total_spent": 0.0, "birthday": date(1, 1, 1)}),
        Person("p2", {"name": "*a?", "city": "w" * 100, "age": 4.9e-324, "birthday": date(9999, 12, 31),
                      "created_at": datetime(2026, 6, 15, 11, 59)}, attributes={"w": 3.0}),  # type: ignore[dict-item]
        Person("p3", {"name": "a%b_c[", "age": None}),
    ]


def _timed(action: object) -> tuple[object, float]:
    started = time.perf_counter()
    result = action()  # type: ignore[operator]
    return result, time.perf_counter() - started


def _assert_located(source: str, checked: object) -> None:
    for diagnostic in checked.diagnostics:  # type: ignore[attr-defined]
        assert diagnostic.line >= 1 and diagnostic.column >= 1, (diagnostic, source[:200])
        assert (diagnostic.end_line, diagnostic.end_column) > (diagnostic.line, diagnostic.column), diagnostic


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(source=rule_files() | any_text)
def test_parser_and_checker_only_ever_give_diagnostics(source: str) -> None:
    checked, seconds = _timed(lambda: check_source(source))
    assert seconds < CHECK_SECONDS
    _assert_located(source, checked)
    condition, diagnostics = parse_condition(source.split("\n", 1)[0])
    assert condition is not None or any(d.is_error for d in diagnostics)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.data_too_large])
@given(source=rule_files(hostile=False))
async def test_accepted_files_evaluate_the_same_in_python_and_sql(session: AsyncSession, source: str) -> None:
    await _assert_python_and_sql_agree(session, source)


def _multiplying_chain(copies: int, levels: int) -> str:
    lines = ['segment c1 = name like "a*"']
    lines += [f"segment c{n} = " + " or ".join([f"c{n - 1}"] * copies) for n in range(2, levels + 1)]
    return "\n".join([*lines, f"r: c{levels} -> team t", "otherwise -> team u"]) + "\n"


# SQLite refuses an expression tree deeper than 1,000, and SQLAlchemy flattened nested ORs into one
# chain as deep as its terms: each of these was "Expression tree is too large" before the SQL
# compiler grouped long and nested lists.
DEEP_IN_SQL = {
    "segments used four times, five levels": _multiplying_chain(4, 6),
    "1,100 comparisons in one condition": "r: " + " or ".join(f"age = {n}" for n in range(1100)) + " -> team t\n",
    "1,100 conjuncts in one condition": "r: " + " and ".join(f"age != {n}" for n in range(1100)) + " -> team t\n",
    "otherwise after 1,100 rules": "".join(f"r{n}: age = {n} -> team t\n" for n in range(1100)) + "otherwise -> team u\n",
}


@pytest.mark.parametrize("source", DEEP_IN_SQL.values(), ids=DEEP_IN_SQL.keys())
async def test_long_and_nested_conditions_stay_within_sqlites_expression_depth(session: AsyncSession, source: str) -> None:
    assert check_source(source).ok
    await _assert_python_and_sql_agree(session, source)


async def _assert_python_and_sql_agree(session: AsyncSession, source: str) -> None:
    checked = check_source(source)
    if not checked.ok:
        assert any(d.is_error for d in checked.diagnostics)
        return
    ruleset, seconds = _timed(lambda: Ruleset(checked.rule_file, checked.diagnostics))
    assert seconds < EVALUATE_SECONDS
    people = _population()
    await remove_everyone(session)
    ids = await insert_people(session, people)
    started = time.perf_counter()
    in_database = await evaluate_in_database(session, checked.rule_file, AS_OF)
    for person in people:
        expected = ruleset.evaluate(evaluator_mapping(person), AS_OF)  # type: ignore[attr-defined]
        ruleset.explain(evaluator_mapping(person), AS_OF)  # type: ignore[attr-defined]
        actual = in_database[ids[person.code]]
        assert (actual.team, actual.rule, actual.segments, actual.tags) == (
            expected.team, expected.rule, frozenset(expected.segments), frozenset(expected.tags)
        ), f"customer {person.code}\nrules:\n{source[:2000]}"
    assert time.perf_counter() - started < EVALUATE_SECONDS


def test_strings_no_database_can_hold_are_located_errors() -> None:
    """PostgreSQL refuses a NUL in text and the drivers a lone surrogate: the parser says so first."""
    _, diagnostics = parse('r: name = "a\x00b" -> team x\ns: name like "*\ud800" -> team y\nt: name = "ok" -> team z\n')
    assert [(d.code, d.line, d.column, d.end_column, d.message) for d in diagnostics] == [
        ("syntax", 1, 11, 16, "a string cannot contain U+0000"),
        ("syntax", 2, 14, 18, "a string cannot contain U+D800"),
    ]
