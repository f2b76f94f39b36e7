"""Relay connections with keyset pagination.

Every list is ordered by one sort column plus the primary key as tie-breaker;
a cursor holds the (sort value, key) of its row, and the next page is "rows
after that key" — stable when rows are inserted, and cheap on indexed columns.
Pages are fetched with `first + 1` rows to learn `hasNextPage` without a count;
`totalCount` runs its COUNT only when the client asks for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

import strawberry
from sqlalchemy import BindParameter, ColumnElement, Integer, Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from segmenta.dsl.money import NotMoney, is_whole_cents, plain, to_cent, to_decimal
from segmenta.schema.ids import InvalidCursor, decode_cursor, encode_cursor
from segmenta.schema.serial import SerialSession

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100

# The paging arguments every connection field takes, with what GraphiQL shows about them.
FirstArgument = Annotated[
    int | None,
    strawberry.argument(
        description=(
            "How many items to return: 0 to 100, default 20 (more is a BAD_USER_INPUT error; 0 returns just "
            "totalCount)."
        )
    ),
]
AfterArgument = Annotated[
    str | None,
    strawberry.argument(
        description=(
            "Return the items after this cursor: the `endCursor` (or an edge's `cursor`) of this same list in "
            "the same order. Null: from the start."
        )
    ),
]

# The bind parameters of a page: its row limit (the page size plus one) and its cursor's sort value and key.
PAGE_LIMIT: BindParameter[int] = bindparam("page_limit", type_=Integer)
AFTER_VALUE = "after_value"
AFTER_KEY = "after_key"

# Past any amount the database holds: a forged cursor beyond it is refused, not an overflow.
MONEY_CURSOR_BOUND = Decimal(10**15)

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT")
# money: an exact amount, carried in the cursor as its decimal string ("1593788.51").
SortKind = Literal["text", "number", "money", "datetime"]


class PageSizeError(ValueError):
    """`first` outside 0..100: reported to the client as a GraphQL error."""


def page_size(first: int | None) -> int:
    """The validated `first` argument: 0 to MAX_PAGE_SIZE rows, DEFAULT_PAGE_SIZE when not given."""
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 0:
        raise PageSizeError(f"`first` must be 0 or more (got {first})")
    if first > MAX_PAGE_SIZE:
        raise PageSizeError(f"`first` may be at most {MAX_PAGE_SIZE} (got {first}); page with `after` instead")
    return first


@dataclass(frozen=True, eq=False)
class Ordering:
    """A sort column (never null) and direction, with the primary key breaking ties in the same direction.

    Compared by identity (orderings are module constants), so it can be part of a DataLoader key.
    """

    column: InstrumentedAttribute[Any]
    key_column: InstrumentedAttribute[Any]
    kind: SortKind
    descending: bool = False

    def order_by(self) -> list[ColumnElement[Any]]:
        if self.descending:
            return [self.column.desc(), self.key_column.desc()]
        return [self.column.asc(), self.key_column.asc()]

    def after(self) -> ColumnElement[bool]:
        """Rows strictly after the row a cursor points at, in this order; the cursor's values are parameters
        (`after_parameters`), so a statement holding this condition can be built once."""
        value = bindparam(AFTER_VALUE, type_=self.column.type)
        key = bindparam(AFTER_KEY, type_=self.key_column.type)
        if self.descending:
            return or_(self.column < value, and_(self.column == value, self.key_column < key))
        return or_(self.column > value, and_(self.column == value, self.key_column > key))

    def after_parameters(self, cursor: str) -> dict[str, Any]:
        """The values of `after()` for `cursor` (InvalidCursor when it is not one of this order's)."""
        (raw_value,), key = decode_cursor(cursor, 1)
        return {AFTER_VALUE: self._parse(raw_value, cursor), AFTER_KEY: key}

    def cursor(self, row: Any) -> str:
        value = getattr(row, self.column.key)
        key = getattr(row, self.key_column.key)
        if self.kind == "datetime":
            value = value.isoformat()
        elif self.kind == "money":
            value = plain(value)
        return encode_cursor([value], key)

    def _parse(self, raw_value: Any, cursor: str) -> Any:
        if self.kind == "text" and isinstance(raw_value, str):
            return raw_value
        if self.kind == "number" and isinstance(raw_value, int | float) and not isinstance(raw_value, bool):
            return raw_value
        if self.kind == "money":
            return self._parse_money(raw_value, cursor)
        if self.kind == "datetime" and isinstance(raw_value, str):
            try:
                return datetime.fromisoformat(raw_value)
            except ValueError:
                pass
        raise InvalidCursor(cursor)


    @staticmethod
    def _parse_money(raw_value: Any, cursor: str) -> Decimal:
        try:
            if isinstance(raw_value, int | float) and not isinstance(raw_value, bool):
                # A cursor made before money was exact carries a float: read as the migration read the stored
                # floats (shortest decimal, rounded half to even to the cent), it still points at its row.
                amount = to_decimal(raw_value)
                amount = to_cent(amount) if abs(amount) < MONEY_CURSOR_BOUND else amount
            elif isinstance(raw_value, str):
                amount = to_decimal(raw_value)
            else:
                raise InvalidCursor(cursor)
        except NotMoney:
            raise InvalidCursor(cursor) from None
        if abs(amount) >= MONEY_CURSOR_BOUND or not is_whole_cents(amount):
            raise InvalidCursor(cursor)
        return amount


@strawberry.type(description="Where a page of a connection stands in the whole list.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="True when more items follow: ask for them with `after: endCursor`."
    )
    has_previous_page: bool = strawberry.field(
        description="True when the page was requested with `after` (there are rows before it)."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first item; null for an empty page."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the page's last item, to pass as `after` for the next page; null for an empty page."
    )


@strawberry.type(description="One item of a page, with its cursor.")
class Edge(Generic[NodeT]):
    # The cursor is encoded only when read: a page read through `nodes` needs only the last one.
    @strawberry.field(
        description="Opaque position of this item in the list's order; pass it as `after` to read the items after it."
    )
    def cursor(self) -> str:
        return self.ordering.cursor(self.row)

    node: NodeT = strawberry.field(description="The item.")
    row: strawberry.Private[Any]
    ordering: strawberry.Private[Ordering]


@strawberry.type(
    description=(
        "A page of a list (a Relay connection). `first` takes 0 to 100 items (default 20); `after` takes the "
        "`endCursor` of the previous page. Pages are keyset-based: rows added before a page do not shift it."
    )
)
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]] = strawberry.field(
        description="The items of this page with their cursors, in the list's order."
    )
    page_info: PageInfo = strawberry.field(description="Whether more items follow, and the cursors to page with.")
    count_rows: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="Number of items in the whole list (all pages); counted only when selected.")
    async def total_count(self) -> int:
        return await self.count_rows()

    @strawberry.field(description="The nodes of this page, for clients that do not need cursors.")
    def nodes(self) -> list[NodeT]:
        return [edge.node for edge in self.edges]


@dataclass
class Page(Generic[RowT]):
    rows: list[RowT]
    has_next: bool
    after: str | None


def to_connection(
    page: Page[RowT],
    ordering: Ordering,
    convert: Callable[[RowT], NodeT],
    count_rows: Callable[[], Awaitable[int]],
) -> Connection[NodeT]:
    rows = page.rows
    edges = [Edge(node=convert(row), row=row, ordering=ordering) for row in rows]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.after is not None,
            start_cursor=ordering.cursor(rows[0]) if rows else None,
            end_cursor=ordering.cursor(rows[-1]) if rows else None,
        ),
        count_rows=count_rows,
    )


def paged(statement: Select[Any], ordering: Ordering, after_given: bool) -> Select[Any]:
    """`statement` ordered and cut to a page; its size and cursor are parameters (`page_parameters`), so the
    statement can be built once (schema/prebuilt.py)."""
    ordered = statement.order_by(*ordering.order_by()).limit(PAGE_LIMIT)
    return ordered.where(ordering.after()) if after_given else ordered


def page_parameters(ordering: Ordering, first: int, after: str | None) -> dict[str, Any]:
    """The values of `paged`'s parameters: `first + 1` rows (to learn hasNextPage) after `after`."""
    parameters: dict[str, Any] = {PAGE_LIMIT.key: first + 1}
    if after is not None:
        parameters.update(ordering.after_parameters(after))
    return parameters


async def fetch_page(
    db: SerialSession,
    statement: Select[Any],
    ordering: Ordering,
    first: int,
    after: str | None,
    parameters: Mapping[str, Any] | None = None,
) -> Page[Any]:
    """One page of the ORM entities selected by `statement` (one SQL statement); `parameters`: the values
    of `statement`'s own bind parameters, if any."""
    return await fetch_paged(db, paged(statement, ordering, after is not None), ordering, first, after, parameters)


async def fetch_paged(
    db: SerialSession,
    statement: Select[Any],
    ordering: Ordering,
    first: int,
    after: str | None,
    parameters: Mapping[str, Any] | None = None,
    *,
    columns: bool = False,
) -> Page[Any]:
    """One page of what a `paged` statement selects: its ORM entities, or with `columns` its rows (a statement
    of a table's columns: its rows read as `row.<column>` like the entities)."""
    values = {**(parameters or {}), **page_parameters(ordering, first, after)}
    result = await db.execute(statement, values)
    rows = list(result.all() if columns else result.scalars().all())
    return Page(rows=rows[:first], has_next=len(rows) > first, after=after)


def counted(statement: Select[Any]) -> Select[Any]:
    """The COUNT of the rows `statement` selects."""
    return select(func.count()).select_from(statement.order_by(None).subquery())


def counter(
    db: SerialSession,
    statement: Select[Any],
    parameters: Mapping[str, Any] | None = None,
    *,
    counting: Select[Any] | None = None,
) -> Callable[[], Awaitable[int]]:
    """A deferred COUNT of the rows `statement` selects (given the values of its bind parameters, if any):
    `counting`, that COUNT already built (schema/prebuilt.py), else built when first awaited."""

    async def count_rows() -> int:
        count = counting if counting is not None else counted(statement)
        return int((await db.execute(count, parameters)).scalar_one())

    return count_rows


def split_pages(rows: Sequence[tuple[Any, Any]], first: int, after: str | None) -> dict[Any, Page[Any]]:
    """Group (parent key, row) pairs, ordered and numbered per parent, into one page per parent."""
    grouped: dict[Any, list[Any]] = {}
    for parent, row in rows:
        grouped.setdefault(parent, []).append(row)
    return {
        parent: Page(rows=children[:first], has_next=len(children) > first, after=after)
        for parent, children in grouped.items()
    }
