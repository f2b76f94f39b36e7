"""The Segmenta rule language: parse, check, analyse, compile (Python and SQL), explain.

Python API (docs/python-api.md; scripts rely on it)::

    from segmenta.dsl import compile_rules, RuleError
    ruleset = compile_rules(source)
    outcome = ruleset.evaluate({"size": "large", "region": "east"})
"""

from __future__ import annotations

from typing import Any

from segmenta.dsl.diagnostics import Diagnostic, RuleError
from segmenta.dsl.explain import Explanation, RuleTrace
from segmenta.dsl.outcome import TaskOutcome
from segmenta.dsl.ruleset import Outcome, Ruleset, compile_rules

__all__ = [
    "Diagnostic",
    "Explanation",
    "Outcome",
    "RuleError",
    "RuleTrace",
    "TaskOutcome",
    "Ruleset",
    "check_source",
    "compile_rules",
    "parse",
]


def __getattr__(name: str) -> Any:
    # The parser and checker load lark and the grammar; import them on first use only.
    if name == "check_source":
        from segmenta.dsl.pipeline import check_source

        return check_source
    if name == "parse":
        from segmenta.dsl.parser import parse

        return parse
    raise AttributeError(f"module 'dsl' has no attribute {name!r}")
