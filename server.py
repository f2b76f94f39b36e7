"""The ASGI app: GraphQL at /graphql (GraphiQL on GET in a browser) and /health.

`uvicorn server:app` serves the database in SEGMENTA_DATABASE_URL (default: a
SQLite file in the working directory).  Tests and the CLI build their own app
with `create_app(engine=...)`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.types.unset import UnsetType

from domain.run_tasks import RunLauncher, wait_from_environment
from domain.scheduler import scheduler_from_environment
from domain.tokens import authenticate
from schema import schema
from schema.context import Context
from schema.loaders import Loaders
from storage.engine import create_engine, session_factory
from storage.guard import limit_statements, statement_timeout_from_environment
from storage.migrate import upgrade

GRAPHIQL_PAGE = Path(__file__).resolve().parent / "schema" / "graphiql.html"
CONTEXT_KEY = "segmenta_context"


def bearer_token(headers: Any) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or None."""
    value = headers.get("authorization") if headers is not None else None
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class SegmentaGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with a per-request database session, principal and DataLoaders."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], runs: RunLauncher) -> None:
        super().__init__(schema, graphql_ide="graphiql")
        self.sessions = sessions
        self.runs = runs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})
        try:
            await super().__call__(scope, receive, send)
        finally:
            context = scope["state"].pop(CONTEXT_KEY, None)
            if context is not None:
                await context.close()

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        session = self.sessions()
        context = Context(
            session=session, principal=None, loaders=Loaders(session), request=request, response=response, runs=self.runs
        )
        request.scope["state"][CONTEXT_KEY] = context
        token = bearer_token(request.headers)
        if token is None:
            context.auth_problem = "no Authorization header" if "authorization" not in request.headers else (
                "the Authorization header is not `Bearer TOKEN`"
            )
            return context
        try:
            context.principal = await authenticate(session, token)
        finally:
            # Close the read transaction of the lookup; each mutation runs in a transaction of its own.
            await session.commit()
        if context.principal is None:
            context.auth_problem = "the token is unknown, revoked or expired"
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """A websocket may also send its token in the `connection_init` payload: `{"Authorization": "Bearer …"}`.

        The connection is accepted either way; without a valid token every operation on it gets
        UNAUTHENTICATED (schema/permissions.py), as over HTTP."""
        params = context.connection_params or {}
        value = next((item for key, item in params.items() if key.lower() == "authorization"), None)
        if context.principal is None and value is not None:
            token = bearer_token({"authorization": value}) if isinstance(value, str) else None
            if token is None:
                context.auth_problem = "the connection_init Authorization is not `Bearer TOKEN`"
            else:
                try:
                    context.principal = await authenticate(context.session, token)
                finally:
                    await context.session.commit()
                context.auth_problem = None if context.principal is not None else "the token is unknown, revoked or expired"
        return await super().on_ws_connect(context)

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(GRAPHIQL_PAGE.read_text(encoding="utf-8"))


async def health(request: Request) -> Response:
    engine: AsyncEngine = request.app.state.engine
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
        return JSONResponse({"status": "error", "database": type(error).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "database": engine.dialect.name})


def create_app(
    database_url: str | None = None,
    *,
    engine: AsyncEngine | None = None,
    schedule: bool = True,
    run_wait: float | None = None,
) -> Starlette:
    """The app over `engine` (left as it is), or over a new engine for `database_url` (default
    SEGMENTA_DATABASE_URL), which is migrated at startup and disposed at shutdown.  With
    `schedule`, the lifespan also runs the scheduled apply (domain/scheduler.py) unless
    SEGMENTA_SCHEDULE_INTERVAL is off.  Preview and apply runs execute in background tasks;
    the API waits up to `run_wait` seconds (default SEGMENTA_RUN_WAIT) before returning a
    run that is still running (domain/run_tasks.py)."""
    owns_engine = engine is None
    active_engine = engine if engine is not None else create_engine(database_url)
    launcher = RunLauncher(
        session_factory(active_engine), wait=run_wait if run_wait is not None else wait_from_environment()
    )
    # Request statements stop at SEGMENTA_STATEMENT_TIMEOUT; runs and the schedule are not limited (storage/guard.py).
    request_engine = limit_statements(active_engine, statement_timeout_from_environment())
    graphql = SegmentaGraphQL(session_factory(request_engine), launcher)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if owns_engine:
            # `uvicorn server:app` on a new database just works: create or upgrade the schema first.
            await upgrade(active_engine)
        # Scheduled re-application of the active ruleset (SEGMENTA_SCHEDULE_INTERVAL; "off" disables it).
        scheduler = scheduler_from_environment(session_factory(active_engine)) if schedule else None
        if scheduler is not None:
            scheduler.start()
        await launcher.start()  # fails the runs of processes that died (domain/run_tasks.py)
        yield
        if scheduler is not None:
            await scheduler.stop()
        await launcher.shutdown()
        if owns_engine:
            await active_engine.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/health", health, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.engine = active_engine
    app.state.runs = launcher
    return app


app = create_app()
