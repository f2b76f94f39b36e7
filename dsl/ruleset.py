"""The Python API (docs/python-api.md): compile_rules, Ruleset, Outcome."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from segmenta.dsl import ast
from segmenta.dsl.diagnostics import Diagnostic, RuleError
from segmenta.dsl.explain import Explanation, explain
from segmenta.dsl.outcome import CompiledEvaluator, OutcomeTuple, TaskOutcome
from segmenta.dsl.python_compiler import compile_rule_file


class Outcome(NamedTuple):
    """Where one customer lands: `rule` is the deciding rule's label (`line N` when unlabelled).

    `segments` and `tags` are the rule-made ones, in the order the file first contributes them;
    `tasks` the kinds of `-> task` actions whose rule matches, each with the first such rule
    and its days until due.  (A named tuple: built once per customer, it must be cheap.)
    """

    team: str | None
    rule: str | None
    segments: tuple[str, ...]
    tags: tuple[str, ...]
    tasks: tuple[TaskOutcome, ...] = ()


def _unique(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


class Ruleset:
    """A checked, compiled rule file."""

    def __init__(self, rule_file: ast.RuleFile, diagnostics: Sequence[Diagnostic] = (), source: str | None = None) -> None:
        if any(d.is_error for d in diagnostics):
            raise RuleError(list(diagnostics))
        self.rule_file = rule_file
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        self.source = source if source is not None else rule_file.source
        self.compiled: CompiledEvaluator = compile_rule_file(rule_file)
        rules = [s for s in rule_file.statements if isinstance(s, ast.Rule)]
        self.teams = _unique([a.target for r in rules for a in r.actions if a.kind == "team"])
        segment_keys: list[str] = []
        for s in rule_file.statements:
            if isinstance(s, ast.SegmentDef):
                segment_keys.append(s.name)
            elif isinstance(s, ast.Rule):
                segment_keys.extend(a.target for a in s.actions if a.kind == "segment")
        self.segment_keys = _unique(segment_keys)
        self.tag_names = _unique([a.target for r in rules for a in r.actions if a.kind == "tag"])
        self.task_kinds = _unique([a.target for r in rules for a in r.actions if a.kind == "task"])
        self.labels = tuple(r.display_name for r in rules)

    def decide(self, customer: Mapping[str, Any], as_of: datetime | None = None) -> OutcomeTuple:
        """The raw (team, rule, segments, tags, tasks) tuple: the fast path for bulk evaluation."""
        return self.compiled.function(customer, as_of)

    def evaluate(self, customer: Mapping[str, Any], as_of: datetime | None = None) -> Outcome:
        return Outcome._make(self.compiled.function(customer, as_of))

    def explain(self, customer: Mapping[str, Any], as_of: datetime | None = None) -> Explanation:
        return explain(self.rule_file, customer, as_of)


def compile_rules(source: str) -> Ruleset:
    """Parse, check and compile a rule file; raises RuleError (with every diagnostic) when it has errors."""
    from segmenta.dsl.pipeline import check_source

    result = check_source(source)
    if not result.ok or result.rule_file is None:
        raise RuleError(list(result.diagnostics))
    return Ruleset(result.rule_file, result.diagnostics, source)
