"""Building the syntax tree (dsl.ast) from the LALR parser's reductions.

`AstBuilder` runs inside the parser (bottom-up, no recursion): each grammar rule
(grammar.lark) becomes a node with its source span; values are read from their
tokens (`100k` is 100000.0, quoted strings are unescaped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from lark import Token, Transformer

from segmenta.dsl.ast import (
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
    Not,
    Or,
    Presence,
    Rule,
    SegmentDef,
    SegmentRef,
    Span,
    Value,
)

NUMBER_SUFFIXES = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "万": 1e4, "亿": 1e8}


def span_of(token: Token) -> Span:
    return Span(token.line, token.column, token.end_line, token.end_column)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Label:
    text: str
    span: Span


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), body)


def parse_number(raw: str) -> float:
    multiplier = NUMBER_SUFFIXES.get(raw[-1], 1.0)
    digits = raw[:-1] if raw[-1] in NUMBER_SUFFIXES else raw
    return float(digits) * multiplier


def _value_of(token: Token) -> Value:
    raw = str(token)
    span = span_of(token)
    kind = token.type
    if kind == "STRING":
        return Value("text", _unescape(raw[1:-1]), raw, span, quoted=True)
    if kind == "NUMBER":
        return Value("number", parse_number(raw), raw, span)
    if kind == "DATE":
        try:
            day = date.fromisoformat(raw)
        except ValueError:  # rejected before parsing; see _Tokenizer
            day = date.min
        return Value("date", day, raw, span)
    if kind in ("TRUE", "FALSE"):
        return Value("bool", kind == "TRUE", raw, span)
    return Value("text", raw, raw, span)


def _text_of(token: Token) -> str:
    raw = str(token)
    return _unescape(raw[1:-1]) if token.type == "STRING" else raw


Chain = tuple[Any, Any] | None
"""A list built by a left-recursive rule, as (earlier items, last item).  Immutable, so a copy
of the parser (the fallback kept at a possible statement end) can share it with the parser
that reads on."""


def _chain(children: list[Any]) -> Chain:
    """`item` starts a chain, `chain SEP item` adds to it."""
    if len(children) == 1:
        return (None, children[0])
    return (children[0], children[2])


def _items(chain: Chain) -> list[Any]:
    items = []
    while chain is not None:
        chain, item = chain
        items.append(item)
    items.reverse()
    return items


class AstBuilder(Transformer[Token, Any]):
    """Runs inside the LALR parser (bottom-up, no recursion), building dsl.ast nodes."""

    def segment_def(self, children: list[Any]) -> SegmentDef:
        keyword, name, _eq, condition = children
        return SegmentDef(str(name), condition, span_of(keyword).cover(condition.span), span_of(name))

    def rule(self, children: list[Any]) -> Rule:
        if isinstance(children[0], _Label):
            label, _colon, condition, _arrow, chain = children
            actions = _items(chain)
            return Rule(condition, tuple(actions), label.text, label.span, label.span.cover(actions[-1].span))
        condition, _arrow, chain = children
        actions = _items(chain)
        return Rule(condition, tuple(actions), None, None, condition.span.cover(actions[-1].span))

    def otherwise_rule(self, children: list[Any]) -> Rule:
        keyword, _arrow, chain = children
        actions = _items(chain)
        return Rule(None, tuple(actions), None, None, span_of(keyword).cover(actions[-1].span))

    def label(self, children: list[Token]) -> _Label:
        return _Label(_text_of(children[0]), span_of(children[0]))

    def actions(self, children: list[Any]) -> Chain:
        return _chain(children)

    def action(self, children: list[Token]) -> Action:
        if len(children) == 5:  # task KIND within N days
            keyword, target, _within, number, unit = children
            within = Value("number", parse_number(str(number)), str(number), span_of(number))
            return Action("task", _text_of(target), span_of(keyword).cover(span_of(unit)), within, str(unit), span_of(unit))
        keyword, target = children
        return Action(keyword.type.lower(), _text_of(target), span_of(keyword).cover(span_of(target)))  # type: ignore[arg-type]

    def condition(self, children: list[Chain]) -> Condition:
        operands = _items(children[0])
        if len(operands) == 1:
            return operands[0]
        return Or(tuple(operands), operands[0].span.cover(operands[-1].span))

    def or_chain(self, children: list[Any]) -> Chain:
        return _chain(children)

    def and_cond(self, children: list[Chain]) -> Condition:
        operands = _items(children[0])
        if len(operands) == 1:
            return operands[0]
        return And(tuple(operands), operands[0].span.cover(operands[-1].span))

    def and_chain(self, children: list[Any]) -> Chain:
        return _chain(children)

    def not_cond(self, children: list[Any]) -> Condition:
        if len(children) == 1:
            return children[0]
        keyword, operand = children
        return Not(operand, span_of(keyword).cover(operand.span))

    def group(self, children: list[Any]) -> Condition:
        return children[1]

    def segment_ref(self, children: list[Token]) -> SegmentRef:
        return SegmentRef(str(children[0]), span_of(children[0]))

    def bool_const(self, children: list[Token]) -> BoolConst:
        return BoolConst(children[0].type == "TRUE", span_of(children[0]))

    def field(self, children: list[Token]) -> FieldRef:
        return FieldRef(str(children[0]), span_of(children[0]))

    def compare_op(self, children: list[Token]) -> Token:
        return children[0]

    def value(self, children: list[Token]) -> Value:
        return _value_of(children[0])

    def value_list(self, children: list[Any]) -> tuple[tuple[Value, ...], Span]:
        return tuple(_items(children[1])), span_of(children[2])

    def values(self, children: list[Any]) -> Chain:
        return _chain(children)

    def comparison(self, children: list[Any]) -> Comparison:
        field, op, value = children
        return Comparison(field, str(op), value, field.span.cover(value.span))  # type: ignore[arg-type]

    def in_list(self, children: list[Any]) -> InList:
        field, _in, (values, end) = children
        return InList(field, values, False, field.span.cover(end))

    def not_in_list(self, children: list[Any]) -> InList:
        field, _not, _in, (values, end) = children
        return InList(field, values, True, field.span.cover(end))

    def between(self, children: list[Any]) -> Between:
        field, _between, low, _and, high = children
        return Between(field, low, high, field.span.cover(high.span))

    def like(self, children: list[Any]) -> Like:
        field, _like, pattern = children
        return Like(field, pattern, field.span.cover(pattern.span))

    def contains(self, children: list[Any]) -> Contains:
        field, _contains, value = children
        return Contains(field, value, field.span.cover(value.span))

    def presence(self, children: list[Any]) -> Presence:
        field, _is, word = children
        return Presence(field, word.type == "PRESENT", field.span.cover(span_of(word)))
