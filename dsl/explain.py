"""Explain one customer's routing: every statement, whether it matched, and why not.

A small interpreter walks the syntax tree with the same value views as the
generated evaluator (dsl.python_compiler), so the team, segments and tags it reports
are the compiled evaluator's (a property test holds the two together).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from segmenta.dsl import ast
from segmenta.dsl.fields import literal_value, naive_utc, rank
from segmenta.dsl.like import like_regex
from segmenta.dsl.python_compiler import (
    ORDER_OPS,
    VIEWS,
    TaskOutcome,
    as_members,
    as_text,
    field_spec,
    pattern_text,
    read_field,
    set_is_missing,
)

PASS = "✓"
FAIL = "✗"

StatementKind = Literal["segment", "rule"]


@dataclass(frozen=True)
class RuleTrace:
    """One statement of the file for one customer.

    `label` is the rule's label, `line N` for an unlabelled rule, or `segment K`.
    `detail` says why it matched or, for a statement that did not, the first
    comparison that failed with the customer's actual value.
    """

    label: str
    line: int
    matched: bool
    detail: str
    kind: StatementKind = "rule"
    decided: bool = False


@dataclass
class Explanation:
    team: str | None
    deciding_rule: str | None
    segments: tuple[str, ...]
    tags: tuple[str, ...]
    rules: list[RuleTrace]
    notes: list[str] = field(default_factory=list)
    """Extra lines callers add (e.g. the domain layer's manager, capacity and lock effects)."""
    tasks: tuple[TaskOutcome, ...] = ()
    """The task kinds the rules give, each with the first matching rule giving it and its due days."""

    @property
    def lines(self) -> list[str]:
        if self.team is None:
            lines = ["Team: none (no team rule matched)"]
        else:
            lines = [f"Team: {self.team} (decided by {self.deciding_rule})"]
        lines.append("Segments: " + (", ".join(self.segments) if self.segments else "none"))
        lines.append("Tags: " + (", ".join(self.tags) if self.tags else "none"))
        if self.tasks:
            lines.append("Tasks: " + ", ".join(f"{task.kind} within {task.due_days} days (rule {task.rule})" for task in self.tasks))
        lines.extend(self.notes)
        lines.append("Rules:")
        for trace in self.rules:
            mark = PASS if trace.matched else FAIL
            where = "" if trace.label == f"line {trace.line}" else f" (line {trace.line})"
            lines.append(f"  {mark} {trace.label}{where}: {trace.detail}")
        return lines

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# ---------------------------------------------------------------------------
# Rendering conditions and values.
# ---------------------------------------------------------------------------

_BARE_WORD = re.compile(r"[^\W\d][\w-]*\Z")


def format_value(value: Any) -> str:
    """A customer's value as it appears in an explanation."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value if _BARE_WORD.match(value) else _quote(value)
    members = as_members(value)
    if members is not None:
        return "[" + ", ".join(sorted(format_value(member) for member in members)) + "]"
    return _quote(repr(value))


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def _literal(value: ast.Value) -> str:
    return value.raw if value.raw else format_value(value.value)


def _balanced(text: str) -> bool:
    """Whether the parentheses outside quoted strings pair up (a slice cut mid-group does not)."""
    depth = 0
    quote: str | None = None
    for char in text:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


class _Renderer:
    """Condition text: the source slice when the file's source is at hand, else rebuilt from the tree."""

    def __init__(self, source: str) -> None:
        self.lines = source.split("\n") if source else []

    def render(self, condition: ast.Condition) -> str:
        sliced = self._slice(condition.span)
        return sliced if sliced is not None else self._rebuild(condition)

    def _slice(self, span: ast.Span) -> str | None:
        if not self.lines or span.line < 1 or span.end_line < span.line or span.end_line > len(self.lines):
            return None
        if span.line == span.end_line:
            text = self.lines[span.line - 1][span.column - 1 : span.end_column - 1]
        else:
            parts = [self.lines[span.line - 1][span.column - 1 :]]
            parts += self.lines[span.line : span.end_line - 1]
            parts.append(self.lines[span.end_line - 1][: span.end_column - 1])
            text = " ".join(part.strip() for part in parts)
        text = text.strip()
        return text if text and _balanced(text) else None

    def _rebuild(self, condition: ast.Condition) -> str:
        return self._REBUILD[type(condition)](self, condition)

    def _rebuild_comparison(self, condition: ast.Comparison) -> str:
        return f"{condition.subject.name} {condition.op} {_literal(condition.value)}"

    def _rebuild_in_list(self, condition: ast.InList) -> str:
        words = "not in" if condition.negated else "in"
        return f"{condition.subject.name} {words} (" + ", ".join(_literal(v) for v in condition.values) + ")"

    def _rebuild_between(self, condition: ast.Between) -> str:
        return f"{condition.subject.name} between {_literal(condition.low)} and {_literal(condition.high)}"

    def _rebuild_like(self, condition: ast.Like) -> str:
        return f"{condition.subject.name} like {_literal(condition.pattern)}"

    def _rebuild_contains(self, condition: ast.Contains) -> str:
        return f"{condition.subject.name} contains {_literal(condition.value)}"

    def _rebuild_presence(self, condition: ast.Presence) -> str:
        return f"{condition.subject.name} is {'present' if condition.present else 'missing'}"

    def _rebuild_segment_ref(self, condition: ast.SegmentRef) -> str:
        return condition.name

    def _rebuild_bool_const(self, condition: ast.BoolConst) -> str:
        return "true" if condition.value else "false"

    def _rebuild_not(self, condition: ast.Not) -> str:
        operand = self.render(condition.operand)
        simple = isinstance(condition.operand, (ast.SegmentRef, ast.BoolConst)) or operand.startswith("(")
        return f"not {operand}" if simple else f"not ({operand})"

    def _rebuild_and(self, condition: ast.And) -> str:
        return " and ".join(self._grouped(op, inside_and=True) for op in condition.operands)

    def _rebuild_or(self, condition: ast.Or) -> str:
        return " or ".join(self._grouped(op) for op in condition.operands)

    _REBUILD: ClassVar[ast.NodeTable[Callable[[Any, Any], str]]] = ast.NodeTable(
        "explain (condition text)",
        {
            ast.Comparison: _rebuild_comparison,
            ast.InList: _rebuild_in_list,
            ast.Between: _rebuild_between,
            ast.Like: _rebuild_like,
            ast.Contains: _rebuild_contains,
            ast.Presence: _rebuild_presence,
            ast.SegmentRef: _rebuild_segment_ref,
            ast.BoolConst: _rebuild_bool_const,
            ast.Not: _rebuild_not,
            ast.And: _rebuild_and,
            ast.Or: _rebuild_or,
        },
    )

    def _grouped(self, condition: ast.Condition, inside_and: bool = False) -> str:
        text = self.render(condition)
        needs_parens = isinstance(condition, ast.Or) or (isinstance(condition, ast.And) and not inside_and)
        return f"({text})" if needs_parens and not text.startswith("(") else text


# ---------------------------------------------------------------------------
# The interpreter.
# ---------------------------------------------------------------------------


class _Interpreter:
    def __init__(self, rule_file: ast.RuleFile, customer: Mapping[str, Any], as_of: datetime | None) -> None:
        self.customer = customer
        self.as_of = naive_utc(as_of)
        self.renderer = _Renderer(rule_file.source)
        self.segment_conditions: dict[str, ast.Condition] = {}
        self.segment_results: dict[str, bool] = {}
        self._values: dict[str, Any] = {}

    def value(self, name: str) -> Any:
        if name not in self._values:
            self._values[name] = read_field(self.customer, name, self.as_of)
        return self._values[name]

    def actual(self, ref: ast.FieldRef) -> str:
        value = self.value(ref.name)
        if value is None or (field_spec(ref).kind == "set" and set_is_missing(value)):
            return f"{ref.name} is missing"
        return f"{ref.name} is {format_value(value)}"

    # -- truth -------------------------------------------------------------

    def holds(self, condition: ast.Condition) -> bool:
        return self._HOLDS[type(condition)](self, condition)

    def _holds_bool_const(self, condition: ast.BoolConst) -> bool:
        return condition.value

    def _holds_not(self, condition: ast.Not) -> bool:
        return not self.holds(condition.operand)

    def _holds_and(self, condition: ast.And) -> bool:
        return all(self.holds(op) for op in condition.operands)

    def _holds_or(self, condition: ast.Or) -> bool:
        return any(self.holds(op) for op in condition.operands)

    def _holds_segment_ref(self, condition: ast.SegmentRef) -> bool:
        return self.segment_results[condition.name]

    def _holds_presence(self, predicate: ast.Presence) -> bool:
        raw = self.value(predicate.subject.name)
        missing = set_is_missing(raw) if field_spec(predicate.subject).kind == "set" else raw is None
        return missing != predicate.present

    def _holds_contains(self, predicate: ast.Contains) -> bool:
        field_spec(predicate.subject)  # an unknown field raises CompileError
        members = as_members(self.value(predicate.subject.name))
        return members is not None and predicate.value.value in members

    def _holds_like(self, predicate: ast.Like) -> bool:
        field_spec(predicate.subject)
        text = as_text(self.value(predicate.subject.name))
        return text is not None and like_regex(pattern_text(predicate.pattern)).fullmatch(text) is not None

    def _holds_in_list(self, predicate: ast.InList) -> bool:
        raw = self.value(predicate.subject.name)
        spec = field_spec(predicate.subject)
        found = any(
            VIEWS[v.kind](raw) == literal_value(spec, v) for v in predicate.values if VIEWS[v.kind](raw) is not None
        )
        return not found if predicate.negated else found

    def _holds_between(self, predicate: ast.Between) -> bool:
        spec = field_spec(predicate.subject)
        raw = self.value(predicate.subject.name)
        low, high = predicate.low, predicate.high
        if low.kind != high.kind:
            return False
        if spec.kind == "ordered":
            low_rank, high_rank, value_rank = self._rank(spec, low), self._rank(spec, high), self._value_rank(spec, raw)
            if low_rank is None or high_rank is None or value_rank is None:
                return False
            return low_rank <= value_rank <= high_rank
        viewed = VIEWS[low.kind](raw)
        return viewed is not None and literal_value(spec, low) <= viewed <= literal_value(spec, high)

    def _holds_comparison(self, comparison: ast.Comparison) -> bool:
        return self._comparison(comparison, field_spec(comparison.subject), self.value(comparison.subject.name))

    def _comparison(self, comparison: ast.Comparison, spec: Any, raw: Any) -> bool:
        op, literal = comparison.op, comparison.value
        left: Any
        right: Any
        if op == "!=":
            return not self._comparison(ast.Comparison(comparison.subject, "=", literal), spec, raw)
        if spec.kind == "ordered" and op in ORDER_OPS:
            left, right = self._value_rank(spec, raw), self._rank(spec, literal)
        else:
            left, right = VIEWS[literal.kind](raw), literal_value(spec, literal)
        if left is None or right is None:
            return False
        if op == "=":
            return bool(left == right)
        if op == "<":
            return bool(left < right)
        if op == "<=":
            return bool(left <= right)
        if op == ">":
            return bool(left > right)
        return bool(left >= right)

    _HOLDS: ClassVar[ast.NodeTable[Callable[[Any, Any], bool]]] = ast.NodeTable(
        "explain (truth)",
        {
            ast.Comparison: _holds_comparison,
            ast.InList: _holds_in_list,
            ast.Between: _holds_between,
            ast.Like: _holds_like,
            ast.Contains: _holds_contains,
            ast.Presence: _holds_presence,
            ast.SegmentRef: _holds_segment_ref,
            ast.BoolConst: _holds_bool_const,
            ast.Not: _holds_not,
            ast.And: _holds_and,
            ast.Or: _holds_or,
        },
    )

    @staticmethod
    def _rank(spec: Any, literal: ast.Value) -> int | None:
        return rank(spec, literal.value) if literal.kind == "text" else None

    @staticmethod
    def _value_rank(spec: Any, raw: Any) -> int | None:
        text = as_text(raw)
        return None if text is None else rank(spec, text)

    # -- reasons -------------------------------------------------------------

    def why_false(self, condition: ast.Condition) -> str:
        """Why `condition` is false: the first failing conjunct, every failing disjunct."""
        return self._WHY_FALSE[type(condition)](self, condition)

    def _false_bool_const(self, condition: ast.BoolConst) -> str:
        return f"false {FAIL}"

    def _false_and(self, condition: ast.And) -> str:
        failing = next(op for op in condition.operands if not self.holds(op))
        return self.why_false(failing)

    def _false_or(self, condition: ast.Or) -> str:
        return "; ".join(self.why_false(op) for op in condition.operands)

    def _false_not(self, condition: ast.Not) -> str:
        return f"{self.renderer.render(condition)} {FAIL} (held: {self.why_true(condition.operand)})"

    def _false_segment_ref(self, condition: ast.SegmentRef) -> str:
        inner = self.why_false(self.segment_conditions[condition.name])
        return f"{condition.name} {FAIL} (segment {condition.name}: {inner})"

    def _false_predicate(self, predicate: ast.Predicate) -> str:
        return f"{self.renderer.render(predicate)} {FAIL} ({self.actual(predicate.subject)})"

    def why_true(self, condition: ast.Condition) -> str:
        """Why `condition` holds: every conjunct, the first holding disjunct."""
        return self._WHY_TRUE[type(condition)](self, condition)

    def _true_bool_const(self, condition: ast.BoolConst) -> str:
        return f"true {PASS}"

    def _true_and(self, condition: ast.And) -> str:
        return "; ".join(self.why_true(op) for op in condition.operands)

    def _true_or(self, condition: ast.Or) -> str:
        holding = next(op for op in condition.operands if self.holds(op))
        return self.why_true(holding)

    def _true_not(self, condition: ast.Not) -> str:
        return f"{self.renderer.render(condition)} {PASS} (failed: {self.why_false(condition.operand)})"

    def _true_segment_ref(self, condition: ast.SegmentRef) -> str:
        return f"{condition.name} {PASS}"

    def _true_predicate(self, predicate: ast.Predicate) -> str:
        return f"{self.renderer.render(predicate)} {PASS} ({self.actual(predicate.subject)})"

    _WHY_FALSE: ClassVar[ast.NodeTable[Callable[[Any, Any], str]]] = ast.NodeTable(
        "explain (why false)",
        {
            **dict.fromkeys(ast.PREDICATE_TYPES, _false_predicate),
            ast.SegmentRef: _false_segment_ref,
            ast.BoolConst: _false_bool_const,
            ast.Not: _false_not,
            ast.And: _false_and,
            ast.Or: _false_or,
        },
    )
    _WHY_TRUE: ClassVar[ast.NodeTable[Callable[[Any, Any], str]]] = ast.NodeTable(
        "explain (why true)",
        {
            **dict.fromkeys(ast.PREDICATE_TYPES, _true_predicate),
            ast.SegmentRef: _true_segment_ref,
            ast.BoolConst: _true_bool_const,
            ast.Not: _true_not,
            ast.And: _true_and,
            ast.Or: _true_or,
        },
    )


def _add(collected: list[str], target: str) -> None:
    if target not in collected:
        collected.append(target)


def explain(rule_file: ast.RuleFile, customer: Mapping[str, Any], as_of: datetime | None = None) -> Explanation:
    """Evaluate one customer statement by statement and say why each matched or not."""
    interpreter = _Interpreter(rule_file, customer, as_of)
    team: str | None = None
    deciding: str | None = None
    segments: list[str] = []
    tags: list[str] = []
    tasks: dict[str, TaskOutcome] = {}
    traces: list[RuleTrace] = []
    for statement in rule_file.statements:
        line = statement.span.line
        if isinstance(statement, ast.SegmentDef):
            matched = interpreter.holds(statement.condition)
            interpreter.segment_conditions[statement.name] = statement.condition
            interpreter.segment_results[statement.name] = matched
            if matched:
                _add(segments, statement.name)
            detail = interpreter.why_true(statement.condition) if matched else interpreter.why_false(statement.condition)
            traces.append(RuleTrace(statement.display_name, line, matched, detail, kind="segment"))
            continue
        rule_team = statement.team
        if statement.is_otherwise:
            matched = team is None
            detail = "otherwise: no earlier team rule took the customer" if matched else f"otherwise: the team was already decided by {deciding}"
        else:
            assert statement.condition is not None
            matched = interpreter.holds(statement.condition)
            detail = interpreter.why_true(statement.condition) if matched else interpreter.why_false(statement.condition)
        decided = False
        if matched:
            if rule_team is not None:
                if team is None:
                    team, deciding, decided = rule_team, statement.display_name, True
                    detail += f"; decides team {rule_team}"
                elif not statement.is_otherwise:
                    detail += f"; team already decided by {deciding}"
            for action in statement.actions:
                if action.kind == "segment":
                    _add(segments, action.target)
                elif action.kind == "tag":
                    _add(tags, action.target)
                elif action.kind == "task":
                    given = tasks.get(action.target)
                    if given is None:
                        tasks[action.target] = TaskOutcome(action.target, statement.display_name, action.due_days)
                        detail += f"; gives task {action.target} (due in {action.due_days} days)"
                    else:
                        detail += f"; task {action.target} already given by {given.rule}"
        traces.append(RuleTrace(statement.display_name, line, matched, detail, kind="rule", decided=decided))
    return Explanation(team, deciding, tuple(segments), tuple(tags), traces, tasks=tuple(tasks.values()))
