"""Compile a checked rule file into one generated Python function.

The function is built once per ruleset: Python source text is generated from the
syntax tree, compiled with `compile()` and executed once to obtain a closure.  Every
value that comes from the rule file (literals, field names, team/segment/tag names,
labels, like-patterns) reaches the generated code through a constants table bound
as closure variables; only identifiers this module invents appear in the source
text, so no user string is ever evaluated as code.

Semantics (docs/python-api.md, 'Semantics'; shared with dsl.explain and the SQL compiler):

* A value is read by its rule-language name; a missing key and None are both missing.
* A comparison picks the *view* of the stored value from the literal's type: a text
  literal compares against text values only, a number literal against numbers
  (int, float, Decimal; never bool; against a money field the literal is the exact decimal it
  was written as, dsl.fields.money_literal), a date literal against dates (a datetime is
  compared by its calendar day).  A value of another type makes the comparison
  false, exactly like a missing value.
* Ordered fields (`size`, `purchasing_power`) compare `<`, `<=`, `>`, `>=` and
  `between` by declared rank; a stored word outside the declared order never
  satisfies an order comparison but still takes part in `=`, `!=`, `in`.
* `!=`, `not in` and `not` are the exact complements of `=`, `in` and the operand.
* A set field (`tags`, `product_categories`) holds a collection; it is *missing*
  when absent, None or empty (the database stores sets as rows, so "no rows" is the
  only missing a set can have).  `contains` on a missing set is false.
* Day metrics absent from the mapping are derived from their source date at `as_of`
  (default: now) with dsl.fields.derive_day_metrics.
* Instants are naive UTC, as stored (dsl.fields.naive_utc): an aware `as_of`, or an
  aware datetime value, is converted to UTC first; a naive one is taken as UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from numbers import Real
from typing import Any, ClassVar

from segmenta.dsl import ast
from segmenta.dsl.fields import (
    DAY_METRIC_SOURCES,
    FieldSpec,
    derive_day_metrics,
    literal_value,
    lookup,
    naive_utc,
    rank,
)
from segmenta.dsl.like import contained_text, is_plain, like_regex
from segmenta.dsl.outcome import CompiledEvaluator, TaskOutcome

ORDER_OPS = frozenset({"<", "<=", ">", ">="})


class CompileError(ValueError):
    """The rule file was not checked (unknown segment, unknown field); compile only checked files."""


# ---------------------------------------------------------------------------
# Value views: the runtime semantics shared by the generated code and dsl.explain.
# ---------------------------------------------------------------------------


def as_number(value: Any) -> Any:
    """The value as a number, or None when it is missing or not a number (bool is not a number)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal, Real)):
        return value
    return None


def as_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_day(value: Any) -> date | None:
    """The calendar day of a date or datetime value (an aware datetime's day in UTC); None for anything else."""
    if isinstance(value, datetime):
        return value.date() if value.tzinfo is None else naive_utc(value).date()
    if isinstance(value, date):
        return value
    return None


def as_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def as_members(value: Any) -> Collection[Any] | None:
    """A set field's members, or None when the value is not a collection (text is not a set)."""
    if isinstance(value, (set, frozenset, list, tuple)):
        return value
    if isinstance(value, Collection) and not isinstance(value, (str, bytes, Mapping)):
        return value
    return None


def set_is_missing(value: Any) -> bool:
    if value is None:
        return True
    members = as_members(value)
    return members is not None and len(members) == 0


VIEWS: dict[str, Callable[[Any], Any]] = {
    "number": as_number,
    "text": as_text,
    "date": as_day,
    "bool": as_bool,
    "members": as_members,
}


def field_spec(ref: ast.FieldRef) -> FieldSpec:
    spec = lookup(ref.name)
    if spec is None:
        raise CompileError(f"unknown field {ref.name!r} at line {ref.span.line}")
    return spec


def derive_metric(metric: str, source_value: Any, as_of: datetime | None) -> Any:
    """One day metric from its source date; None when the source is not a date."""
    if as_day(source_value) is None:
        return None
    derived = derive_day_metrics({DAY_METRIC_SOURCES[metric]: source_value}, naive_utc(as_of))
    return derived.get(metric)


def read_field(customer: Mapping[str, Any], name: str, as_of: datetime | None) -> Any:
    """A field's raw value as the evaluator sees it (day metrics derived when absent)."""
    value = customer.get(name)
    if value is None and name in DAY_METRIC_SOURCES:
        source = customer.get(DAY_METRIC_SOURCES[name])
        if source is not None:
            value = derive_metric(name, source, as_of)
    return value


# ---------------------------------------------------------------------------
# Code generation.
# ---------------------------------------------------------------------------


@dataclass
class _Constants:
    values: list[Any] = field(default_factory=list)
    _index: dict[tuple[type, Any], int] = field(default_factory=dict)

    def name(self, value: Any) -> str:
        try:
            key: tuple[type, Any] = (type(value), value)
            hash(key)
        except TypeError:
            key = (type(value), id(value))
        if key not in self._index:
            self._index[key] = len(self.values)
            self.values.append(value)
        return f"K{self._index[key]}"


@dataclass
class _Locals:
    """Per-field locals: the raw value, then each view, each computed once at the top."""

    constants: _Constants
    preamble: list[str] = field(default_factory=list)
    _raw: dict[str, str] = field(default_factory=dict)
    _views: dict[tuple[str, str], str] = field(default_factory=dict)

    def raw(self, name: str) -> str:
        if name not in self._raw:
            local = f"v{len(self._raw)}"
            self._raw[name] = local
            self.preamble.append(f"{local} = _get({self.constants.name(name)})")
            if name in DAY_METRIC_SOURCES:
                source = self.constants.name(DAY_METRIC_SOURCES[name])
                metric = self.constants.name(name)
                self.preamble.append(f"if {local} is None:")
                self.preamble.append(f"    _source = _get({source})")
                self.preamble.append("    if _source is not None:")
                self.preamble.append("        if as_of is None: as_of = _naive_utc(None)")
                self.preamble.append(f"        {local} = _derive_metric({metric}, _source, as_of)")
        return self._raw[name]

    def view(self, name: str, view: str, ranks: Mapping[str, int] | None = None) -> str:
        key = (name, view)
        if key not in self._views:
            raw = self.raw(name)
            local = f"{view[0]}{len(self._views)}"
            self._views[key] = local
            if view == "number":
                spec = lookup(name)
                if spec is not None and spec.money:  # money is a Decimal (from the database): test that first
                    fast = f"{raw}.__class__ is _Decimal or {raw}.__class__ is float or {raw}.__class__ is int"
                else:
                    fast = f"{raw}.__class__ is float or {raw}.__class__ is int or {raw}.__class__ is _Decimal"
                self.preamble.append(f"{local} = {raw} if {fast} else _as_number({raw})")
            elif view == "text":
                self.preamble.append(f"{local} = {raw} if {raw}.__class__ is str else _as_text({raw})")
            elif view == "date":
                self.preamble.append(f"{local} = _as_day({raw})")
            elif view == "bool":
                self.preamble.append(f"{local} = _as_bool({raw})")
            elif view == "members":
                self.preamble.append(f"{local} = _as_members({raw})")
            elif view == "rank":
                assert ranks is not None
                text = self.view(name, "text")
                table = self.constants.name(dict(ranks))
                self.preamble.append(f"{local} = None if {text} is None else {table}.get({text})")
            else:  # pragma: no cover - the views above are exhaustive
                raise AssertionError(view)
        return self._views[key]


_MAX_EXPRESSION_DEPTH = 40
_PYTHON_OPS = {"=": "==", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class _PythonConditionCompiler:
    def __init__(self, constants: _Constants, locals_: _Locals) -> None:
        self.constants = constants
        self.locals = locals_
        self.segments: dict[str, str] = {}
        self.hoisted: list[str] = []
        self.hoisted_count = 0

    def take_hoisted(self) -> list[str]:
        hoisted, self.hoisted = self.hoisted, []
        return hoisted

    def compile(self, condition: ast.Condition, depth: int = 0) -> str:
        if depth > _MAX_EXPRESSION_DEPTH:
            # Python's parser refuses deeply nested parentheses: evaluate deep subtrees
            # into a local first (conditions have no side effects, so only the
            # short-circuit is lost).
            self.hoisted_count += 1
            local = f"h{self.hoisted_count}"
            expression = self.compile(condition)
            self.hoisted.append(f"{local} = {expression}")
            return local
        return self._CASES[type(condition)](self, condition, depth)

    def _bool_const(self, condition: ast.BoolConst, depth: int) -> str:
        return "True" if condition.value else "False"

    def _not(self, condition: ast.Not, depth: int) -> str:
        return f"(not {self.compile(condition.operand, depth + 1)})"

    def _and(self, condition: ast.And, depth: int) -> str:
        if not condition.operands:
            return "True"
        return "(" + " and ".join(self.compile(op, depth + 1) for op in condition.operands) + ")"

    def _or(self, condition: ast.Or, depth: int) -> str:
        if not condition.operands:
            return "False"
        return "(" + " or ".join(self.compile(op, depth + 1) for op in condition.operands) + ")"

    def _segment_ref(self, condition: ast.SegmentRef, depth: int) -> str:
        if condition.name not in self.segments:
            raise CompileError(f"unknown segment {condition.name!r} at line {condition.span.line}")
        return self.segments[condition.name]

    def _contains(self, condition: ast.Contains, depth: int) -> str:
        members = self.locals.view(condition.subject.name, "members")
        return f"({members} is not None and {self.constants.name(condition.value.value)} in {members})"

    def _presence(self, condition: ast.Presence, depth: int) -> str:
        missing = self._missing(condition.subject)
        return f"(not {missing})" if condition.present else missing

    def _missing(self, ref: ast.FieldRef) -> str:
        raw = self.locals.raw(ref.name)
        if field_spec(ref).kind == "set":
            members = self.locals.view(ref.name, "members")
            return f"({raw} is None or ({members} is not None and not {members}))"
        return f"({raw} is None)"

    def _comparison(self, comparison: ast.Comparison, depth: int = 0) -> str:
        spec = field_spec(comparison.subject)
        op = comparison.op
        literal = comparison.value
        if op == "!=":
            return f"(not {self._comparison(ast.Comparison(comparison.subject, '=', literal))})"
        if spec.kind == "ordered" and op in ORDER_OPS:
            literal_rank = rank(spec, literal.value) if literal.kind == "text" else None
            if literal_rank is None:
                return "False"
            local = self.locals.view(comparison.subject.name, "rank", _ranks(spec))
            return f"({local} is not None and {local} {_PYTHON_OPS[op]} {self.constants.name(literal_rank)})"
        local = self.locals.view(comparison.subject.name, literal.kind)
        constant = self.constants.name(literal_value(spec, literal))
        if op == "=":
            return f"({local} == {constant})"
        return f"({local} is not None and {local} {_PYTHON_OPS[op]} {constant})"

    def _in_list(self, in_list: ast.InList, depth: int) -> str:
        positive = self._in_list_positive(in_list)
        return f"(not {positive})" if in_list.negated else positive

    def _in_list_positive(self, in_list: ast.InList) -> str:
        spec = field_spec(in_list.subject)  # an unknown field raises CompileError
        by_kind: dict[str, set[Any]] = {}
        for literal in in_list.values:
            by_kind.setdefault(literal.kind, set()).add(literal_value(spec, literal))
        tests = []
        for kind, values in sorted(by_kind.items()):
            local = self.locals.view(in_list.subject.name, kind)
            tests.append(f"{local} in {self.constants.name(frozenset(values))}")
        if not tests:
            return "False"
        return "(" + " or ".join(tests) + ")"

    def _between(self, between: ast.Between, depth: int) -> str:
        spec = field_spec(between.subject)
        low, high = between.low, between.high
        if low.kind != high.kind:
            return "False"
        if spec.kind == "ordered":
            low_rank = rank(spec, low.value) if low.kind == "text" else None
            high_rank = rank(spec, high.value) if high.kind == "text" else None
            if low_rank is None or high_rank is None:
                return "False"
            local = self.locals.view(between.subject.name, "rank", _ranks(spec))
            bounds = (self.constants.name(low_rank), self.constants.name(high_rank))
        else:
            local = self.locals.view(between.subject.name, low.kind)
            bounds = (self.constants.name(literal_value(spec, low)), self.constants.name(literal_value(spec, high)))
        return f"({local} is not None and {bounds[0]} <= {local} <= {bounds[1]})"

    def _like(self, like: ast.Like, depth: int) -> str:
        local = self.locals.view(like.subject.name, "text")
        pattern = pattern_text(like.pattern)
        if is_plain(pattern):
            return f"({local} == {self.constants.name(pattern)})"
        inner = contained_text(pattern)
        if inner is not None:
            return f"({local} is not None and {self.constants.name(inner)} in {local})"
        matcher = self.constants.name(like_regex(pattern).fullmatch)
        return f"({local} is not None and {matcher}({local}) is not None)"

    _CASES: ClassVar[ast.NodeTable[Callable[[Any, Any, int], str]]] = ast.NodeTable(
        "python compiler",
        {
            ast.Comparison: _comparison,
            ast.InList: _in_list,
            ast.Between: _between,
            ast.Like: _like,
            ast.Contains: _contains,
            ast.Presence: _presence,
            ast.SegmentRef: _segment_ref,
            ast.BoolConst: _bool_const,
            ast.Not: _not,
            ast.And: _and,
            ast.Or: _or,
        },
    )


def pattern_text(literal: ast.Value) -> str:
    return literal.value if isinstance(literal.value, str) else literal.raw


def _ranks(spec: FieldSpec) -> dict[str, int]:
    return {word: position for position, word in enumerate(spec.values)}


def _collector(name: str, target: str, constants: _Constants, repeated: set[str], indent: str) -> str:
    constant = constants.name(target)
    if target in repeated:
        return f"{indent}if {constant} not in {name}: {name}.append({constant})"
    return f"{indent}{name}.append({constant})"


def _repeated(targets: list[str]) -> set[str]:
    seen: set[str] = set()
    repeated: set[str] = set()
    for target in targets:
        (repeated if target in seen else seen).add(target)
    return repeated


def compile_rule_file(rule_file: ast.RuleFile) -> CompiledEvaluator:
    """Generate, compile and instantiate the evaluator of a checked rule file."""
    constants = _Constants()
    locals_ = _Locals(constants)
    conditions = _PythonConditionCompiler(constants, locals_)

    segment_targets = [s.name for s in rule_file.statements if isinstance(s, ast.SegmentDef)]
    tag_targets: list[str] = []
    task_targets: list[str] = []
    for statement in rule_file.statements:
        if isinstance(statement, ast.Rule):
            segment_targets += [a.target for a in statement.actions if a.kind == "segment"]
            tag_targets += [a.target for a in statement.actions if a.kind == "tag"]
            task_targets += [a.target for a in statement.actions if a.kind == "task"]
    repeated_segments = _repeated(segment_targets)
    repeated_tags = _repeated(tag_targets)
    repeated_tasks = _repeated(task_targets)

    statements = rule_file.statements
    contributes = [isinstance(s, ast.SegmentDef) or any(a.kind != "team" for a in s.actions) for s in statements]
    contributes_from = [any(contributes[i:]) for i in range(len(statements))] + [False]
    tasks_result = "tuple(tasks.values())" if task_targets else "()"
    result = f"team, rule, tuple(segments), tuple(tags), {tasks_result}" if any(contributes) else "team, rule, (), (), ()"
    # Field loads go just before the first statement that reads them, and a rule that
    # decides the team returns at once when nothing after it can add segments or tags:
    # a customer decided early never pays for the fields of later rules.
    body: list[str] = ["team = None", "rule = None"]
    if any(contributes):
        body += ["segments = []", "tags = []"]
    if task_targets:
        body.append("tasks = {}")
    team_may_be_set = False
    for index, statement in enumerate(statements):
        if team_may_be_set and not contributes_from[index]:
            body.append(f"if team is not None: return {result}")
            team_may_be_set = False  # from here on, team is None whenever a rule is reached
        loads_start = len(locals_.preamble)
        condition = None if statement.condition is None else conditions.compile(statement.condition)
        body += locals_.preamble[loads_start:]
        body += conditions.take_hoisted()
        if isinstance(statement, ast.SegmentDef):
            local = f"s{index}"
            body.append(f"{local} = {condition}")
            body.append(f"if {local}:")
            body.append(_collector("segments", statement.name, constants, repeated_segments, "    "))
            conditions.segments[statement.name] = local
            continue
        team = statement.team
        others = [a for a in statement.actions if a.kind != "team"]
        if condition is None:  # otherwise
            condition = "team is None" if team_may_be_set else "True"
        elif team is not None and not others and team_may_be_set:
            condition = f"team is None and {condition}"
        lines: list[str] = []
        if team is not None:
            decide = f"team = {constants.name(team)}; rule = {constants.name(statement.display_name)}"
            if team_may_be_set and others and not statement.is_otherwise:
                lines.append(f"if team is None: {decide}")
            else:
                lines.append(decide)
        for action in others:
            if action.kind == "task":
                # The first matching rule giving a kind gives its rule and due days.
                kind, task = constants.name(action.target), constants.name(TaskOutcome(action.target, statement.display_name, action.due_days))
                lines.append(f"if {kind} not in tasks: tasks[{kind}] = {task}" if action.target in repeated_tasks else f"tasks[{kind}] = {task}")
                continue
            name = "segments" if action.kind == "segment" else "tags"
            repeated = repeated_segments if action.kind == "segment" else repeated_tags
            lines.append(_collector(name, action.target, constants, repeated, ""))
        if team is not None:
            if contributes_from[index + 1]:
                team_may_be_set = True
            else:
                lines.append(f"return {result}")
        if not lines:
            lines.append("pass")
        if condition == "True":
            body += lines
        else:
            body.append(f"if {condition}:")
            body += ["    " + line for line in lines]

    helpers = {
        "_as_number": as_number,
        "_as_text": as_text,
        "_as_day": as_day,
        "_as_bool": as_bool,
        "_as_members": as_members,
        "_derive_metric": derive_metric,
        "_naive_utc": naive_utc,
        "_Decimal": Decimal,
    }
    source_lines: list[str] = ["def _factory(K, H):"]
    if constants.values:
        names = ", ".join(f"K{i}" for i in range(len(constants.values)))
        source_lines.append(f"    {names}, = K")
    source_lines.append("    " + ", ".join(helpers) + ", = H")
    source_lines.append("    def _evaluate(c, as_of=None):")
    source_lines.append("        _get = c.get")
    source_lines += ["        " + line for line in body]
    source_lines.append(f"        return {result}")
    source_lines.append("    return _evaluate")
    source_code = "\n".join(source_lines) + "\n"

    namespace: dict[str, Any] = {"__builtins__": {"tuple": tuple, "float": float, "int": int, "str": str}}
    exec(compile(source_code, "<segmenta rules>", "exec"), namespace)
    function = namespace["_factory"](tuple(constants.values), tuple(helpers.values()))
    return CompiledEvaluator(function=function, source_code=source_code)
