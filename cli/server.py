"""Server commands: `segmenta serve` and `segmenta demo`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import click
import uvicorn
from rich.progress import Progress
from sqlalchemy import text
from sqlalchemy.engine import make_url

from segmenta.cli.app import main
from segmenta.cli.data import (
    database_url_option,
    describe_seed,
    fail,
    migrated_engine,
    progress_bar,
    stderr,
    step_progress,
)
from segmenta.cli.log_redaction import log_config
from segmenta.cli.workers import default_workers, serve_workers, worker_config
from segmenta.domain.access.tokens import cache_seconds, create_token, recheck_interval
from segmenta.domain.errors import UserError
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.domain.routing.run_plan import RunProgress
from segmenta.domain.routing.run_tasks import grace_from_environment, wait_from_environment
from segmenta.domain.routing.runs import apply_ruleset
from segmenta.domain.seed import SAMPLE_RULES_PATH, database_is_empty, sample_rules, seed_database
from segmenta.domain.seed_generator import default_as_of
from segmenta.domain.seed_history import backdate_demo_history
from segmenta.storage.engine import (
    busy_timeout_from_environment,
    create_engine,
    database_url,
    is_private_memory,
    pool_from_environment,
    session_factory,
)
from segmenta.storage.guard import check_environment as check_guard_settings
from segmenta.storage.migrate import upgrade

SAMPLE_RULESET_NAME = "sample"
CURL_QUERY = '{"query": "{ customers(first: 3) { totalCount edges { node { code name } } } }"}'


def check_engine_settings() -> None:
    """The engine's settings, before anything opens the database: a bad one stops here with its name."""
    try:
        busy_timeout_from_environment()
        pool_from_environment()
    except UserError as error:
        fail(error.message)


async def migrate(url: str, workers: int = 1) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
        if engine.dialect.name == "postgresql":
            async with engine.connect() as connection:
                limit = int(await connection.scalar(text("SHOW max_connections")) or 0)
                reserved = int(await connection.scalar(text("SHOW superuser_reserved_connections")) or 0)
            warning = connection_budget_warning(workers, pool_from_environment(), limit - reserved)
            if warning:
                stderr.print(warning)
    finally:
        await engine.dispose()


def connection_budget_warning(workers: int, pool: tuple[int, int], available: int) -> str | None:
    """What to say when `workers` processes may open more connections than the server takes."""
    size, overflow = pool
    most = workers * (size + overflow + 1)  # the pool, its overflow, and the events connection
    if most <= available:
        return None
    return (
        f"warning: {workers} workers × ({size} SEGMENTA_POOL_SIZE + {overflow} SEGMENTA_POOL_OVERFLOW + 1 for events) "
        f"= {most} connections at most, but PostgreSQL takes {available} (max_connections less the reserved ones): "
        "under load some requests will fail to connect. Lower --workers or the pool settings, or raise max_connections."
    )


def run_server(url: str, host: str, port: int, workers: int = 1) -> None:
    # Imported here: building the GraphQL schema is the slow part of start-up, and
    # only the server commands need it.
    from segmenta.schema.limits import request_limits

    try:
        wait_from_environment()  # a bad setting stops here with its name, not in a traceback
        recheck_interval()
        cache_seconds()
        busy_timeout_from_environment()
        grace_from_environment()
        check_guard_settings()
        request_limits()
    except UserError as error:
        fail(error.message)
    if workers > 1 and is_private_memory(url):
        fail(f"--workers {workers}: an in-memory SQLite database is private to one process; use --workers 1")
    # The GraphiQL link carries the token in its query string: the log gets it redacted.
    # A websocket message is bounded like an HTTP body (uvicorn's own default is 16 MiB).
    if workers > 1:
        # Each child builds its app from the environment; the schema was upgraded before (cli/workers.py).
        config = worker_config(host, port, workers, log_config=log_config(), ws_max_size=request_limits().max_body_bytes)
        serve_workers(url, config)
        return
    from segmenta.server import create_app

    uvicorn.run(
        create_app(url, migrate=False),
        host=host,
        port=port,
        log_config=log_config(),
        ws_max_size=request_limits().max_body_bytes,
    )


workers_option = click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=default_workers,
    show_default="the number of cores",
    help="Server processes on one port; 1 serves from this process (docs/cli.md).",
)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@database_url_option
@workers_option
def serve(host: str, port: int, url: str | None, workers: int) -> None:
    """Create or upgrade the schema, then serve the GraphQL API (GraphiQL at /graphql)."""
    resolved = database_url(url)
    check_engine_settings()
    asyncio.run(migrate(resolved, workers))
    run_server(resolved, host, port, workers)


@dataclass(frozen=True)
class DemoSetup:
    token: str
    seeded: str | None  # what seeding created, None when the database already held data
    routing: str | None  # what applying the sample rules did


def _run_progress(progress: Progress) -> Callable[[RunProgress], None]:
    report = step_progress(progress)

    def on_run(update: RunProgress) -> None:
        report(f"routing: {update.step}", update.done, update.total)

    return on_run


async def prepare_demo(url: str, *, customers: int = 5000, progress: Progress | None = None) -> DemoSetup:
    """Migrate; seed an empty database and route it with the sample rules; make an admin token."""
    seeded: str | None = None
    routing: str | None = None
    async with migrated_engine(url) as engine:
        async with session_factory(engine)() as session:
            async with session.begin():
                empty = await database_is_empty(session)
                if empty:
                    summary = await seed_database(
                        session, customers=customers, progress=step_progress(progress) if progress else None
                    )
                    seeded = describe_seed(summary)
                    ruleset = await save_ruleset(session, SAMPLE_RULESET_NAME, sample_rules())
                    await activate_ruleset(session, ruleset.id)
            if empty:
                run = await apply_ruleset(session, ruleset.id, progress=_run_progress(progress) if progress else None)
                if run.status == "succeeded":
                    routing = f"routed {run.summary.get('evaluated', 0)} customers with the sample rules (run {run.id})"
                    async with session.begin():
                        # The demo's past: customers managed since they were created, some by someone else before.
                        await backdate_demo_history(session, default_as_of())
                else:
                    routing = f"routing with the sample rules failed: {run.error}"
            async with session.begin():
                token = await create_token(session, "admin", label="segmenta demo")
    return DemoSetup(token=token, seeded=seeded, routing=routing)


def demo_instructions(setup: DemoSetup, host: str, port: int, database: str, *, serving: bool) -> str:
    base = f"http://{host}:{port}/graphql"
    if serving:
        opening = ["", "Segmenta demo is ready.", ""]
    else:
        # --no-serve: nothing listens yet; say how to start the server these addresses belong to.
        shown = make_url(database).render_as_string(hide_password=True)  # a password is not for the terminal
        serve = f"segmenta serve --host {host} --port {port} --database-url {shown}"
        opening = ["", "Segmenta demo data is prepared; no server is running.", f"  Start one:  {serve}", "  then:", ""]
    return "\n".join(
        [
            *opening,
            f"  GraphiQL (token pre-filled):  {base}?token={setup.token}",
            f"  Admin token:                  {setup.token}",
            f"  Policy workbench:             http://{host}:{port}/workbench (sign in with the token)",
            "",
            "  Try it from a shell:",
            f"    curl -s {base} \\",
            f"      -H 'Authorization: Bearer {setup.token}' \\",
            "      -H 'Content-Type: application/json' \\",
            f"      -d '{CURL_QUERY}'",
            "",
            f"  Sample rules (active): segmenta check {SAMPLE_RULES_PATH}",
            "",
        ]
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@database_url_option
@click.option(
    "--customers", default=5000, show_default=True, type=click.IntRange(min=0), help="Sample customers to create."
)
@click.option("--no-serve", is_flag=True, help="Prepare the data and token, print them, and exit.")
@workers_option
def demo(host: str, port: int, url: str | None, customers: int, no_serve: bool, workers: int) -> None:
    """Sample data, an admin token and the server: everything to try Segmenta in GraphiQL."""
    resolved = database_url(url)
    check_engine_settings()
    with progress_bar() as progress:
        setup = asyncio.run(prepare_demo(resolved, customers=customers, progress=progress))
    if setup.seeded:
        stderr.print(setup.seeded)
    else:
        stderr.print("the database already holds data: kept as it is (segmenta seed --force starts over)")
    if setup.routing:
        stderr.print(setup.routing)
    click.echo(demo_instructions(setup, host, port, resolved, serving=not no_serve))
    if not no_serve:
        run_server(resolved, host, port, workers)
