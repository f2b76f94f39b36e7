"""Rule text -> typed AST (dsl.ast) plus syntax diagnostics; never raises.

The grammar lives in grammar.lark.  This module tokenizes with the grammar's own
terminal patterns, retypes reserved words, and feeds the Lark LALR parser one
statement at a time; the parser builds the tree as it reduces (dsl.ast_builder) and
dsl.syntax_messages words the errors.  Newlines are whitespace, so a statement ends where the next
token cannot continue it; after a syntax error the parser skips to the next
plausible statement start, so every broken statement of a file gets a diagnostic.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lark import Lark, Token, UnexpectedToken

if TYPE_CHECKING:
    # Lark.parse_interactive() returns an InteractiveParser, but lark exports the class
    # from no public module; only its type is needed here.  The one place that reaches
    # past its public methods is _raw_driver, which says why.
    from lark.parsers.lalr_interactive_parser import InteractiveParser

from segmenta.dsl.ast import Condition, RuleFile, Span, Statement, operands
from segmenta.dsl.ast_builder import AstBuilder, parse_number, span_of
from segmenta.dsl.diagnostics import Diagnostic
from segmenta.dsl.syntax_messages import ACTION_WORDS, END, KEYWORDS, describe_token, syntax_message

# Deeper nesting is refused: later passes walk the tree recursively.
MAX_NESTING = 100
MAX_SYNTAX_ERRORS = 100

_ERROR = "ERROR"  # a placeholder token for text the tokenizer already reported


@dataclass(frozen=True)
class Comment:
    """A `#` comment: its text (with the `#`, without the line end) and where it is."""

    text: str
    span: Span


_LARK = Lark.open(
    str(Path(__file__).with_name("grammar.lark")),
    parser="lalr",
    lexer="basic",
    start=["statement", "condition"],
    maybe_placeholders=False,
    transformer=AstBuilder(),
    cache=True,
)


def _master_pattern() -> re.Pattern[str]:
    """One alternation of the grammar's terminals, highest priority (then longest literal) first.

    Whitespace goes first: it is the most frequent match and can be confused with nothing."""
    terminals = sorted(
        _LARK.terminals,
        key=lambda t: (t.name != "WS", -t.priority, t.pattern.type != "str", -len(t.pattern.value)),
    )
    return re.compile("|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals))


# Starting a parse from a copy of a fresh parser is much cheaper than asking Lark for a new one.
_FRESH_PARSERS = {symbol: _LARK.parse_interactive(start=symbol) for symbol in ("statement", "condition")}
_PATTERN = _master_pattern()
# Characters that cannot begin any token: a run of them is reported as one error.
_NO_TOKEN_START = re.compile(r"""[^\w\s#"'()=!<>:,\-]+""")
_SKIPPED = {"WS", "COMMENT"}
# Characters no database value can hold, and that the drivers refuse to send.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _show_char(char: str) -> str:
    if char.isprintable() and not char.isspace():
        return f"`{char}`"
    return f"U+{ord(char):04X}"


class _Tokenizer:
    """Splits source into tokens with 1-based positions; reports what no terminal matches."""

    def __init__(self, source: str, diagnostics: list[Diagnostic]) -> None:
        self.source = source
        self.diagnostics = diagnostics
        self.comments: list[Comment] = []
        self.line = 1
        self.line_start = 0

    def _token(self, kind: str, value: str, start: int) -> Token:
        column = start - self.line_start + 1
        return Token(kind, value, start, self.line, column, self.line, column + len(value), start + len(value))

    def _report(self, start: int, end: int, message: str, hint: str | None = None) -> Token:
        token = self._token(_ERROR, self.source[start:end], start)
        self.diagnostics.append(Diagnostic.at(span_of(token), "error", "syntax", message, hint))
        return token

    def tokens(self) -> Iterator[Token]:
        source, position, length = self.source, 0, len(self.source)
        match_at = _PATTERN.match
        while position < length:
            match = match_at(source, position)
            if match is None:
                yield self._bad_text(position)
                position = self._bad_end
                continue
            kind, text = match.lastgroup or "", match.group()
            if kind in _SKIPPED:
                if kind == "COMMENT":
                    token = self._token(kind, text.rstrip("\r"), position)
                    self.comments.append(Comment(str(token), span_of(token)))
                newlines = text.count("\n")
                if newlines:
                    self.line += newlines
                    self.line_start = position + text.rindex("\n") + 1
            else:
                if kind == "WORD":
                    lowered = text.lower()
                    if lowered in KEYWORDS:
                        kind = lowered.upper()
                column = position - self.line_start + 1
                token = Token(kind, text, position, self.line, column, self.line, column + len(text), match.end())
                yield token if kind not in ("DATE", "NUMBER", "STRING") else self._checked(token)
            position = match.end()

    def _checked(self, token: Token) -> Token:
        if token.type == "DATE":
            try:
                date.fromisoformat(str(token))
            except ValueError:
                return self._report(token.start_pos or 0, token.end_pos or 0, f"`{token}` is not a calendar date",
                                    "dates are written YYYY-MM-DD, e.g. 2026-01-31")
        if token.type == "NUMBER" and not math.isfinite(parse_number(str(token))):
            return self._report(token.start_pos or 0, token.end_pos or 0, "number too large")
        if token.type == "STRING":
            unstorable = _UNSTORABLE.search(str(token))
            if unstorable is not None:
                return self._report(token.start_pos or 0, token.end_pos or 0,
                                    f"a string cannot contain {_show_char(unstorable.group())}",
                                    "no stored value can hold it (PostgreSQL text has no NUL, UTF-8 no lone "
                                    "surrogates); remove it")
        return token

    def _bad_text(self, start: int) -> Token:
        source = self.source
        char = source[start]
        line_end = source.find("\n", start)
        line_end = len(source) if line_end < 0 else line_end
        if char in "\"'":
            self._bad_end = line_end
            return self._report(start, line_end, "unterminated string",
                                f"close the string with {char} on the same line")
        if char.isdigit() or (char == "-" and source[start + 1 : start + 2].isdigit()):
            word = re.compile(r"-?[\w.]+").match(source, start)
            self._bad_end = word.end() if word else start + 1
            return self._report(start, self._bad_end, f"`{source[start:self._bad_end]}` is not a number",
                                "numbers are digits with an optional suffix k, m, 万 or 亿 (100k, 1.5m, 10万), "
                                "dates are YYYY-MM-DD; quote other text")
        run = _NO_TOKEN_START.match(source, start + 1, line_end)
        end = run.end() if run else start + 1
        self._bad_end = end
        shown = ", ".join(dict.fromkeys(_show_char(c) for c in source[start:end][:5]))
        plural = "s" if end - start > 1 else ""
        hint = "custom attributes are written attr.NAME" if char == "." else None
        return self._report(start, end, f"unexpected character{plural} {shown}", hint)

    _bad_end = 0


# --- the statement driver -------------------------------------------------------------------

_STATEMENT_STARTS = {"SEGMENT", "OTHERWISE", "WORD", "STRING", "ATTR", "NOT", "LPAR", "TRUE", "FALSE"}


def _raw_driver(parser: InteractiveParser) -> tuple[Mapping[Any, Mapping[str, Any]], list[Any], Callable[[Token], Any]]:
    """The parse table, state stack and feed of `parser`'s LALR state: `states[stack[-1]]` is
    `parser.choices()`, `feed(token)` is `parser.feed_token(token)` for any token but `$END`.

    The one reach past lark's public API.  The fast pass reads every token of every
    well-formed file, and the public InteractiveParser methods each wrap one call to the
    parser state it holds (`parser_state`): the two extra calls per token cost about 6 % of
    parsing a large file.  Everything else goes through the public methods.  pyproject.toml
    bounds lark to <2; a lark upgrade must rerun tests/dsl.
    """
    state = parser.parser_state
    return state.parse_conf.parse_table.states, state.state_stack, state.feed_token


class _Parser:
    def __init__(self, tokens: list[Token], diagnostics: list[Diagnostic]) -> None:
        self.tokens = tokens
        self.diagnostics = diagnostics
        self.syntax_errors = sum(1 for d in diagnostics if d.code == "syntax")
        self.label_starts = frozenset(index for index in range(len(tokens) - 1) if tokens[index + 1].type == "COLON")

    # Where a statement may start again after an error: a line beginning a segment
    # definition, `otherwise ->`, a label, or a condition right after an action.
    def _is_restart(self, index: int) -> bool:
        tokens = self.tokens
        token = tokens[index]
        following = [t.type for t in tokens[index + 1 : index + 3]]
        if token.type == "SEGMENT" and following[:2] == ["WORD", "EQ"]:
            return True
        if token.type == "OTHERWISE" and following[:1] == ["ARROW"]:
            return True
        if token.type in ("WORD", "STRING") and following[:1] == ["COLON"]:
            return True
        if index < 2 or token.type not in _STATEMENT_STARTS:
            return False
        first_on_line = (token.line or 0) > (tokens[index - 1].end_line or 0)
        after_action = tokens[index - 2].type in ACTION_WORDS and tokens[index - 1].type in ("WORD", "STRING")
        return first_on_line and after_action

    def _recover(self, error_index: int, start: int) -> int:
        index = error_index if error_index > start else start + 1
        while index < len(self.tokens) and not self._is_restart(index):
            index += 1
        return index

    def _error(self, token: Token | None, message: str, hint: str | None = None) -> None:
        if token is None:
            last = self.tokens[-1] if self.tokens else None
            line = (last.end_line or 1) if last is not None else 1
            column = (last.end_column or 1) if last is not None else 1
            span = Span(line, column, line, column + 1)
        else:
            span = span_of(token)
        self.diagnostics.append(Diagnostic.at(span, "error", "syntax", message, hint))
        self.syntax_errors += 1

    def parse_one(self, start: int, symbol: str) -> tuple[Any | None, int]:
        """Parse the statement (or condition) beginning at token `start`; return it (None if broken) and where the next begins."""
        parsed = self._parse_fast(start, symbol)
        if isinstance(parsed, tuple):
            return parsed
        return self._parse_careful(start, symbol, trusted_until=parsed)

    # -- where a statement ends: the one rule both passes follow ------------------------------
    #
    # Newlines are whitespace, so a statement ends before the first token the parser cannot
    # take, or before `WORD :` (a label).  If it cannot end there, it ends at the latest
    # earlier line start where it could have: after `segment a = b`, a rule beginning with
    # `not` reads on as `b not in ...` until that fails.

    def _label_follows(self, index: int, start: int) -> bool:
        """`WORD :` always starts a labelled rule, so it ends whatever came before it."""
        return index > start and index in self.label_starts

    def _could_end_before(self, index: int, start: int, choices: Container[str]) -> bool:
        """Token `index` begins a line and could begin a statement, and the one read so far could end before it."""
        token = self.tokens[index]
        return (index > start and token.type in _STATEMENT_STARTS and END in choices
                and (token.line or 0) > (self.tokens[index - 1].end_line or 0))

    def _end(self, parser: InteractiveParser, index: int, start: int,
             fallback: tuple[InteractiveParser, int] | None, *, keep: bool) -> tuple[Any, int] | None:
        """End the statement before token `index`, or else at the fallback: (statement, where the next
        begins), or None when it can end at neither.  `keep`: `parser` must stay as it is when
        the end fails (the careful pass reports from it)."""
        for candidate, resume in ((parser, index), fallback or (None, 0)):
            if candidate is not None and resume > start and END in candidate.choices():
                # LALR merges lookaheads, so `$END` among the choices does not promise that the
                # reductions it starts will accept it: try it (on a copy where that matters).
                if keep and candidate is parser:
                    candidate = candidate.copy(deepcopy_values=False)
                end = Token.new_borrow_pos(END, "", self.tokens[resume - 1])
                try:
                    return candidate.feed_token(end), resume
                except UnexpectedToken:
                    pass
        return None

    # -- the two passes ------------------------------------------------------------------------

    def _parse_fast(self, start: int, symbol: str) -> tuple[Any, int] | int:
        """The common case, a well-formed statement, without the bookkeeping error messages need.

        On any trouble, returns the index of the token where it began: every token before
        it was accepted, so the careful pass need not guard those."""
        tokens, count, label_starts = self.tokens, len(self.tokens), self.label_starts
        parser = _FRESH_PARSERS[symbol].copy(deepcopy_values=False)
        states, stack, feed = _raw_driver(parser)
        fallback: tuple[InteractiveParser, int] | None = None
        depth = 0
        index = start
        while True:
            token = tokens[index] if index < count else None
            table = states[stack[-1]]  # parser.choices()
            if token is None or token.type not in table or (index in label_starts and self._label_follows(index, start)):
                ended = self._end(parser, index, start, fallback, keep=False)
                return index if ended is None else ended
            kind = token.type
            if kind == "LPAR":
                depth += 1
                if depth > MAX_NESTING:
                    return index
            elif kind == "RPAR":
                depth -= 1
            if END in table and kind in _STATEMENT_STARTS and self._could_end_before(index, start, table):
                fallback = (parser.copy(deepcopy_values=False), index)
            try:
                feed(token)  # parser.feed_token(token)
            except UnexpectedToken:
                return index
            index += 1

    def _parse_careful(self, start: int, symbol: str, trusted_until: int) -> tuple[Any | None, int]:
        tokens = self.tokens
        parser = _FRESH_PARSERS[symbol].copy(deepcopy_values=False)
        depth = 0
        fallback: tuple[InteractiveParser, int] | None = None
        index = start
        while True:
            token = tokens[index] if index < len(tokens) else None
            if token is not None and token.type == _ERROR:
                return None, self._recover(index, start)
            choices = parser.choices()
            if token is not None and token.type in choices and not self._label_follows(index, start):
                if token.type == "LPAR":
                    depth += 1
                    if depth > MAX_NESTING:
                        self._error(token, f"nesting too deep: more than {MAX_NESTING} levels of parentheses",
                                    "split the condition into named segments")
                        return None, self._recover(index, start)
                elif token.type == "RPAR":
                    depth -= 1
                if self._could_end_before(index, start, choices):
                    fallback = (parser.copy(deepcopy_values=False), index)
                if index < trusted_until:
                    parser.feed_token(token)
                    index += 1
                    continue
                # Feeding can still fail (LALR merges lookaheads): try it on a copy, so the
                # parser stays intact for the error message.
                attempt = parser.copy(deepcopy_values=False)
                try:
                    attempt.feed_token(token)
                except UnexpectedToken:
                    pass
                else:
                    parser = attempt
                    index += 1
                    continue
            ended = self._end(parser, index, start, fallback, keep=True)
            if ended is not None:
                return ended
            # The exact set: LALR merges lookaheads, so `choices` may list tokens that would fail later.
            message, hint = syntax_message(parser.accepts(), token, tokens[index - 1] if index > start else None)
            if token is None:
                self._error(None, message, hint)
                return None, index
            if index == start and symbol == "statement":
                message, hint = self._statement_start_message(index, message, hint)
            self._error(token, message, hint)
            return None, self._recover(index, start)

    def _statement_start_message(self, index: int, message: str, hint: str | None) -> tuple[str, str | None]:
        token, tokens = self.tokens[index], self.tokens
        if token.type in ("TEAM", "TAG", "TASK") and index >= 2 and tokens[index - 2].type in ACTION_WORDS:
            return f"expected `,` before `{token}`", "separate actions with commas: `team a, tag b`"
        if token.type == "ARROW":
            return "expected a condition before `->`", "write `otherwise -> ...` for a catch-all rule"
        return message.replace("expected a condition", "expected a statement (a rule or `segment NAME = ...`)", 1), hint

    def too_many_errors(self) -> bool:
        return self.syntax_errors >= MAX_SYNTAX_ERRORS


def _depth(condition: Condition) -> int:
    """Nesting depth of a condition, measured without recursion."""
    deepest, stack = 0, [(condition, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in operands(node))
    return deepest


def _too_deep(node: Condition | None, span: Span, diagnostics: list[Diagnostic]) -> bool:
    if node is None or _depth(node) <= 2 * MAX_NESTING:
        return False
    diagnostics.append(Diagnostic.at(span, "error", "syntax", "nesting too deep",
                                     "split the condition into named segments"))
    return True


def tokenize(source: str) -> tuple[list[Token], list[Comment], list[Diagnostic]]:
    """Tokens (without whitespace and comments), the comments, and diagnostics for text no token matches."""
    diagnostics: list[Diagnostic] = []
    # A byte-order mark is whitespace here; replacing it keeps every column in place.
    tokenizer = _Tokenizer(source.replace("\ufeff", " "), diagnostics)
    tokens = []
    for token in tokenizer.tokens():
        tokens.append(token)
        if len(diagnostics) >= MAX_SYNTAX_ERRORS:
            break
    return tokens, tokenizer.comments, diagnostics


def _too_many(diagnostics: list[Diagnostic]) -> None:
    last = diagnostics[-1]
    diagnostics.append(Diagnostic("error", "syntax", f"too many syntax errors; stopped after {MAX_SYNTAX_ERRORS}",
                                  last.line, last.column, last.end_line, last.end_column))


def parse(source: str) -> tuple[RuleFile, list[Diagnostic]]:
    """Parse a rule file; the RuleFile holds every statement that parsed, the list every syntax error."""
    tokens, _comments, diagnostics = tokenize(source)
    parser = _Parser(tokens, diagnostics)
    statements: list[Statement] = []
    index = 0
    while index < len(tokens) and not parser.too_many_errors():
        statement, index = parser.parse_one(index, "statement")
        if statement is None:
            continue
        if _too_deep(statement.condition, statement.span, diagnostics):
            parser.syntax_errors += 1
            continue
        statements.append(statement)
    if parser.too_many_errors():
        _too_many(diagnostics)
    diagnostics.sort(key=lambda d: (d.line, d.column))
    return RuleFile(tuple(statements), source), diagnostics


def parse_condition(source: str) -> tuple[Condition | None, list[Diagnostic]]:
    """Parse a lone condition (e.g. a GraphQL `where` filter); None when it has syntax errors."""
    tokens, _comments, diagnostics = tokenize(source)
    if diagnostics:
        return None, diagnostics
    if not tokens:
        diagnostics.append(Diagnostic("error", "syntax", "expected a condition, found nothing", 1, 1, 1, 2))
        return None, diagnostics
    parser = _Parser(tokens, diagnostics)
    condition, index = parser.parse_one(0, "condition")
    if condition is not None and index < len(tokens):
        token = tokens[index]
        parser._error(token, f"unexpected {describe_token(token)} after the condition",
                      "join conditions with `and` or `or`")
        return None, diagnostics
    if condition is not None and _too_deep(condition, condition.span, diagnostics):
        return None, diagnostics
    return condition, diagnostics


def is_bare_word(text: str) -> bool:
    """True when `text` can be written without quotes (a bare word that is not a keyword)."""
    match = _PATTERN.fullmatch(text)
    return match is not None and match.lastgroup == "WORD" and text.lower() not in KEYWORDS


def quote(text: str) -> str:
    """`text` as a double-quoted string literal that parses back to `text`."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def display_width(text: str) -> int:
    """Terminal columns `text` takes (wide CJK characters take two)."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)
