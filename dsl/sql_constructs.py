"""SQL constructs the rule compiler needs beyond SQLAlchemy's own: and/or lists that stay
shallow however long (SQLite's expression-depth limit), a case-sensitive `like` and code-point
text order on every dialect (docs/sql-compilation.md)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Boolean, String, and_, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, BooleanClauseList, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

# SQLite refuses an expression tree deeper than 1,000 and reads `a OR b OR … OR z` as a chain as
# deep as its terms, while SQLAlchemy flattens nested ORs (and ANDs) into one such chain, even
# through its own parentheses: a segment used four times in each of five nested segments became a
# chain of 1,024 terms.  Long lists are therefore cut into groups in parentheses SQLAlchemy keeps,
# and a nested list of the same operator keeps its own, so depth grows with nesting, not terms.
_GROUP_SIZE = 32


class _Parenthesised(ColumnElement[bool]):
    """A condition in parentheses that SQLAlchemy does not flatten into the list around it."""

    __visit_name__ = "segmenta_parenthesised"
    inherit_cache = True
    type = Boolean()
    _traverse_internals = [("element", InternalTraversal.dp_clauseelement)]

    def __init__(self, element: ColumnElement[bool]) -> None:
        self.element = element


@compiles(_Parenthesised)
def _compile_parenthesised(element: _Parenthesised, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.element, **kw)})"


def _combined(combine: Callable[..., ColumnElement[bool]], parts: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    """`combine(*parts)` (or_ / and_) whose SQL stays shallow however many or nested the parts."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) > _GROUP_SIZE:
        groups = [parts[start : start + _GROUP_SIZE] for start in range(0, len(parts), _GROUP_SIZE)]
        return _combined(combine, [_Parenthesised(_combined(combine, group)) for group in groups])
    return combine(*[_Parenthesised(part) if isinstance(part, BooleanClauseList) else part for part in parts])


def any_of(parts: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    return _combined(or_, parts)


def all_of(parts: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    return _combined(and_, parts)


# ---------------------------------------------------------------------------
# Dialect-aware constructs
# ---------------------------------------------------------------------------

LIKE_ESCAPE = "!"


def like_pattern(pattern: str) -> str:
    """Rule `like` pattern as an SQL LIKE pattern with escape character `!`."""
    out: list[str] = []
    for char in pattern:
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char in ("%", "_", LIKE_ESCAPE):
            out.append(LIKE_ESCAPE + char)
        else:
            out.append(char)
    return "".join(out)


def glob_pattern(pattern: str) -> str:
    """Rule `like` pattern as an SQLite GLOB pattern (`[` is the only other GLOB metacharacter)."""
    return "".join("[[]" if char == "[" else char for char in pattern)


class CaseSensitiveMatch(ColumnElement[bool]):
    """`value like "pattern"`: GLOB on SQLite (its LIKE ignores ASCII case), LIKE … ESCAPE elsewhere.

    Both dialect spellings of the pattern travel as bound parameters; only the
    one the dialect renders is sent.
    """

    __visit_name__ = "segmenta_case_sensitive_match"
    inherit_cache = True
    type = Boolean()
    _traverse_internals = [
        ("value", InternalTraversal.dp_clauseelement),
        ("glob", InternalTraversal.dp_clauseelement),
        ("like_param", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, value: ColumnElement[Any], pattern: str) -> None:
        self.value = value
        self.glob: BindParameter[str] = literal(glob_pattern(pattern), String)
        # Not `like`: that would shadow ColumnElement.like().
        self.like_param: BindParameter[str] = literal(like_pattern(pattern), String)


@compiles(CaseSensitiveMatch)
def _compile_match(element: CaseSensitiveMatch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.value.like(element.like_param, escape=LIKE_ESCAPE), **kw)})"


@compiles(CaseSensitiveMatch, "sqlite")
def _compile_match_sqlite(element: CaseSensitiveMatch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.value, **kw)} GLOB {compiler.process(element.glob, **kw)})"


class CodepointText(ColumnElement[str]):
    """Text compared by code point, as Python compares strings.

    SQLite's default BINARY collation already does so on UTF-8; PostgreSQL needs
    the "C" collation (byte order of UTF-8 is code-point order).
    """

    __visit_name__ = "segmenta_codepoint_text"
    inherit_cache = True
    type = String()
    _traverse_internals = [("element", InternalTraversal.dp_clauseelement)]

    def __init__(self, element: ColumnElement[Any]) -> None:
        self.element = element


@compiles(CodepointText)
def _compile_codepoint(element: CodepointText, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.element, **kw)


@compiles(CodepointText, "postgresql")
def _compile_codepoint_postgresql(element: CodepointText, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.element, **kw)} COLLATE "C")'
