"""`compile_packed`: a rule file's team decision, segments and tags as integer codes.

The differential property runs the same random populations and rule files as
tests/dsl/test_differential.py and decodes the codes computed in the database; every
customer's team, deciding rule, segments and tags must equal the Python evaluator's.
Hand-written cases pin the first-match knowledge (`otherwise` with tags, a tag on a
team rule that loses to an earlier one), the caller's per-decision value, and labels
spilling into a second code column.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Integer, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.dsl import sql_compiler
from segmenta.dsl.formatter import format_statement
from segmenta.dsl.parser import parse
from segmenta.dsl.ruleset import Ruleset
from segmenta.dsl.sql_compiler import DecidingRule, PackedOutcome, compile_packed
from segmenta.storage.models import Customer
from segmenta.storage.rule_fields import CustomerFields
from tests.dsl.test_differential import AS_OFS, _person, _rule_file, evaluator_mapping
from tests.dsl.test_sql_compiler import Person, insert_people, remove_everyone

AS_OF = datetime(2026, 3, 1, 12, 0)
customers = Customer.__table__


async def decoded(
    session: AsyncSession, packed: PackedOutcome
) -> dict[int, tuple[Any, ...]]:
    """Per customer id: team, rule, segments, tags and the extra value, decoded from the codes."""
    rows = await session.execute(select(customers.c.id, *packed.codes))
    outcomes = {}
    for row in rows:
        codes: Sequence[int] = row[1:]
        decision = packed.decision_of(packed.decision(codes[0]))
        outcomes[row[0]] = (
            None if decision is None else decision.team,
            None if decision is None else decision.rule,
            frozenset(key for key, position in packed.segments.items() if packed.has(codes, position)),
            frozenset(key for key, position in packed.tags.items() if packed.has(codes, position)),
            packed.extra(codes[0]),
            # Per task kind, the first of its actions whose bit is set (rule and due days).
            frozenset(
                next(task for task, position in actions if packed.has(codes, position))
                for actions in packed.tasks.values()
                if any(packed.has(codes, position) for _, position in actions)
            ),
        )
    return outcomes


def rule_length(decision: DecidingRule | None) -> Any:
    """A per-decision value for the `extra` bits: the deciding rule's name length mod 4."""
    return literal(0 if decision is None else len(decision.rule) % 4, Integer)


EXAMPLES = int(os.environ.get("SEGMENTA_DIFFERENTIAL_EXAMPLES", "40"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data(), code_bits=st.sampled_from([sql_compiler.CODE_BITS, 6]))
async def test_decoded_codes_agree_with_the_python_evaluator(
    session: AsyncSession, data: st.DataObject, code_bits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 6 bits per column forces most rule files to spill labels into further code columns.
    monkeypatch.setattr(sql_compiler, "CODE_BITS", code_bits)
    as_of = data.draw(st.sampled_from(AS_OFS), label="as_of")
    people = [_person(data, index, as_of) for index in range(data.draw(st.integers(1, 8)))]
    statements = _rule_file(data, as_of)
    source = "\n".join(format_statement(statement) for statement in statements)
    rule_file, diagnostics = parse(source)
    assert not [d for d in diagnostics if d.is_error], (source, diagnostics)

    await remove_everyone(session)
    ids = await insert_people(session, people)
    packed = compile_packed(rule_file, CustomerFields(), as_of=as_of, extra=rule_length, extra_bits=2)
    outcomes = await decoded(session, packed)
    ruleset = Ruleset(rule_file)
    for person in people:
        expected = ruleset.evaluate(evaluator_mapping(person), as_of)
        team, rule, segments, tags, extra, tasks = outcomes[ids[person.code]]
        assert (team, rule, segments, tags, tasks) == (
            expected.team, expected.rule, frozenset(expected.segments), frozenset(expected.tags), frozenset(expected.tasks)
        ), f"customer {person}\nrules:\n{source}"
        assert extra == (0 if rule is None else len(rule) % 4)


def _people(*rows: dict[str, Any]) -> list[Person]:
    return [Person(code=f"c{index}", columns=row) for index, row in enumerate(rows)]


async def _outcomes(session: AsyncSession, source: str, rows: list[dict[str, Any]], **options: Any) -> dict[str, tuple[Any, ...]]:
    rule_file, diagnostics = parse(source)
    assert not [d for d in diagnostics if d.is_error], diagnostics
    await remove_everyone(session)
    ids = await insert_people(session, _people(*rows))
    outcomes = await decoded(session, compile_packed(rule_file, CustomerFields(), as_of=AS_OF, **options))
    return {f"c{index}": outcomes[ids[f"c{index}"]][:4] for index in range(len(rows))}


async def test_tags_of_team_rules_and_otherwise_follow_first_match_and_stay_additive(session: AsyncSession) -> None:
    source = (
        "big: total_spent >= 1000 -> team senior_sales, tag big\n"
        "east: region = east -> team east_desk, tag eastern\n"
        "otherwise -> team general_pool, tag rest\n"
    )
    outcomes = await _outcomes(
        session,
        source,
        [
            {"name": "a", "total_spent": 5000.0, "region": "east"},  # big decides; east still tags
            {"name": "b", "total_spent": 10.0, "region": "east"},
            {"name": "c", "total_spent": 10.0, "region": None},
        ],
    )
    assert outcomes == {
        "c0": ("senior_sales", "big", frozenset(), frozenset({"big", "eastern"})),
        "c1": ("east_desk", "east", frozenset(), frozenset({"eastern"})),
        "c2": ("general_pool", "line 3", frozenset(), frozenset({"rest"})),
    }


async def test_an_otherwise_without_team_and_segments_used_by_rules(session: AsyncSession) -> None:
    source = (
        "segment rich = total_spent >= 1000\n"
        "first: rich and region = east -> team east_desk\n"
        "otherwise -> tag unrouted, segment leftovers\n"
        "west: region = west -> team success, segment westerners\n"
    )
    outcomes = await _outcomes(
        session,
        source,
        [
            {"name": "a", "total_spent": 5000.0, "region": "east"},
            {"name": "b", "total_spent": 5000.0, "region": "west"},
            {"name": "c", "total_spent": None, "region": None},
        ],
    )
    assert outcomes == {
        "c0": ("east_desk", "first", frozenset({"rich"}), frozenset()),
        # the team-less `otherwise` takes everyone the team rules before it did not take
        "c1": ("success", "west", frozenset({"rich", "leftovers", "westerners"}), frozenset({"unrouted"})),
        "c2": (None, None, frozenset({"leftovers"}), frozenset({"unrouted"})),
    }


async def test_the_extra_value_is_added_in_the_deciding_branch_only(session: AsyncSession) -> None:
    source = "east: region = east -> team east_desk, tag eastern\nwest: region = west -> team success\n"
    rule_file, _ = parse(source)
    await remove_everyone(session)
    ids = await insert_people(session, _people({"name": "a", "region": "east"}, {"name": "b", "region": "west"},
                                               {"name": "c", "region": None}))
    values = {None: 3, "east": 2, "west": 1}
    packed = compile_packed(
        rule_file, CustomerFields(), as_of=AS_OF,
        extra=lambda decision: literal(values[None if decision is None else decision.rule], Integer), extra_bits=2,
    )
    outcomes = await decoded(session, packed)
    assert [outcomes[ids[code]][4] for code in ("c0", "c1", "c2")] == [2, 1, 3]
    assert [packed.decision_of(d) for d in (1, 2)] == list(packed.decisions)
    assert packed.decision_of(0) is None


def test_one_code_column_until_the_labels_no_longer_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    source = "".join(f"r{index}: region = r{index} -> team t, tag g{index}\n" for index in range(10))
    rule_file, _ = parse(source)
    packed = compile_packed(rule_file, CustomerFields(), as_of=AS_OF)
    assert len(packed.codes) == 1 and packed.decision_bits == 4  # 10 decisions need 4 bits
    monkeypatch.setattr(sql_compiler, "CODE_BITS", 8)
    spilled = compile_packed(rule_file, CustomerFields(), as_of=AS_OF, extra=rule_length, extra_bits=2)
    # 2 extra + 4 decision bits leave 2 labels in the first column, then 8 per column.
    assert [position.column for position in spilled.tags.values()] == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert len(spilled.codes) == 2


def test_extra_needs_bits() -> None:
    rule_file, _ = parse("east: region = east -> team east_desk\n")
    with pytest.raises(ValueError):
        compile_packed(rule_file, CustomerFields(), as_of=AS_OF, extra=rule_length)
