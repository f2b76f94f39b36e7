"""The typed syntax tree of a rule file; every node keeps its source span.

This module is the contract between the compiler passes: the parser produces it,
the checker, analysis, formatter and both compilers consume it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar
from typing import Literal as TypingLiteral


@dataclass(frozen=True)
class Span:
    """1-based lines and columns (columns in characters); end_column is one past the last character."""

    line: int
    column: int
    end_line: int
    end_column: int

    def cover(self, other: Span) -> Span:
        start = min((self.line, self.column), (other.line, other.column))
        end = max((self.end_line, self.end_column), (other.end_line, other.end_column))
        return Span(start[0], start[1], end[0], end[1])


NO_SPAN = Span(0, 0, 0, 0)

ValueKind = TypingLiteral["text", "number", "date", "bool"]


@dataclass(frozen=True)
class Value:
    """A literal.  `raw` is the source spelling (kept for the formatter and messages).

    text -> str, number -> float (suffixes k, m, 万, 亿 already applied), date -> datetime.date,
    bool -> bool.  `quoted` is True for a quoted string.
    """

    kind: ValueKind
    value: str | float | date | bool
    raw: str
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)
    quoted: bool = False


@dataclass(frozen=True)
class FieldRef:
    """A field by its rule-language name, e.g. `region`, `total_spent`, `attr.tier`."""

    name: str
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)

    @property
    def is_attribute(self) -> bool:
        return self.name.startswith("attr.")


CompareOp = TypingLiteral["=", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True)
class Comparison:
    subject: FieldRef
    op: CompareOp
    value: Value
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class InList:
    """`subject in (...)`, or `subject not in (...)` when negated (the exact complement)."""

    subject: FieldRef
    values: tuple[Value, ...]
    negated: bool = False
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Between:
    """Inclusive on both ends."""

    subject: FieldRef
    low: Value
    high: Value
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Like:
    """`*` any run, `?` one character, case-sensitive, whole value."""

    subject: FieldRef
    pattern: Value
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Contains:
    """Set membership on a set field (`tags`, `product_categories`)."""

    subject: FieldRef
    value: Value
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Presence:
    """`subject is present` (present=True) or `subject is missing` (present=False)."""

    subject: FieldRef
    present: bool
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class SegmentRef:
    """A bare identifier in boolean position: a segment defined earlier in the file."""

    name: str
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class BoolConst:
    value: bool
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Not:
    operand: Condition
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class And:
    operands: tuple[Condition, ...]
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Or:
    operands: tuple[Condition, ...]
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)


Predicate = Comparison | InList | Between | Like | Contains | Presence
Condition = Predicate | SegmentRef | BoolConst | Not | And | Or


ActionKind = TypingLiteral["team", "tag", "segment", "task"]


@dataclass(frozen=True)
class Action:
    """`team T`, `tag T`, `segment T`, or `task KIND [within N days]` (target = KIND).

    `within` is the number of `within N days` as written (the checker wants a whole number
    from 1 to MAX_TASK_DAYS) and `unit` its word (`day` or `days`); both None without it.
    """

    kind: ActionKind
    target: str
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)
    within: Value | None = None
    unit: str | None = dataclasses.field(default=None, compare=False)  # spelling only: the formatter writes day(s)
    unit_span: Span | None = dataclasses.field(default=None, compare=False)

    @property
    def due_days(self) -> int:
        """Days from the evaluation until the task is due (DEFAULT_TASK_DAYS without `within`)."""
        if self.within is None:
            return DEFAULT_TASK_DAYS
        return int(self.within.value)  # type: ignore[arg-type]  # a number: checked


# `task KIND` without `within N days` is due a week after the evaluation that creates it.
DEFAULT_TASK_DAYS = 7
MAX_TASK_DAYS = 3650


@dataclass(frozen=True)
class Rule:
    """`[label:] condition -> action, ...` or `otherwise -> action, ...` (condition None)."""

    condition: Condition | None
    actions: tuple[Action, ...]
    label: str | None = None
    label_span: Span | None = dataclasses.field(default=None, compare=False)
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)

    @property
    def is_otherwise(self) -> bool:
        return self.condition is None

    @property
    def display_name(self) -> str:
        """The label, or `line N` for an unlabelled rule (GraphQL `decidingRule`; docs/routing.md)."""
        return self.label if self.label is not None else f"line {self.span.line}"

    @property
    def team(self) -> str | None:
        for action in self.actions:
            if action.kind == "team":
                return action.target
        return None


@dataclass(frozen=True)
class SegmentDef:
    """`segment key = condition`: same as `condition -> segment key`, and names `key` for later rules."""

    name: str
    condition: Condition
    span: Span = dataclasses.field(default=NO_SPAN, compare=False)
    name_span: Span = dataclasses.field(default=NO_SPAN, compare=False)

    @property
    def display_name(self) -> str:
        return f"segment {self.name}"


Statement = SegmentDef | Rule


@dataclass(frozen=True)
class RuleFile:
    statements: tuple[Statement, ...]
    source: str = dataclasses.field(default="", compare=False, repr=False)


# ---------------------------------------------------------------------------
# Dispatch by node type: every pass over conditions looks its case up here.
# ---------------------------------------------------------------------------

PREDICATE_TYPES: tuple[type, ...] = (Comparison, InList, Between, Like, Contains, Presence)
CONDITION_TYPES: tuple[type, ...] = (*PREDICATE_TYPES, SegmentRef, BoolConst, Not, And, Or)

_Case = TypeVar("_Case")


class NodeTable(dict[type, _Case]):
    """A pass's case for each node type, looked up by the node's exact type.

    Built at import time, it refuses a table that misses one of `node_types` (or has
    a stranger), so adding a node type to the language fails every pass that has no
    case for it until it gets one; a node of an unknown type fails at the lookup.
    """

    def __init__(self, pass_name: str, cases: Mapping[type, _Case], node_types: tuple[type, ...] = CONDITION_TYPES) -> None:
        missing = [node_type.__name__ for node_type in node_types if node_type not in cases]
        strangers = [node_type.__name__ for node_type in cases if node_type not in node_types]
        if missing or strangers:
            raise TypeError(f"{pass_name}: no case for {missing}" if missing else f"{pass_name}: not node types {strangers}")
        super().__init__(cases)
        self.pass_name = pass_name

    def __missing__(self, node_type: type) -> _Case:
        raise TypeError(f"{self.pass_name} has no case for {node_type.__name__}")


CONNECTIVE_TYPES: tuple[type, ...] = (Not, And, Or)
LEAF_TYPES: tuple[type, ...] = (*PREDICATE_TYPES, SegmentRef, BoolConst)


def _no_operands(condition: Condition) -> tuple[Condition, ...]:
    return ()


def _not_operands(condition: Not) -> tuple[Condition, ...]:
    return (condition.operand,)


def _listed_operands(condition: And | Or) -> tuple[Condition, ...]:
    return condition.operands


_OPERANDS: NodeTable[Callable[[Any], tuple[Condition, ...]]] = NodeTable(
    "operands",
    {**dict.fromkeys(LEAF_TYPES, _no_operands), Not: _not_operands, And: _listed_operands, Or: _listed_operands},
)


def operands(condition: Condition) -> tuple[Condition, ...]:
    """The conditions directly inside `condition`: none for a predicate, segment reference or constant."""
    return _OPERANDS[type(condition)](condition)
