"""Explain one customer's routing: every statement, whether it matched, and why not.

A small interpreter walks the syntax tree with the same value views as the
generated evaluator (dsl.python_compiler), so the team, segments and tags it reports
are the compiled evaluator's (a property test holds the two together).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from segmenta.dsl import ast
from segmenta.dsl.fields import rank
from segmenta.dsl.like import like_regex
from segmenta.dsl.python_compiler import (
    ORDER_OPS,
    VIEWS,
    as_members,
    as_text,
    field_spec,
    naive_utc,
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

    @property
    def lines(self) -> list[str]:
        if self.team is None:
            lines = ["Team: none (no team rule matched)"]
        else:
            lines = [f"Team: {self.team} (decided by {self.deciding_rule})"]
        lines.append("Segments: " + (", ".join(self.segments) if self.segments else "none"))
        lines.append("Tags: " + (", ".join(self.tags) if self.tags else "none"))
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
        if isinstance(condition, ast.Comparison):
            return f"{condition.subject.name} {condition.op} {_literal(condition.value)}"
        if isinstance(condition, ast.InList):
            words = "not in" if condition.negated else "in"
            return f"{condition.subject.name} {words} (" + ", ".join(_literal(v) for v in condition.values) + ")"
        if isinstance(condition, ast.Between):
            return f"{condition.subject.name} between {_literal(condition.low)} and {_literal(condition.high)}"
        if isinstance(condition, ast.Like):
            return f"{condition.subject.name} like {_literal(condition.pattern)}"
        if isinstance(condition, ast.Contains):
            return f"{condition.subject.name} contains {_literal(condition.value)}"
        if isinstance(condition, ast.Presence):
            return f"{condition.subject.name} is {'present' if condition.present else 'missing'}"
        if isinstance(condition, ast.SegmentRef):
            return condition.name
        if isinstance(condition, ast.BoolConst):
            return "true" if condition.value else "false"
        if isinstance(condition, ast.Not):
            operand = self.render(condition.operand)
            simple = isinstance(condition.operand, (ast.SegmentRef, ast.BoolConst)) or operand.startswith("(")
            return f"not {operand}" if simple else f"not ({operand})"
        if isinstance(condition, ast.And):
            return " and ".join(self._grouped(op, inside_and=True) for op in condition.operands)
        return " or ".join(self._grouped(op) for op in condition.operands)

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
        if isinstance(condition, ast.BoolConst):
            return condition.value
        if isinstance(condition, ast.Not):
            return not self.holds(condition.operand)
        if isinstance(condition, ast.And):
            return all(self.holds(op) for op in condition.operands)
        if isinstance(condition, ast.Or):
            return any(self.holds(op) for op in condition.operands)
        if isinstance(condition, ast.SegmentRef):
            return self.segment_results[condition.name]
        return self._predicate(condition)

    def _predicate(self, predicate: ast.Predicate) -> bool:
        ref = predicate.subject
        spec = field_spec(ref)
        raw = self.value(ref.name)
        if isinstance(predicate, ast.Presence):
            missing = set_is_missing(raw) if spec.kind == "set" else raw is None
            return missing != predicate.present
        if isinstance(predicate, ast.Contains):
            members = as_members(raw)
            return members is not None and predicate.value.value in members
        if isinstance(predicate, ast.Like):
            text = as_text(raw)
            return text is not None and like_regex(pattern_text(predicate.pattern)).fullmatch(text) is not None
        if isinstance(predicate, ast.InList):
            found = any(VIEWS[v.kind](raw) == v.value for v in predicate.values if VIEWS[v.kind](raw) is not None)
            return not found if predicate.negated else found
        if isinstance(predicate, ast.Between):
            low, high = predicate.low, predicate.high
            if low.kind != high.kind:
                return False
            if spec.kind == "ordered":
                low_rank, high_rank, value_rank = self._rank(spec, low), self._rank(spec, high), self._value_rank(spec, raw)
                if low_rank is None or high_rank is None or value_rank is None:
                    return False
                return low_rank <= value_rank <= high_rank
            viewed = VIEWS[low.kind](raw)
            return viewed is not None and low.value <= viewed <= high.value
        return self._comparison(predicate, spec, raw)

    def _comparison(self, comparison: ast.Comparison, spec: Any, raw: Any) -> bool:
        op, literal = comparison.op, comparison.value
        left: Any
        right: Any
        if op == "!=":
            return not self._comparison(ast.Comparison(comparison.subject, "=", literal), spec, raw)
        if spec.kind == "ordered" and op in ORDER_OPS:
            left, right = self._value_rank(spec, raw), self._rank(spec, literal)
        else:
            left, right = VIEWS[literal.kind](raw), literal.value
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
        if isinstance(condition, ast.BoolConst):
            return f"false {FAIL}"
        if isinstance(condition, ast.And):
            failing = next(op for op in condition.operands if not self.holds(op))
            return self.why_false(failing)
        if isinstance(condition, ast.Or):
            return "; ".join(self.why_false(op) for op in condition.operands)
        if isinstance(condition, ast.Not):
            return f"{self.renderer.render(condition)} {FAIL} (held: {self.why_true(condition.operand)})"
        if isinstance(condition, ast.SegmentRef):
            inner = self.why_false(self.segment_conditions[condition.name])
            return f"{condition.name} {FAIL} (segment {condition.name}: {inner})"
        return f"{self.renderer.render(condition)} {FAIL} ({self.actual(condition.subject)})"

    def why_true(self, condition: ast.Condition) -> str:
        """Why `condition` holds: every conjunct, the first holding disjunct."""
        if isinstance(condition, ast.BoolConst):
            return f"true {PASS}"
        if isinstance(condition, ast.And):
            return "; ".join(self.why_true(op) for op in condition.operands)
        if isinstance(condition, ast.Or):
            holding = next(op for op in condition.operands if self.holds(op))
            return self.why_true(holding)
        if isinstance(condition, ast.Not):
            return f"{self.renderer.render(condition)} {PASS} (failed: {self.why_false(condition.operand)})"
        if isinstance(condition, ast.SegmentRef):
            return f"{condition.name} {PASS}"
        return f"{self.renderer.render(condition)} {PASS} ({self.actual(condition.subject)})"


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
        traces.append(RuleTrace(statement.display_name, line, matched, detail, kind="rule", decided=decided))
    return Explanation(team, deciding, tuple(segments), tuple(tags), traces)
