"""`customers(where: "…")`: a rule-language condition as an SQL filter.

A bare identifier names a segment stored in the database (manual or dynamic),
so `where: "high_value and region = east"` works.  Errors come back as one
GraphQL error with `extensions.code = INVALID_CONDITION` and the located
diagnostics (line, column, hint) in `extensions.diagnostics`.  A condition with warnings only
(`size = hugee`, a value `size` never has) runs, and its warnings are in the response's
`extensions.warnings`, so a client can tell "nothing matches" from "you misspelled it".

A condition is read over every customer, so its cost grows with the database and
with its own size: it is refused past ``SEGMENTA_WHERE_MAX_TERMS`` terms (each
comparison, `contains`, segment name, and each value of an `in` list, counts one;
default 100), and a valid one holds a slot of the expensive-read share of the
connection pool (storage/guard.py) until the request ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from graphql import GraphQLError
from sqlalchemy import ColumnElement, exists, select

from segmenta.dsl.ast import And, Condition, InList, Not, Or, SegmentRef
from segmenta.dsl.checker import check_condition
from segmenta.dsl.diagnostics import Diagnostic, RuleError
from segmenta.dsl.parser import parse_condition
from segmenta.schema.context import Info
from segmenta.schema.serial import SerialSession
from segmenta.storage import models
from segmenta.storage.guard import MAX_TERMS_SETTING, hold_expensive_slot, max_terms_from_environment
from segmenta.storage.rule_fields import customers_where

INVALID_CONDITION = "INVALID_CONDITION"
MAX_CONDITION_LENGTH = 10_000
# None: SEGMENTA_WHERE_MAX_TERMS (read per request, so a bad value fails start-up checks, not imports).
MAX_TERMS: int | None = None


def condition_error(diagnostics: list[Diagnostic]) -> GraphQLError:
    errors = [diagnostic for diagnostic in diagnostics if diagnostic.is_error] or diagnostics
    first = errors[0]
    message = f"invalid `where` condition at line {first.line}, column {first.column}: {first.message}"
    if first.hint:
        message += f" ({first.hint})"
    return GraphQLError(
        message,
        extensions={"code": INVALID_CONDITION, "diagnostics": [diagnostic.to_dict() for diagnostic in errors]},
    )


def segment_names(condition: Condition) -> Iterator[str]:
    if isinstance(condition, SegmentRef):
        yield condition.name
    elif isinstance(condition, Not):
        yield from segment_names(condition.operand)
    elif isinstance(condition, And | Or):
        for operand in condition.operands:
            yield from segment_names(operand)


def terms(condition: Condition) -> Iterator[Condition]:
    """The leaves of a condition, one per term its SQL costs (an `in` list: one per value)."""
    if isinstance(condition, Not):
        yield from terms(condition.operand)
    elif isinstance(condition, And | Or):
        for operand in condition.operands:
            yield from terms(operand)
    elif isinstance(condition, InList):
        for _ in condition.values:
            yield condition
    else:
        yield condition


def too_many_terms(condition: Condition, limit: int) -> GraphQLError | None:
    """The located error of a condition over `limit` terms, pointing at the first term past it."""
    count = 0
    first_over = None
    for term in terms(condition):
        count += 1
        if count == limit + 1:
            first_over = term
    if first_over is None:
        return None
    return condition_error(
        [
            Diagnostic.at(
                first_over.span,
                "error",
                "too-complex",
                f"condition too complex: {count} terms (at most {limit})",
                hint=f"split it into several queries, or name a segment for part of it ({MAX_TERMS_SETTING})",
            )
        ]
    )


def _member_of(segment_id: int) -> ColumnElement[bool]:
    return exists().where(
        models.SegmentMember.customer_id == models.Customer.id, models.SegmentMember.segment_id == segment_id
    )


async def where_condition(
    db: SerialSession, text: str, as_of: datetime, warnings: list[Diagnostic] | None = None
) -> ColumnElement[bool]:
    """The SQL filter of a condition; raises a GraphQLError with diagnostics when the text is not a valid condition.

    A valid condition's warnings (`size = hugee`: a value the field never has) are added to `warnings`:
    the condition still runs, and the caller reports them (`report_warnings`)."""
    if len(text) > MAX_CONDITION_LENGTH:
        raise GraphQLError(
            f"`where` condition too long ({len(text)} characters; at most {MAX_CONDITION_LENGTH})",
            extensions={"code": INVALID_CONDITION, "diagnostics": []},
        )
    condition, diagnostics = parse_condition(text)
    if condition is None or any(diagnostic.is_error for diagnostic in diagnostics):
        raise condition_error(diagnostics)
    oversized = too_many_terms(condition, MAX_TERMS if MAX_TERMS is not None else max_terms_from_environment())
    if oversized is not None:
        raise oversized
    names = set(segment_names(condition))
    stored: dict[str, int] = {}
    if names:
        # Every key, not only the named ones: an unknown name gets a "did you mean" hint.
        stored = {key: segment_id for key, segment_id in (await db.execute(select(models.Segment.key, models.Segment.id))).all()}
    problems = check_condition(condition, segments=stored.keys())
    if any(diagnostic.is_error for diagnostic in problems):
        raise condition_error(problems)
    if warnings is not None:
        warnings.extend(diagnostic for diagnostic in [*diagnostics, *problems] if not diagnostic.is_error)
    segments = {name: _member_of(stored[name]) for name in names if name in stored}
    try:
        compiled = customers_where(condition, as_of, segments)
    except RuleError as error:
        raise condition_error(error.diagnostics) from error
    async with db.exclusive() as session:
        await hold_expensive_slot(session)
    return compiled


def report_warnings(info: Info, argument: str, diagnostics: list[Diagnostic]) -> None:
    """Give the warnings of a condition to the client, in the response's `extensions.warnings`
    (schema/response_warnings.py), each naming the field (its path) and the argument it is about."""
    path = info.path.as_list()
    for diagnostic in diagnostics:
        info.context.warnings.append({"path": path, "argument": argument, **diagnostic.to_dict()})
