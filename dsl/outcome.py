"""What an evaluator returns: the outcome tuple of one customer and the compiled evaluator itself."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple


class TaskOutcome(NamedTuple):
    """A task the rules give a customer: its kind, the first matching rule giving it and its days until due."""

    kind: str
    rule: str
    due_days: int


OutcomeTuple = tuple[str | None, str | None, tuple[str, ...], tuple[str, ...], tuple[TaskOutcome, ...]]
"""(team, deciding rule display name, segments, tags, tasks) in first-contributed order."""

EvaluatorFunction = Callable[[Mapping[str, Any], "datetime | None"], OutcomeTuple]


@dataclass(frozen=True)
class CompiledEvaluator:
    function: EvaluatorFunction
    source_code: str
    """The generated Python text (for debugging; it holds no rule-file strings)."""

    def __call__(self, customer: Mapping[str, Any], as_of: datetime | None = None) -> OutcomeTuple:
        return self.function(customer, as_of)
