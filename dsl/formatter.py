"""The canonical layout of a rule file (`segmenta fmt`).

- one statement per line, single spaces around operators, `, ` between list items and actions;
- keywords in lower case; values exactly as written (`100k` stays `100k`, quotes stay as typed);
- labels and targets bare when they can be, else double-quoted;
- `and`/`or` with the fewest parentheses that keep the tree (`(a and b) and c` keeps its parentheses);
- comments kept: a comment after the end of a statement on its last line stays there;
  a comment inside a multi-line statement moves to its own line above it;
  other comments stay on their own lines, in place;
- runs of blank lines become one blank line; no blank lines at the start or end.

format_source(format_source(x)) == format_source(x), and the formatted text parses
to the same syntax tree as the original.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from segmenta.dsl.ast import (
    Action,
    And,
    Between,
    BoolConst,
    Comparison,
    Condition,
    Contains,
    InList,
    Like,
    NodeTable,
    Not,
    Or,
    Presence,
    SegmentDef,
    SegmentRef,
    Span,
    Statement,
)
from segmenta.dsl.diagnostics import RuleError
from segmenta.dsl.parser import Comment, is_bare_word, parse, quote, tokenize


def _name(text: str) -> str:
    return text if is_bare_word(text) else quote(text)


def _operand(node: Condition, parent: type) -> str:
    text = format_condition(node)
    needs_parentheses = (
        (parent is Or and isinstance(node, Or))
        or (parent is And and isinstance(node, (And, Or)))
        or (parent is Not and isinstance(node, (And, Or)))
    )
    return f"({text})" if needs_parentheses else text


def format_condition(node: Condition) -> str:
    return _FORMATS[type(node)](node)


def _format_or(node: Or) -> str:
    return " or ".join(_operand(child, Or) for child in node.operands)


def _format_and(node: And) -> str:
    return " and ".join(_operand(child, And) for child in node.operands)


def _format_not(node: Not) -> str:
    return f"not {_operand(node.operand, Not)}"


def _format_segment_ref(node: SegmentRef) -> str:
    return node.name


def _format_bool_const(node: BoolConst) -> str:
    return "true" if node.value else "false"


def _format_comparison(node: Comparison) -> str:
    return f"{node.subject.name} {node.op} {node.value.raw}"


def _format_in_list(node: InList) -> str:
    keyword = "not in" if node.negated else "in"
    return f"{node.subject.name} {keyword} ({', '.join(value.raw for value in node.values)})"


def _format_between(node: Between) -> str:
    return f"{node.subject.name} between {node.low.raw} and {node.high.raw}"


def _format_like(node: Like) -> str:
    return f"{node.subject.name} like {node.pattern.raw}"


def _format_contains(node: Contains) -> str:
    return f"{node.subject.name} contains {node.value.raw}"


def _format_presence(node: Presence) -> str:
    return f"{node.subject.name} is {'present' if node.present else 'missing'}"


_FORMATS: NodeTable[Callable[[Any], str]] = NodeTable(
    "formatter",
    {
        Comparison: _format_comparison,
        InList: _format_in_list,
        Between: _format_between,
        Like: _format_like,
        Contains: _format_contains,
        Presence: _format_presence,
        SegmentRef: _format_segment_ref,
        BoolConst: _format_bool_const,
        Not: _format_not,
        And: _format_and,
        Or: _format_or,
    },
)


def _format_action(action: Action) -> str:
    text = f"{action.kind} {_name(action.target)}"
    if action.within is None:
        return text
    return f"{text} within {action.within.raw} {'day' if action.within.value == 1 else 'days'}"


def format_statement(statement: Statement) -> str:
    if isinstance(statement, SegmentDef):
        return f"segment {statement.name} = {format_condition(statement.condition)}"
    actions = ", ".join(_format_action(action) for action in statement.actions)
    if statement.condition is None:
        return f"otherwise -> {actions}"
    label = f"{_name(statement.label)}: " if statement.label is not None else ""
    return f"{label}{format_condition(statement.condition)} -> {actions}"


@dataclass
class _Block:
    """One output unit: a statement (with the comments moved above it) or a lone comment."""

    first_line: int
    last_line: int
    lines: list[str] = field(default_factory=list)
    statement_end: Span | None = None


def _inside(comment: Comment, span: Span) -> bool:
    start = (comment.span.line, comment.span.column)
    return (span.line, span.column) <= start < (span.end_line, span.end_column)


def format_source(source: str) -> str:
    """The canonical text of `source`; raises RuleError when it has syntax errors."""
    rule_file, diagnostics = parse(source)
    if diagnostics:
        raise RuleError(diagnostics)
    _tokens, comments, _ = tokenize(source)
    blocks: list[_Block] = []
    pending = list(reversed(comments))
    for statement in rule_file.statements:
        span = statement.span
        while pending and (pending[-1].span.line, pending[-1].span.column) < (span.line, span.column):
            _place_comment(pending.pop(), blocks)
        block = _Block(span.line, span.end_line, statement_end=span)
        while pending and _inside(pending[-1], span):
            block.lines.append(pending.pop().text)
        block.lines.append(format_statement(statement))
        blocks.append(block)
    while pending:
        _place_comment(pending.pop(), blocks)
    out: list[str] = []
    previous: _Block | None = None
    for block in blocks:
        if previous is not None and block.first_line - previous.last_line > 1:
            out.append("")
        out.extend(block.lines)
        previous = block
    return "\n".join(out) + "\n" if out else ""


def _place_comment(comment: Comment, blocks: list[_Block]) -> None:
    last = blocks[-1] if blocks else None
    if last is not None and last.statement_end is not None and comment.span.line == last.statement_end.end_line:
        last.lines[-1] += f"  {comment.text}"
        last.statement_end = None  # one trailing comment per line
        return
    blocks.append(_Block(comment.span.line, comment.span.line, [comment.text]))
