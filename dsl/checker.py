"""Name and type checks over a parsed rule file (no database needed; with one, teams and values too)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from segmenta.dsl.ast import (
    MAX_TASK_DAYS,
    Action,
    And,
    Between,
    BoolConst,
    Comparison,
    Condition,
    Contains,
    FieldRef,
    InList,
    Like,
    NodeTable,
    Not,
    Or,
    Predicate,
    Presence,
    Rule,
    RuleFile,
    SegmentDef,
    SegmentRef,
    Span,
    Value,
    operands,
)
from segmenta.dsl.diagnostics import Diagnostic, Severity
from segmenta.dsl.extent import MAX_COPIED, MAX_DEPTH, Extent, measure
from segmenta.dsl.fields import FIELDS, FieldSpec, lookup

# The tasks table's `kind` column (storage/models.py, Task).
MAX_TASK_KIND_LENGTH = 100

# What rules write, never read (docs/rule-language.md, 'Fields'): naming them as fields gets its own explanation.
OUTPUT_NAMES = frozenset({"team", "manager", "segment", "segments", "rule_tags"})

_ORDER_OPS = frozenset({"<", "<=", ">", ">="})
_TEXT_OPERATIONS = "`=`, `!=`, `in`, `not in`, `like`, `is missing`, `is present`"
_SET_FIELDS = ", ".join(f"`{name}`" for name, spec in FIELDS.items() if spec.kind == "set")


def nearest(word: str, candidates: Collection[str]) -> str | None:
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if matches:
        return matches[0]
    lowered = {candidate.lower(): candidate for candidate in candidates}
    return lowered.get(word.lower())


def _did_you_mean(word: str, candidates: Collection[str]) -> str | None:
    match = nearest(word, candidates)
    return f"did you mean `{match}`?" if match is not None else None


def _show(value: Value) -> str:
    return value.raw if len(value.raw) <= 40 else value.raw[:37] + "..."


_KIND_WORDS = {"text": "text", "number": "a number", "date": "a date", "bool": "a boolean"}


@dataclass
class _Checker:
    rule_file: RuleFile
    known_teams: Collection[str] | None
    known_values: Mapping[str, Collection[str]] | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    defined: dict[str, Span] = field(default_factory=dict)  # segments defined so far
    all_segments: dict[str, Span] = field(default_factory=dict)  # first definition of every segment
    extents: dict[str, Extent] = field(default_factory=dict)  # of each segment, itself written out
    copied: int = 0  # parts of segments copied into the conditions so far

    def report(self, span: Span, code: str, message: str, hint: str | None = None,
               severity: Severity = "error") -> None:
        self.diagnostics.append(Diagnostic.at(span, severity, code, message, hint))

    def run(self) -> list[Diagnostic]:
        for statement in self.rule_file.statements:
            if isinstance(statement, SegmentDef):
                self.all_segments.setdefault(statement.name, statement.name_span)
        self._check_names()
        self._check_otherwise()
        for statement in self.rule_file.statements:
            if isinstance(statement, SegmentDef):
                self._check_condition(statement.condition, defining=statement.name)
                self.defined.setdefault(statement.name, statement.name_span)
                self.extents[statement.name] = self._check_extent(statement.condition)
            else:
                if statement.condition is not None:
                    self._check_condition(statement.condition, defining=None)
                    self._check_extent(statement.condition)
                self._check_actions(statement)
        return self.diagnostics

    # --- statement-level names -------------------------------------------------------------

    def _check_names(self) -> None:
        labels: dict[str, Span] = {}
        segments: dict[str, Span] = {}
        for statement in self.rule_file.statements:
            if isinstance(statement, SegmentDef):
                first = segments.setdefault(statement.name, statement.name_span)
                if first is not statement.name_span:
                    self.report(statement.name_span, "duplicate-name",
                                f"segment `{statement.name}` is already defined on line {first.line}",
                                "give each segment a unique name, or join the conditions with `or`")
                if lookup(statement.name) is not None:
                    self.report(statement.name_span, "duplicate-name",
                                f"segment `{statement.name}` has the name of a field",
                                "choose another name; a bare field name cannot be told from the segment")
            elif statement.label is not None and statement.label_span is not None:
                first = labels.setdefault(statement.label, statement.label_span)
                if first is not statement.label_span:
                    self.report(statement.label_span, "duplicate-name",
                                f"label `{statement.label}` is already used on line {first.line}",
                                "labels name rules in explanations and run reports; make each unique")

    def _check_otherwise(self) -> None:
        statements = self.rule_file.statements
        otherwise_indexes = [i for i, s in enumerate(statements) if isinstance(s, Rule) and s.is_otherwise]
        if not otherwise_indexes:
            return
        first = otherwise_indexes[0]
        for index in otherwise_indexes[1:]:
            self.report(statements[index].span, "otherwise-not-last",
                        f"a second `otherwise` (the first is on line {statements[first].span.line})",
                        "a file has at most one `otherwise`; remove one")
        following = len(statements) - 1 - first - (len(otherwise_indexes) - 1)
        if following > 0:
            self.report(statements[first].span, "otherwise-not-last",
                        f"`otherwise` must be the last statement; {following} statement(s) follow it",
                        "move `otherwise -> ...` to the end of the file")

    def _check_actions(self, rule: Rule) -> None:
        for action in rule.actions:
            if action.kind == "task":
                self._check_task(action)
        teams = [action for action in rule.actions if action.kind == "team"]
        for extra in teams[1:]:
            self.report(extra.span, "conflicting-actions",
                        f"this rule already assigns team `{teams[0].target}`; a rule assigns at most one team",
                        "split it into two rules")
        if self.known_teams is None:
            return
        for action in teams:
            if action.target not in self.known_teams:
                hint = _did_you_mean(action.target, self.known_teams)
                self.report(action.span, "unknown-team", f"no team has the key `{action.target}`",
                            hint or "create the team first (createTeam) or fix the key")

    def _check_task(self, action: Action) -> None:
        # Any kind is fine (kinds are the team's own words); it must fit the tasks table.
        if not action.target.strip() or len(action.target) > MAX_TASK_KIND_LENGTH:
            self.report(action.span, "bad-task-kind",
                        f"a task kind has 1 to {MAX_TASK_KIND_LENGTH} characters and is not blank")
        within = action.within
        if within is None:
            return
        number = within.value
        if not isinstance(number, float) or not number.is_integer() or not 1 <= number <= MAX_TASK_DAYS:
            self.report(within.span, "bad-task-due",
                        f"`within {within.raw}`: the number of days must be a whole number from 1 to {MAX_TASK_DAYS}",
                        "write `within 3 days`")
        if action.unit is not None and action.unit.lower() not in ("day", "days"):
            self.report(action.unit_span or action.span, "bad-task-due",
                        f"`within {within.raw} {action.unit}`: the unit is `days`",
                        f"write `within {within.raw} days`")

    # --- conditions ---------------------------------------------------------------------------

    def _check_condition(self, condition: Condition, defining: str | None) -> None:
        for node in _walk(condition):
            self._CASES[type(node)](self, node, defining)

    def _check_nothing(self, node: Condition, defining: str | None) -> None:
        """Connectives and constants: only their operands have names and types to check."""

    def _check_extent(self, condition: Condition) -> Extent:
        """Depth and size limits.  A chain is reported once, where it first goes too deep."""
        extent = measure(condition, self.extents)
        if extent.depth > MAX_DEPTH:
            ref = extent.deepest_ref
            if ref is None:
                self.report(condition.span, "too-deep",
                            f"condition nested too deep: {extent.depth} levels of `and`, `or` and `not` "
                            f"(at most {MAX_DEPTH})",
                            "flatten it: `a and (b and c)` is `a and b and c`, `not (a and b)` is "
                            "`not a or not b`")
            elif self.extents.get(ref.name, Extent(0, 0)).depth <= MAX_DEPTH:
                self.report(ref.span, "too-deep",
                            f"segment chain too deep: with the segments it uses written out, this condition is "
                            f"{extent.depth} levels deep (at most {MAX_DEPTH})",
                            "every use of a segment brings its whole definition along; build fewer segments "
                            "on top of one another, or combine their conditions")
        before = self.copied
        self.copied = min(before + extent.copied, MAX_COPIED + 1)
        if before <= MAX_COPIED < self.copied:
            self.report(condition.span, "too-large",
                        f"segments used too often: written out where they are used, they add more than "
                        f"{MAX_COPIED} parts to the conditions up to here",
                        "every use of a segment brings its whole definition along; use large segments in "
                        "fewer places, or combine their conditions")
        return extent

    def _check_segment_ref(self, ref: SegmentRef, defining: str | None) -> None:
        name = ref.name
        if name in self.defined:
            return
        if name == defining:
            self.report(ref.span, "unknown-segment", f"segment `{name}` refers to itself",
                        "a segment can only use segments defined above it")
            return
        if name in self.all_segments:
            line = self.all_segments[name].line
            self.report(ref.span, "unknown-segment",
                        f"segment `{name}` is used before its definition on line {line}",
                        f"move `segment {name} = ...` above this line")
            return
        spec = lookup(name)
        if spec is not None:
            example = {"number": f"{name} > 0", "date": f"{name} > 2026-01-01", "set": f"{name} contains vip"}
            self.report(ref.span, "unknown-segment",
                        f"`{name}` is a field, not a condition; a bare name must be a segment defined earlier",
                        f"compare it with a value (`{example.get(spec.kind, f'{name} = east')}`) "
                        f"or test `{name} is present`")
            return
        hint = _did_you_mean(name, self.defined)
        self.report(ref.span, "unknown-segment", f"unknown segment `{name}`",
                    hint or f"define it above with `segment {name} = ...`")

    def _field_spec(self, ref: FieldRef) -> FieldSpec | None:
        spec = lookup(ref.name)
        if spec is not None:
            return spec
        if ref.name in OUTPUT_NAMES:
            self.report(ref.span, "unknown-field", f"rules cannot read `{ref.name}`",
                        "rules never read their own outputs (team, manager, rule-made tags and segments)")
        elif ref.name == "attr." or ref.name.startswith("attr."):
            self.report(ref.span, "unknown-field", "a custom attribute needs a name", "write `attr.NAME`")
        else:
            hint = _did_you_mean(ref.name, FIELDS) or "custom attributes are written `attr.NAME`"
            self.report(ref.span, "unknown-field", f"unknown field `{ref.name}`", hint)
        return None

    def _mismatch(self, span: Span, message: str, hint: str | None = None) -> None:
        self.report(span, "type-mismatch", message, hint)

    def _field_of(self, node: Predicate) -> FieldSpec | None:
        """The spec of the predicate's field (None, reported, when there is no such field)."""
        return self._field_spec(node.subject)

    def _check_presence(self, node: Presence, defining: str | None) -> None:
        self._field_of(node)  # any field can be present or missing

    def _check_contains(self, node: Contains, defining: str | None) -> None:
        spec = self._field_of(node)
        if spec is None:
            return
        name = node.subject.name
        if spec.kind != "set":
            self._mismatch(node.span, f"`contains` works on set fields ({_SET_FIELDS}), not on `{name}`",
                           "use `=` or `in`" if spec.kind in ("text", "ordered", "attribute") else "use `=`")
            return
        self._expect_value(node.value, spec, name, ("text",))
        self._check_known(name, (node.value,))

    def _check_like(self, node: Like, defining: str | None) -> None:
        spec = self._field_of(node)
        if spec is None or self._set_refuses(node, spec):
            return
        name = node.subject.name
        if spec.kind not in ("text", "attribute"):
            self._mismatch(node.span, f"`like` matches text; `{name}` is {_describe_kind(spec)}")
            return
        self._expect_value(node.pattern, spec, name, ("text",))

    def _check_comparison(self, node: Comparison, defining: str | None) -> None:
        self._check_values(node, (node.value,), node.op if node.op in _ORDER_OPS else None)

    def _check_in_list(self, node: InList, defining: str | None) -> None:
        self._check_values(node, node.values, None)

    def _check_between(self, node: Between, defining: str | None) -> None:
        self._check_values(node, (node.low, node.high), "between")

    def _set_refuses(self, node: Predicate, spec: FieldSpec) -> bool:
        """A set field takes only `contains` and presence tests: report anything else."""
        if spec.kind != "set":
            return False
        name = node.subject.name
        self._mismatch(node.span, f"`{name}` is a set; it takes `contains`, `is missing` or `is present`",
                       f"write `{name} contains VALUE`")
        return True

    def _check_values(self, node: Comparison | InList | Between, values: tuple[Value, ...], ordering: str | None) -> None:
        """`ordering`: the order operation (`<`, ..., `between`) the node applies, None for `=`, `!=`, `in`."""
        spec = self._field_of(node)
        if spec is None or self._set_refuses(node, spec):
            return
        name = node.subject.name
        kind = spec.kind
        if kind == "text":
            if ordering is not None:
                self._mismatch(node.span, f"`{name}` is a text field; `{ordering}` needs a number, a date "
                               "or an ordered field", f"text fields take {_TEXT_OPERATIONS}")
                return
            if all(self._expect_value(v, spec, name, ("text",)) for v in values):
                self._check_closed(spec, values, name)
                self._check_known(name, values)
        elif kind == "ordered":
            if not all(self._expect_value(v, spec, name, ("text",)) for v in values):
                return
            order = " < ".join(spec.values)
            for value in values:
                if value.value in spec.values:
                    continue
                hint = _did_you_mean(str(value.value), spec.values) or f"its values are {order}"
                if ordering is not None:
                    self._mismatch(value.span, f"`{name}` has no value `{_show(value)}` to compare with", hint)
                else:
                    self.report(value.span, "unknown-value", f"`{name}` has no value `{_show(value)}`",
                                hint, severity="warning")
        elif kind in ("number", "date"):
            for value in values:
                self._expect_value(value, spec, name, (kind,))
        elif kind == "attribute":
            wanted = ("number",) if ordering is not None else ("text", "number")
            if all(self._expect_value(v, spec, name, wanted) for v in values):
                self._check_known(name, values)

    _CASES: ClassVar[NodeTable[Callable[[Any, Any, str | None], None]]] = NodeTable(
        "checker",
        {
            Comparison: _check_comparison,
            InList: _check_in_list,
            Between: _check_between,
            Like: _check_like,
            Contains: _check_contains,
            Presence: _check_presence,
            SegmentRef: _check_segment_ref,
            BoolConst: _check_nothing,
            Not: _check_nothing,
            And: _check_nothing,
            Or: _check_nothing,
        },
    )

    def _expect_value(self, value: Value, spec: FieldSpec, name: str, kinds: tuple[str, ...]) -> bool:
        if value.kind in kinds:
            return True
        wanted = " or ".join(_KIND_WORDS[k] for k in kinds)
        hint = None
        if spec.kind == "ordered":
            hint = "compare with its words: " + " < ".join(spec.values)
        elif "text" in kinds and value.kind in ("number", "date", "bool"):
            hint = f'quote it to compare as text: "{value.raw}"'
        elif "date" in kinds:
            hint = "dates are written YYYY-MM-DD, e.g. 2026-01-31"
        elif "number" in kinds and value.kind == "text" and spec.kind == "attribute":
            hint = "ordering custom attributes compares numbers"
        elif "number" in kinds:
            hint = "numbers are written 42, 0.5, 100k, 1.5m, 10万"
        self._mismatch(value.span, f"`{name}` is {_describe_kind(spec)}; `{_show(value)}` is "
                       f"{_KIND_WORDS[value.kind]}, expected {wanted}", hint)
        return False

    def _check_closed(self, spec: FieldSpec, values: tuple[Value, ...], name: str) -> None:
        if not spec.values:
            return
        for value in values:
            if value.value not in spec.values:
                hint = _did_you_mean(str(value.value), spec.values) or "its values are " + ", ".join(spec.values)
                self.report(value.span, "unknown-value", f"`{name}` has no value `{_show(value)}`", hint,
                            severity="warning")

    def _check_known(self, name: str, values: tuple[Value, ...]) -> None:
        spec = lookup(name)
        if self.known_values is None or spec is None or spec.values:
            return  # closed fields are checked against their declared words
        known = self.known_values.get(name)
        if not known:
            return  # no data for this field yet: nothing to compare with
        for value in values:
            if value.kind == "text" and value.value not in known:
                hint = _did_you_mean(str(value.value), known)
                self.report(value.span, "unknown-value",
                            f"no customer has {name} `{_show(value)}`", hint, severity="warning")


def _describe_kind(spec: FieldSpec) -> str:
    return {
        "text": "a text field",
        "ordered": "an ordered field (" + " < ".join(spec.values) + ")",
        "number": "a number field",
        "date": "a date field",
        "set": "a set field",
        "attribute": "a custom attribute (text or number)",
    }[spec.kind]


def _walk(condition: Condition) -> Iterator[Condition]:
    """Every node of a condition, in source order, without recursion."""
    stack = [condition]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(operands(node)))


def check(
    rule_file: RuleFile,
    *,
    known_teams: Collection[str] | None = None,
    known_values: Mapping[str, Collection[str]] | None = None,
) -> list[Diagnostic]:
    """Every name and type problem of `rule_file`.

    known_teams: team keys, when a database is at hand (else teams are not checked).
    known_values: per field name, the values seen in the data (unseen literals get a warning).
    """
    return _Checker(rule_file, known_teams, known_values).run()


def check_condition(
    condition: Condition,
    *,
    segments: Collection[str] = (),
    known_values: Mapping[str, Collection[str]] | None = None,
) -> list[Diagnostic]:
    """Check a lone condition (e.g. a `where` filter); `segments` are the names it may use."""
    checker = _Checker(RuleFile(()), None, known_values)
    for name in segments:
        checker.defined[name] = Span(0, 0, 0, 0)
    checker._check_condition(condition, defining=None)
    checker._check_extent(condition)
    return checker.diagnostics
