"""On PostgreSQL a query operation reads without BEGIN and ROLLBACK.

PostgreSQL's default isolation, READ COMMITTED, gives every statement its own snapshot whether or
not the statements share a transaction, so wrapping a query's reads in one buys nothing but two
round trips to the server (BEGIN before the first statement, ROLLBACK at the end of the request).
A query operation writes nothing (mutations write, each in a transaction of its own:
schema/payloads.py `in_transaction`), so its session's connection is put in autocommit before any
resolver runs.  The statement time limit still applies: it lives on the connection
(storage/guard.py).  SQLite keeps its transaction: there it gives the whole request one snapshot,
and its BEGIN costs no trip of its own (storage/sqlite_cursor.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from segmenta.schema.context import Context


class AutocommitQueries(SchemaExtension):
    """Puts a query operation's PostgreSQL session in autocommit before its resolvers run."""

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if (
            execution.operation_type == OperationType.QUERY
            and isinstance(context, Context)
            and context.session.get_bind().dialect.name == "postgresql"
            and not context.session.in_transaction()
        ):
            async with context.db.exclusive() as session:
                await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield
