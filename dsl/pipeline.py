"""The one place the passes are composed: parse -> check -> analysis."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from segmenta.dsl.analysis import analyse
from segmenta.dsl.ast import RuleFile
from segmenta.dsl.checker import check
from segmenta.dsl.diagnostics import Diagnostic
from segmenta.dsl.parser import parse


@dataclass(frozen=True)
class CheckResult:
    rule_file: RuleFile  # the statements that parsed (all of them when there is no syntax error)
    diagnostics: tuple[Diagnostic, ...]  # sorted by (line, column)

    @property
    def ok(self) -> bool:
        """True when no diagnostic is an error (warnings and infos allowed)."""
        return not any(diagnostic.is_error for diagnostic in self.diagnostics)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(diagnostic for diagnostic in self.diagnostics if diagnostic.is_error)


def check_source(
    source: str,
    *,
    known_teams: Collection[str] | None = None,
    known_values: Mapping[str, Collection[str]] | None = None,
) -> CheckResult:
    """Every diagnostic of a rule file.  Analysis (shadowed rules, contradictions,
    overlaps) reasons about well-formed rules only, so it runs when nothing else is an error."""
    rule_file, diagnostics = parse(source)
    diagnostics += check(rule_file, known_teams=known_teams, known_values=known_values)
    if not any(diagnostic.is_error for diagnostic in diagnostics):
        diagnostics += analyse(rule_file)
    diagnostics.sort(key=lambda d: (d.line, d.column, d.end_line, d.end_column))
    return CheckResult(rule_file, tuple(diagnostics))

