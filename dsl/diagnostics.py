"""Diagnostics: the located messages every compiler pass reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from segmenta.dsl.ast import Span

Severity = Literal["error", "warning", "info"]

# The stable codes of docs/rule-language.md, 'Diagnostics': clients match on them; more may be added.
CODES = (
    "syntax",
    "unknown-field",
    "type-mismatch",
    "unknown-segment",
    "duplicate-name",
    "otherwise-not-last",
    "unknown-team",
    "unknown-value",
    "shadowed-rule",
    "contradiction",
    "overlap",
    "too-deep",
    "too-large",
)


@dataclass(frozen=True)
class Diagnostic:
    severity: Severity
    code: str
    message: str
    line: int
    column: int
    end_line: int
    end_column: int
    hint: str | None = None

    @classmethod
    def at(cls, span: Span, severity: Severity, code: str, message: str, hint: str | None = None) -> Diagnostic:
        return cls(severity, code, message, span.line, span.column, span.end_line, span.end_column, hint)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RuleError(Exception):
    """Raised by compile_rules when the source has errors; carries every diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.is_error]
        first = errors[0] if errors else None
        summary = f"{len(errors)} error(s)"
        if first is not None:
            summary += f"; first at line {first.line}, column {first.column}: {first.message}"
        super().__init__(summary)
