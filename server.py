"""The ASGI app: GraphQL at /graphql (GraphiQL on GET in a browser), the workbench page at /workbench
and /health.

`uvicorn segmenta.server:app` serves the database in SEGMENTA_DATABASE_URL (default: a
SQLite file in the working directory).  Tests and the CLI build their own app
with `create_app(engine=...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from graphql import GraphQLError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.types import ExecutionResult
from strawberry.types.unset import UnsetType

from segmenta.domain.access.tokens import Principal, authenticate, cache_seconds, principals
from segmenta.domain.errors import TimedOut
from segmenta.domain.event_relay import EventRelay
from segmenta.domain.routing.run_tasks import RunLauncher, wait_from_environment
from segmenta.domain.routing.scheduler import scheduler_from_environment
from segmenta.schema import schema
from segmenta.schema.context import Context
from segmenta.schema.disconnect import LoaderBatches, run_until_disconnect
from segmenta.schema.errors import UNAUTHENTICATED
from segmenta.schema.graphiql import ASSET_ROUTE, asset_dir, local_asset, render_page
from segmenta.schema.http_body import (
    BAD_REQUEST,
    ClientGone,
    RequestRefused,
    check_request,
    encode_response,
    read_body,
)
from segmenta.schema.limits import request_limits
from segmenta.schema.loaders import Loaders
from segmenta.schema.permissions import AUTHENTICATION_REQUIRED, TOKEN_NO_LONGER_VALID
from segmenta.storage.engine import create_engine, is_private_memory, session_factory
from segmenta.storage.guard import limit_statements, statement_timeout_from_environment
from segmenta.storage.migrate import upgrade
from segmenta.workbench.routes import routes as workbench_routes

CONTEXT_KEY = "segmenta_context"
# The principal of a POST authenticated before its body was read (get_context takes it from here).
PRINCIPAL_KEY = "segmenta_principal"
BATCHES_KEY = "segmenta_loader_batches"
# The POST body being served and the object check_request parsed from it.
_parsed_body: contextvars.ContextVar[tuple[bytes, Any] | None] = contextvars.ContextVar("parsed_body", default=None)

logger = logging.getLogger("segmenta.server")


def bearer_token(headers: Any) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, or None."""
    value = headers.get("authorization") if headers is not None else None
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authentication_problem(headers: Any, token: str | None) -> str:
    """Why a request with these headers is not authenticated, `token` being its bearer token."""
    if token is not None:
        return TOKEN_NO_LONGER_VALID
    if "authorization" not in headers:
        return "no Authorization header"
    return "the Authorization header is not `Bearer TOKEN`"


_heap_frozen = False


def freeze_startup_heap() -> None:
    """Once per process: move everything alive now (the schema, the mappers, the modules: objects that
    live as long as the process) out of the garbage collector's way.  Each request makes thousands of
    objects, so collections run every few requests, and a full one walked that whole heap: in a
    profile of the page of 100 customers about a third of the time went to the collector (4.5 ms per
    page after the freeze against 32 ms, on a loaded machine)."""
    global _heap_frozen
    if not _heap_frozen:
        gc.collect()
        gc.freeze()
        _heap_frozen = True


class SegmentaGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI view with a per-request database session, principal and DataLoaders.

    Over HTTP, before Strawberry sees a request: a POST's token is checked before its body is
    read, the body is read within its limit and checked (schema/http_body.py), and the request
    runs in a task cancelled when the client disconnects (schema/disconnect.py).  Each operation
    is stopped at the time limit (`execute_single`).  All limits: schema/limits.py."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], runs: RunLauncher) -> None:
        super().__init__(schema, graphql_ide="graphiql")
        self.sessions = sessions
        self.runs = runs
        self.limits = request_limits()
        principals.ttl = cache_seconds()
        freeze_startup_heap()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})
        try:
            if scope["type"] == "http":
                await self.serve_http(scope, receive, send)
            else:
                await super().__call__(scope, receive, send)
        finally:
            batches = scope["state"].pop(BATCHES_KEY, None)
            if batches is not None:
                # A cancelled operation (or one ended by an error) may leave batches running on the session.
                await batches.cancel_all()
            context = scope["state"].pop(CONTEXT_KEY, None)
            if context is not None:
                # After a cancellation a statement may still be finishing (schema/serial.py): close after it.
                async with context.db.exclusive():
                    await context.close()

    async def serve_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        try:
            if scope["method"] == "POST":
                scope["state"][PRINCIPAL_KEY] = await self.authenticate_first(headers)
                if "application/json" not in headers.get("content-type", ""):
                    raise RequestRefused(400, BAD_REQUEST, "send the request as Content-Type: application/json")
            body = await read_body(headers, receive, self.limits.max_body_bytes)
            if scope["method"] == "POST":
                # Strawberry takes this parsed object instead of parsing the body again (`decode_json`);
                # the request's task, started below, sees this context's value.
                _parsed_body.set((body, check_request(body, self.limits)))
        except RequestRefused as refusal:
            await refusal.send(send)
            return
        except ClientGone:
            return
        handler = super().__call__

        async def run(replayed: Receive, tracked: Send) -> None:
            await handler(scope, replayed, tracked)

        batches = scope["state"][BATCHES_KEY] = LoaderBatches()
        with batches.collecting():
            cancelled = await run_until_disconnect(run, body, receive, send)
        if cancelled:
            logger.warning("client disconnected before the answer: its operation was cancelled")

    async def authenticate_first(self, headers: Headers) -> Principal:
        """The caller of a POST, or RequestRefused (401) before a byte of its body is read."""
        token = bearer_token(headers)
        principal = await self.principal_of(token) if token is not None else None
        if principal is not None:
            return principal
        raise RequestRefused(
            401,
            UNAUTHENTICATED,
            f"{AUTHENTICATION_REQUIRED} ({authentication_problem(headers, token)})",
            {"WWW-Authenticate": 'Bearer realm="segmenta"'},
        )

    async def principal_of(self, token: str) -> Principal | None:
        """The token's principal from this process's cache (SEGMENTA_TOKEN_CACHE seconds), else from
        its row, read in a short transaction of its own (which may note the token's last use)."""
        principal = principals.lookup(token)
        if principal is None:
            async with self.sessions() as session:
                try:
                    principal = await authenticate(session, token)
                finally:
                    await session.commit()
            if principal is not None:
                principals.store(token, principal)
        return principal

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        """The operation, or a TIMEOUT error when it runs past SEGMENTA_REQUEST_TIMEOUT: it is
        cancelled where it waits, and the request's transaction is rolled back when its session closes."""
        limit = self.limits.request_timeout
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                return await super().execute_single(*args, **kwargs)
        except TimeoutError:
            if not deadline.expired():
                raise
        request = kwargs.get("request")
        batches = request.scope["state"].get(BATCHES_KEY) if request is not None else None
        if batches is not None:
            await batches.cancel_all()
        logger.warning("an operation ran past %g s (SEGMENTA_REQUEST_TIMEOUT) and was stopped", limit)
        stopped = TimedOut(
            f"the operation ran past the time limit of {limit:g} s and was stopped; its unfinished database "
            "work was rolled back (SEGMENTA_REQUEST_TIMEOUT)"
        )
        error = GraphQLError(
            stopped.message, original_error=stopped, extensions={"code": stopped.code, "retryable": True}
        )
        return ExecutionResult(data=None, errors=[error])

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        session = self.sessions()
        context = Context(
            session=session, principal=None, loaders=Loaders(session), request=request, response=response, runs=self.runs
        )
        request.scope["state"][CONTEXT_KEY] = context
        if request.scope["state"].get(PRINCIPAL_KEY) is not None:
            context.principal = request.scope["state"][PRINCIPAL_KEY]
            return context
        token = bearer_token(request.headers)
        if token is not None:
            context.principal = await self.principal_of(token)
        if context.principal is None:
            context.auth_problem = authentication_problem(request.headers, token)
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
                context.auth_problem = None if context.principal is not None else TOKEN_NO_LONGER_VALID
        return await super().on_ws_connect(context)

    def decode_json(self, data: str | bytes) -> object:
        """The body check_request parsed already (the same bytes), else Strawberry's own parse."""
        parsed = _parsed_body.get()
        if parsed is not None and parsed[0] == data:
            return parsed[1]
        return super().decode_json(data)

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        """Strawberry's HTTP response, encoded by orjson (schema/http_body.py; websockets keep text frames)."""
        response = Response(encode_response(response_data), status_code=200, media_type="application/json")
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        if sub_response.status_code:
            response.status_code = sub_response.status_code
        return response

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(render_page(request.app.state.graphiql_dir))


async def graphiql_asset(request: Request) -> Response:
    """One of the GraphiQL page's files, stored by `segmenta fetch-graphiql` (schema/graphiql.py)."""
    path = local_asset(request.app.state.graphiql_dir, request.path_params["name"])
    if path is None:
        return PlainTextResponse("not found", status_code=404)
    media_type = "text/css" if path.suffix == ".css" else "text/javascript"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


async def health(request: Request) -> Response:
    engine: AsyncEngine = request.app.state.engine
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure means "not healthy"
        return JSONResponse({"status": "error", "database": type(error).__name__}, status_code=503)
    # Which process answered: with `segmenta serve --workers N` each connection is served by one of N.
    return JSONResponse({"status": "ok", "database": engine.dialect.name, "process": os.getpid()})


def create_app(
    database_url: str | None = None,
    *,
    engine: AsyncEngine | None = None,
    schedule: bool = True,
    run_wait: float | None = None,
    migrate: bool = True,
    relay_events: bool | None = None,
) -> Starlette:
    """The app over `engine` (left as it is), or over a new engine for `database_url` (default
    SEGMENTA_DATABASE_URL), which is migrated at startup (unless `migrate` is false: the caller did it)
    and disposed at shutdown.  With
    `schedule`, the lifespan also runs the scheduled apply (domain/routing/scheduler.py) unless
    SEGMENTA_SCHEDULE_INTERVAL is off.  Preview and apply runs execute in background tasks;
    the API waits up to `run_wait` seconds (default SEGMENTA_RUN_WAIT) before returning a
    run that is still running (domain/routing/run_tasks.py).  Every request is bounded by the limits of
    schema/limits.py (SEGMENTA_ settings, read once per process).  With `relay_events` (default:
    when the app owns its engine, as a served app does) subscribers also get the events of the other
    processes on the database (domain/event_relay.py; never for a private in-memory SQLite)."""
    owns_engine = engine is None
    active_engine = engine if engine is not None else create_engine(database_url)
    launcher = RunLauncher(
        session_factory(active_engine), wait=run_wait if run_wait is not None else wait_from_environment()
    )
    # Request statements stop at SEGMENTA_STATEMENT_TIMEOUT; runs and the schedule are not limited (storage/guard.py).
    request_engine = limit_statements(active_engine, statement_timeout_from_environment())
    graphql = SegmentaGraphQL(session_factory(request_engine), launcher)

    relay = EventRelay(active_engine) if (owns_engine if relay_events is None else relay_events) else None
    if relay is not None and is_private_memory(active_engine.url):
        relay = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if owns_engine and migrate:
            # `uvicorn segmenta.server:app` on a new database just works: create or upgrade the schema first.
            await upgrade(active_engine)
        if relay is not None:
            # First: the sweep below may already publish, and the other processes must hear it.
            await relay.start()
        # Scheduled re-application of the active ruleset (SEGMENTA_SCHEDULE_INTERVAL; "off" disables it).
        scheduler = scheduler_from_environment(session_factory(active_engine)) if schedule else None
        if scheduler is not None:
            scheduler.start()
        await launcher.start()  # fails the runs of processes that died (domain/routing/run_tasks.py)
        yield
        if scheduler is not None:
            await scheduler.stop()
        await launcher.shutdown()
        if relay is not None:
            await relay.stop()  # last: the runs the shutdown interrupted are announced
        if owns_engine:
            await active_engine.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/health", health, methods=["GET"]),
            Route(ASSET_ROUTE + "/{name}", graphiql_asset, methods=["GET"]),
            # The policy workbench page and its files (workbench/, docs/workbench.md).
            *workbench_routes(),
        ],
        lifespan=lifespan,
    )
    app.state.engine = active_engine
    app.state.graphiql_dir = asset_dir()
    app.state.runs = launcher
    return app


def worker_app() -> Starlette:
    """The app of one `segmenta serve --workers N` process: SEGMENTA_DATABASE_URL, already migrated
    by the parent (cli/workers.py), so N processes never upgrade the schema at once."""
    return create_app(migrate=False)


def __getattr__(name: str) -> Starlette:
    # `app` is built on first use, for `uvicorn segmenta.server:app`: importing this module for
    # create_app or worker_app (tests, the CLI, each worker) opens no engine it would not use.
    if name == "app":
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
