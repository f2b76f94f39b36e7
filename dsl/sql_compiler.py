"""Compile rule conditions and whole rule files to SQLAlchemy Core expressions (docs/sql-compilation.md).

The compiler never touches a database session: it asks a `SqlFieldSource` for the
column (or subquery) behind each field and returns expressions that a caller
selects, filters on or inserts from.  The semantics are exactly those of the
Python evaluator:

* two-valued logic: every compiled predicate is TRUE or FALSE, never SQL NULL, so
  `p` and `NOT p` partition the customers (a comparison on a missing value is
  false; `!=` and `not in` are the exact complements of `=` and `in`);
* literals are always bound parameters, never spliced into SQL text;
* dates compare by calendar day and day-based metrics are turned into range
  tests on the stored date they are measured from, against the constant
  `as_of`, so ordinary indexes serve them.

This module compiles whole rule files (the first-match team CASE, additive segments
and tags, and every output packed into integer codes); one condition is the job of
dsl.sql_conditions, which builds on dsl.sql_constructs (dialect-aware SQL) and
dsl.sql_days (whole-day arithmetic).  See docs/sql-compilation.md for the
translation table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import BigInteger, String, case, cast, literal, not_, null, true
from sqlalchemy.sql.elements import ColumnElement

from segmenta.dsl.ast import Condition, RuleFile, SegmentDef
from segmenta.dsl.outcome import TaskOutcome
from segmenta.dsl.sql_conditions import SqlConditionCompiler, SqlFieldSource
from segmenta.dsl.sql_constructs import any_of

# The label kind of a `-> task` action in the packed codes (segments and tags use their own kind).
TASK_LABEL = "task"


@dataclass(frozen=True)
class SqlRuleset:
    """A rule file as SQL expressions over one customer row.

    `team` and `rule` are NULL when no team rule decided; `segments` and `tags` hold
    one never-NULL boolean per segment key and tag that some rule can produce.
    """

    team: ColumnElement[Any]
    rule: ColumnElement[Any]
    segments: dict[str, ColumnElement[bool]]
    tags: dict[str, ColumnElement[bool]]
    tasks: dict[str, ColumnElement[bool]] = field(default_factory=dict)
    """Per task kind: whether some rule giving it matches."""


EMPTY_SEGMENTS: Mapping[str, ColumnElement[bool]] = MappingProxyType({})


def compile_condition(
    condition: Condition,
    fields: SqlFieldSource,
    *,
    as_of: datetime,
    segments: Mapping[str, ColumnElement[bool]] = EMPTY_SEGMENTS,
) -> ColumnElement[bool]:
    """One condition as a never-NULL boolean expression; segment references use `segments`."""
    return SqlConditionCompiler(fields, as_of, segments).compile(condition)


def compile_ruleset(rule_file: RuleFile, fields: SqlFieldSource, *, as_of: datetime) -> SqlRuleset:
    """Team, deciding rule, segments and tags of a whole (checked) rule file."""
    parts = _compile_parts(rule_file, fields, as_of)
    whens = [(when.lean, when.team, when.rule) for when in parts.team_whens]
    return SqlRuleset(
        team=_first_match(whens, 1, parts.otherwise),
        rule=_first_match(whens, 2, parts.otherwise),
        segments={key: any_of(conditions) for key, conditions in parts.segment_parts.items()},
        tags={key: any_of(conditions) for key, conditions in parts.tag_parts.items()},
        tasks={key: any_of(conditions) for key, conditions in parts.task_parts.items()},
    )


@dataclass(frozen=True)
class _TeamWhen:
    lean: ColumnElement[bool]
    team: str
    rule: str
    position: int  # of the statement in the file


@dataclass(frozen=True)
class _LabelSource:
    """A statement that gives a segment or tag, and what the first-match CASE tells about it.

    `when`: the index of the team WHEN whose condition this is; `otherwise_position`:
    set for `otherwise` statements (their condition is "no earlier team rule matched",
    known in every branch); otherwise the lean condition must be evaluated.
    """

    lean: ColumnElement[bool] | None
    when: int | None = None
    otherwise_position: int | None = None


@dataclass
class _Parts:
    team_whens: list[_TeamWhen] = field(default_factory=list)
    otherwise: tuple[str, str] | None = None  # (team, display name) of the first team `otherwise`
    otherwise_position: int | None = None
    segment_parts: dict[str, list[ColumnElement[bool]]] = field(default_factory=dict)  # strict conditions
    tag_parts: dict[str, list[ColumnElement[bool]]] = field(default_factory=dict)
    task_parts: dict[str, list[ColumnElement[bool]]] = field(default_factory=dict)
    # Every `-> task` action in file order; its label is (TASK_LABEL, its index here as text).
    task_actions: list[TaskOutcome] = field(default_factory=list)
    label_sources: dict[tuple[str, str], list[_LabelSource]] = field(default_factory=dict)


def _compile_parts(rule_file: RuleFile, fields: SqlFieldSource, as_of: datetime) -> _Parts:
    parts = _Parts()
    segment_conditions: dict[str, ColumnElement[bool]] = {}
    lean_segment_conditions: dict[str, ColumnElement[bool]] = {}
    earlier_team_conditions: list[ColumnElement[bool]] = []
    strict = SqlConditionCompiler(fields, as_of, segment_conditions)
    lean = SqlConditionCompiler(fields, as_of, lean_segment_conditions, strict=strict)

    for position, statement in enumerate(rule_file.statements):
        if isinstance(statement, SegmentDef):
            condition = strict.compile(statement.condition)
            lean_segment_conditions[statement.name] = lean.compile(statement.condition)
            segment_conditions[statement.name] = condition
            parts.segment_parts.setdefault(statement.name, []).append(condition)
            parts.label_sources.setdefault(("segment", statement.name), []).append(
                _LabelSource(lean_segment_conditions[statement.name])
            )
            continue
        if statement.condition is not None:
            condition = strict.compile(statement.condition)
        elif earlier_team_conditions:  # `otherwise`: exactly the customers no earlier team rule took
            condition = not_(any_of(earlier_team_conditions))
        else:
            condition = true()
        team = statement.team
        deciding = team is not None and parts.otherwise is None and statement.condition is not None
        if deciding:
            # Only CASE reads this one, and CASE takes NULL as not matched: the lean form suffices.
            parts.team_whens.append(
                _TeamWhen(lean.compile(statement.condition), team, statement.display_name, position)  # type: ignore[arg-type]
            )
        labels: list[tuple[str, str]] = [(action.kind, action.target) for action in statement.actions if action.kind in ("segment", "tag")]
        for action in statement.actions:
            if action.kind == "task":
                # One label per action, not per kind: the first matching one gives the rule and due days.
                labels.append((TASK_LABEL, str(len(parts.task_actions))))
                parts.task_actions.append(TaskOutcome(action.target, statement.display_name, action.due_days))
                parts.task_parts.setdefault(action.target, []).append(condition)
        if labels:
            if statement.condition is None:
                source = _LabelSource(None, otherwise_position=position)
            elif deciding:
                source = _LabelSource(parts.team_whens[-1].lean, when=len(parts.team_whens) - 1)
            else:
                source = _LabelSource(lean.compile(statement.condition))
            for kind, target in labels:
                if kind != TASK_LABEL:
                    (parts.segment_parts if kind == "segment" else parts.tag_parts).setdefault(target, []).append(condition)
                parts.label_sources.setdefault((kind, target), []).append(source)
        if team is None:
            continue
        if parts.otherwise is None and statement.is_otherwise:
            parts.otherwise = (team, statement.display_name)
            parts.otherwise_position = position
        earlier_team_conditions.append(condition)
    return parts


# ---------------------------------------------------------------------------
# Every output of a rule file as one integer per customer
# ---------------------------------------------------------------------------

# Bits per code column: SQLite and PostgreSQL (BIGINT) integers are signed 64-bit.
CODE_BITS = 62


@dataclass(frozen=True)
class DecidingRule:
    """A team rule that can decide: its team key and display name."""

    team: str
    rule: str


@dataclass(frozen=True)
class BitPosition:
    column: int  # index into PackedOutcome.codes
    mask: int


@dataclass(frozen=True)
class PackedOutcome:
    """Team decision, segments and tags of a rule file packed into integers (one per customer).

    `codes[0]` is ``extra + (decision << extra_bits) + label bits``: `decision` is
    0 when no team rule decides, else the 1-based index into `decisions`; `extra`
    is the caller's per-decision value (see `compile_packed`).  Labels that do not
    fit into `codes[0]` continue in `codes[1]`, … (label bits only).  Every code is
    one first-match CASE over the team rules: in the branch of rule k, the
    conditions of the team rules before k are known false and k's known true, so a
    tag or segment given by a team rule costs nothing there, and every other
    condition is evaluated at most once per customer.
    """

    codes: tuple[ColumnElement[int], ...]
    decisions: tuple[DecidingRule, ...]
    extra_bits: int
    decision_bits: int
    segments: dict[str, BitPosition]
    tags: dict[str, BitPosition]
    tasks: dict[str, tuple[tuple[TaskOutcome, BitPosition], ...]] = field(default_factory=dict)
    """Per task kind, each `-> task` action giving it (file order) and its bit: the kind is wanted
    when one is set, and the first set one gives the task's rule and due days."""

    def decision(self, code: int) -> int:
        return (code >> self.extra_bits) & ((1 << self.decision_bits) - 1)

    def extra(self, code: int) -> int:
        return code & ((1 << self.extra_bits) - 1)

    def decision_of(self, decision: int) -> DecidingRule | None:
        return None if decision == 0 else self.decisions[decision - 1]

    @staticmethod
    def has(codes: Sequence[int], position: BitPosition) -> bool:
        return bool(codes[position.column] & position.mask)


def compile_packed(
    rule_file: RuleFile,
    fields: SqlFieldSource,
    *,
    as_of: datetime,
    extra: Callable[[DecidingRule | None], ColumnElement[int]] | None = None,
    extra_bits: int = 0,
) -> PackedOutcome:
    """The rule file's outcome as `PackedOutcome` codes.

    `extra(decision)`, when given, is an integer expression in [0, 2**extra_bits)
    added to `codes[0]` in the branch where `decision` decides (None: no team rule
    decides): the caller can compare the customer's stored state with that outcome
    without evaluating the rules again.
    """
    if extra is not None and extra_bits <= 0:
        raise ValueError("extra needs extra_bits > 0")
    parts = _compile_parts(rule_file, fields, as_of)
    decisions = [DecidingRule(when.team, when.rule) for when in parts.team_whens]
    if parts.otherwise is not None:
        decisions.append(DecidingRule(*parts.otherwise))
    decision_bits = len(decisions).bit_length()
    labels = list(parts.label_sources)
    first_free = extra_bits + decision_bits
    if first_free >= CODE_BITS:
        raise ValueError("too many team rules to pack")
    positions: dict[tuple[str, str], BitPosition] = {}
    column, bit = 0, first_free
    for label in labels:
        if bit == CODE_BITS:
            column, bit = column + 1, 0
        positions[label] = BitPosition(column, 1 << bit)
        bit += 1
    codes = []
    for index in range(column + 1):
        in_column = [(parts.label_sources[label], positions[label].mask) for label in labels if positions[label].column == index]
        codes.append(
            _packed_code(parts, decisions, in_column, extra if index == 0 else None, extra_bits if index == 0 else None)
        )
    return PackedOutcome(
        codes=tuple(codes),
        decisions=tuple(decisions),
        extra_bits=extra_bits,
        decision_bits=decision_bits,
        segments={key: position for (kind, key), position in positions.items() if kind == "segment"},
        tags={key: position for (kind, key), position in positions.items() if kind == "tag"},
        tasks=_task_positions(parts, positions),
    )


def _task_positions(
    parts: _Parts, positions: Mapping[tuple[str, str], BitPosition]
) -> dict[str, tuple[tuple[TaskOutcome, BitPosition], ...]]:
    by_kind: dict[str, list[tuple[TaskOutcome, BitPosition]]] = {}
    for index, task in enumerate(parts.task_actions):
        by_kind.setdefault(task.kind, []).append((task, positions[(TASK_LABEL, str(index))]))
    return {kind: tuple(actions) for kind, actions in by_kind.items()}


def _known(parts: _Parts, source: _LabelSource, branch: int | None) -> bool | None:
    """The source's condition in the branch where team WHEN `branch` matched (None: no WHEN matched)."""
    if source.when is not None:
        if branch is None or source.when < branch:
            return False
        return True if source.when == branch else None
    if source.otherwise_position is not None:
        if branch is None:  # no team rule matched, unless an earlier `otherwise` took the customer
            return parts.otherwise_position is None or parts.otherwise_position >= source.otherwise_position
        # The deciding rule is a team rule before this `otherwise` (then it does not apply) or after it.
        return parts.team_whens[branch].position > source.otherwise_position
    return None


def _packed_code(
    parts: _Parts,
    decisions: Sequence[DecidingRule],
    labels: Sequence[tuple[list[_LabelSource], int]],
    extra: Callable[[DecidingRule | None], ColumnElement[int]] | None,
    extra_bits: int | None,
) -> ColumnElement[int]:
    def branch_value(branch: int | None) -> ColumnElement[int]:
        constant = 0
        terms: list[ColumnElement[int]] = []
        if extra_bits is not None:
            decision = (len(parts.team_whens) + 1 if parts.otherwise is not None else 0) if branch is None else branch + 1
            constant = decision << extra_bits
            if extra is not None:
                terms.append(extra(decisions[decision - 1] if decision else None))
        for sources, mask in labels:
            known = [_known(parts, source, branch) for source in sources]
            if any(value is True for value in known):
                constant |= mask
                continue
            unknown = [source.lean for source, value in zip(sources, known, strict=True) if value is None]
            if unknown:
                # CASE WHEN takes a NULL lean condition as not matched, exactly as FALSE.
                terms.append(case((any_of(unknown), literal(mask, BigInteger)), else_=literal(0, BigInteger)))  # type: ignore[arg-type]
        value: ColumnElement[int] = literal(constant, BigInteger)
        for term in terms:
            value = value + term
        return value

    if not parts.team_whens:
        return branch_value(None)
    return case(
        *[(when.lean, branch_value(index)) for index, when in enumerate(parts.team_whens)],
        else_=branch_value(None),
    )


def _first_match(
    whens: Sequence[tuple[ColumnElement[bool], str, str]], index: int, otherwise: tuple[str, str] | None
) -> ColumnElement[Any]:
    # A typed NULL: PostgreSQL cannot infer a type for a bare NULL in some contexts (e.g. a CASE of NULLs).
    fallback: ColumnElement[Any] = cast(null(), String) if otherwise is None else literal(otherwise[index - 1], String)
    if not whens:
        return fallback
    return case(*[(when[0], literal(when[index], String)) for when in whens], else_=fallback)
