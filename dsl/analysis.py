"""Static analysis of a checked rule file: shadowed rules, contradictions, overlaps.

Conditions are put into disjunctive normal form over *literals* (a predicate or its
exact complement; the rule language makes `not p` the complement of `p`, missing
values included: docs/rule-language.md, 'Conditions').  Each conjunction keeps, per
field, the exact set of values the field may still take:

* numbers: a union of intervals over the reals (open or closed ends);
* dates: a union of day intervals (calendar days are discrete);
* text and ordered fields: a finite set of words, or "anything but" a finite set
  (an ordered comparison is the finite set of words of qualifying rank, so a
  stored word outside the declared order is handled exactly);
* custom attributes: a text part and a number part;
* set fields: words it must and must not contain, and presence;
* and whether the value may be missing.

A conjunction is unsatisfiable when some field has no value left; fields are
treated as independent, which only ever adds customers, so "unsatisfiable" is
certain.  What cannot be decided exactly (text ordering, `like` patterns against an
open set of words, fields derived from each other) is UNKNOWN, and the analysis then
says nothing.  Normal forms and the total work are capped; beyond the caps, also nothing.

The value sets live in dsl.value_sets, literals, conjunctions and normal forms in
dsl.normal_forms; this module draws the conclusions about the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from segmenta.dsl import ast
from segmenta.dsl.diagnostics import Diagnostic
from segmenta.dsl.normal_forms import DNF, MAX_WORK, TOP, FieldState, Normalizer, Sat, ScalarState, TooBig

# Module-level aliases: the loops below read these instead of the enum's class attributes.
_UNSAT, _UNKNOWN, _SAT = Sat.UNSAT, Sat.UNKNOWN, Sat.SAT


# ---------------------------------------------------------------------------
# The analysis.
# ---------------------------------------------------------------------------


def _name(rule: ast.Rule) -> str:
    if rule.label is not None:
        return f"`{rule.label}` (line {rule.span.line})"
    if rule.is_otherwise:
        return f"`otherwise` on line {rule.span.line}"
    return f"the rule on line {rule.span.line}"


def _names(rules: list[ast.Rule]) -> str:
    listed = [_name(r) for r in rules]
    if len(listed) > 3:
        listed = listed[:3] + [f"{len(listed) - 3} more"]
    return ", ".join(listed[:-1]) + " and " + listed[-1] if len(listed) > 1 else listed[0]


def _span_of(condition: ast.Condition, fallback: ast.Span) -> ast.Span:
    return condition.span if condition.span.line else fallback


Signature = dict[str, frozenset[str]]


def _signature(positive: DNF | None) -> Signature:
    """Fields the condition pins to a finite set of words in every conjunction (a cheap disjointness test)."""
    if not positive:
        return {}
    signature: Signature = {}
    first, rest = positive[0], positive[1:]
    for name in first.fields:
        words: set[str] = set()
        for conjunction in (first, *rest):
            pinned = _pinned_words(conjunction.fields.get(name))
            if pinned is None:
                break
            words |= pinned
        else:
            signature[name] = frozenset(words)
    return signature


def _pinned_words(state: FieldState | None) -> frozenset[str] | None:
    if not isinstance(state, ScalarState) or state.domain.has_non_text_value():
        return None
    words = state.domain.words
    return words.values if words is not None and words.finite else None


@dataclass
class _TeamRule:
    rule: ast.Rule
    positive: DNF | None
    negative: DNF | None
    contradictory: bool
    shadowed: bool = False
    signature: Signature = field(default_factory=dict)

    def surely_disjoint(self, other: _TeamRule) -> bool:
        return any(name in other.signature and not words & other.signature[name] for name, words in self.signature.items())


@dataclass
class _Index:
    """Earlier team rules by the words their signature pins, to skip surely disjoint pairs."""

    rules: list[_TeamRule] = field(default_factory=list)
    by_word: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    unpinned: dict[str, list[int]] = field(default_factory=dict)

    def add(self, team_rule: _TeamRule) -> None:
        position = len(self.rules)
        self.rules.append(team_rule)
        for name in set(self.by_word) | set(team_rule.signature):
            if name not in self.by_word:  # a field no earlier rule pinned: all of them are unpinned on it
                self.by_word[name] = {}
                self.unpinned[name] = list(range(position))
            if name in team_rule.signature:
                for word in team_rule.signature[name]:
                    self.by_word[name].setdefault(word, []).append(position)
            else:
                self.unpinned.setdefault(name, []).append(position)

    def candidates(self, later: _TeamRule) -> list[_TeamRule]:
        """Earlier (non-contradictory) rules that may match a customer `later` matches, in file order."""
        pinned = [name for name in later.signature if name in self.by_word]
        if pinned:
            name = min(pinned, key=lambda n: len(later.signature[n]))
            positions = set(self.unpinned.get(name, ()))
            for word in later.signature[name]:
                positions.update(self.by_word[name].get(word, ()))
            chosen = [self.rules[p] for p in sorted(positions)]
        else:
            chosen = list(self.rules)
        return [r for r in chosen if not r.contradictory and not later.surely_disjoint(r)]


def analyse(rule_file: ast.RuleFile) -> list[Diagnostic]:
    """Warnings `contradiction` and `shadowed-rule`, infos `overlap` and `task-due-overlap`, for a file without errors."""
    segments = {s.name: s.condition for s in rule_file.statements if isinstance(s, ast.SegmentDef)}
    normalizer = Normalizer(segments)
    diagnostics: list[Diagnostic] = []
    try:
        team_rules = _contradictions(rule_file, normalizer, diagnostics)
        _shadowing_and_overlaps(team_rules, normalizer, diagnostics)
    except TooBig:
        pass  # what was found before the budget ran out is certain; the rest goes unsaid
    _task_due_overlaps(rule_file, diagnostics)
    diagnostics.sort(key=lambda d: (d.line, d.column))
    return diagnostics


def _task_due_overlaps(rule_file: ast.RuleFile, diagnostics: list[Diagnostic]) -> None:
    """A task kind given again with other due days: where both rules match, the first one's applies."""
    first: dict[str, tuple[ast.Rule, ast.Action]] = {}
    for statement in rule_file.statements:
        if not isinstance(statement, ast.Rule):
            continue
        for action in statement.actions:
            if action.kind != "task":
                continue
            earlier = first.setdefault(action.target, (statement, action))
            if earlier[0] is statement or earlier[1].due_days == action.due_days:
                continue
            diagnostics.append(
                Diagnostic.at(
                    action.span,
                    "info",
                    "task-due-overlap",
                    f"task {action.target} is also given by {_name(earlier[0])}, due in {earlier[1].due_days} days; "
                    f"for a customer both match, that earlier rule's due date applies, not {action.due_days} days",
                )
            )


def _normal_forms(normalizer: Normalizer, condition: ast.Condition) -> tuple[DNF | None, DNF | None]:
    forms: list[DNF | None] = []
    for positive in (True, False):
        try:
            forms.append(normalizer.dnf(condition, positive))
        except TooBig:
            if normalizer.work > MAX_WORK:
                raise
            forms.append(None)
    return forms[0], forms[1]


def _contradictions(rule_file: ast.RuleFile, normalizer: Normalizer, diagnostics: list[Diagnostic]) -> list[_TeamRule]:
    team_rules: list[_TeamRule] = []
    for statement in rule_file.statements:
        condition = statement.condition
        if condition is None:  # otherwise
            assert isinstance(statement, ast.Rule)
            if statement.team is not None:
                team_rules.append(_TeamRule(statement, [TOP], [], False))
            continue
        positive, negative = _normal_forms(normalizer, condition)
        contradictory = positive == [] and not (isinstance(condition, ast.BoolConst) and not condition.value)
        if contradictory:
            what = statement.display_name if isinstance(statement, ast.SegmentDef) else _name(statement)
            diagnostics.append(
                Diagnostic.at(
                    _span_of(condition, statement.span),
                    "warning",
                    "contradiction",
                    f"the condition of {what} can never hold: no customer satisfies all of it",
                    hint="check the ranges and values combined with `and`",
                )
            )
        if isinstance(statement, ast.Rule) and statement.team is not None:
            team_rules.append(_TeamRule(statement, positive, negative, positive == []))
    return team_rules


def _shadowing_and_overlaps(team_rules: list[_TeamRule], normalizer: Normalizer, diagnostics: list[Diagnostic]) -> None:
    remaining: DNF | None = [TOP]  # customers no earlier team rule takes
    index = _Index()
    for later in team_rules:
        later.signature = _signature(later.positive)
        if not later.contradictory and later.positive is not None and index.rules:
            pairs = [
                (r, _UNKNOWN if r.positive is None else normalizer.satisfiability(later.positive, r.positive))
                for r in index.candidates(later)
            ]
            candidates = [r for r, status in pairs if status is not _UNSAT]
            covering = _covering(later, candidates, remaining, normalizer)
            if covering is not None:
                later.shadowed = True
                names, verb = covering
                diagnostics.append(
                    Diagnostic.at(
                        later.rule.span,
                        "warning",
                        "shadowed-rule",
                        f"{_name(later.rule)} can never decide a team: {names} already {verb} every customer it could match",
                        hint="move it above the rule that covers it, or narrow that rule",
                    )
                )
            elif not later.rule.is_otherwise:
                _overlap(later, [r for r, status in pairs if status is _SAT], diagnostics)
        if remaining is not None:
            try:
                remaining = None if later.negative is None else normalizer.product(remaining, later.negative)
            except TooBig:
                if normalizer.work > MAX_WORK:
                    raise
                remaining = None
        index.add(later)


def _covering(
    later: _TeamRule, candidates: list[_TeamRule], remaining: DNF | None, normalizer: Normalizer
) -> tuple[str, str] | None:
    """Who takes every customer `later` could match (names, verb), or None when not certain."""
    assert later.positive is not None
    if not candidates:
        return None
    for candidate in candidates:
        if candidate.negative is not None and normalizer.satisfiability(later.positive, candidate.negative) is _UNSAT:
            return _name(candidate.rule), "takes"
    if remaining is not None and normalizer.satisfiability(later.positive, remaining) is _UNSAT:
        return "together " + _names([c.rule for c in candidates]), "take"
    return None


def _overlap(later: _TeamRule, surely_overlapping: list[_TeamRule], diagnostics: list[Diagnostic]) -> None:
    overlapping = [r for r in surely_overlapping if not r.shadowed and r.rule.team != later.rule.team]
    if overlapping:
        first = overlapping[0]
        others = f" (and {len(overlapping) - 1} more earlier rule(s))" if len(overlapping) > 1 else ""
        diagnostics.append(
            Diagnostic.at(
                later.rule.span,
                "info",
                "overlap",
                f"{_name(later.rule)} (team {later.rule.team}) can match the same customers as "
                f"{_name(first.rule)} (team {first.rule.team}){others}; the earlier rule decides for them",
            )
        )
