"""Data commands: `segmenta seed`, `segmenta import`, `segmenta export`, `segmenta token create|list|revoke`.

Each command creates or upgrades the schema first, so a new database file just works.
Progress bars and messages go to stderr; stdout carries only the data a command
produces (the CSV of `export -`, the token of `token create`, the import summary).
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, NoReturn, TextIO

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.cli.app import main
from segmenta.domain.access.tokens import OPERATOR, ROLES, TokenInfo, create_token, expiry, list_tokens, revoke_token
from segmenta.domain.customers.csv_export import count_customers, export_customers
from segmenta.domain.customers.csv_import import ImportReport, import_customers
from segmenta.domain.errors import UserError
from segmenta.domain.seed import SeedSummary, seed_database
from segmenta.storage.engine import create_engine, database_url, session_factory
from segmenta.storage.migrate import upgrade

stderr = Console(stderr=True, highlight=False, soft_wrap=True)

database_url_option = click.option(
    "--database-url",
    "url",
    default=None,
    metavar="URL",
    help="Database to use (default: SEGMENTA_DATABASE_URL, else ./segmenta.db).",
)


@asynccontextmanager
async def migrated_engine(url: str | None) -> AsyncIterator[AsyncEngine]:
    """An engine on the configured database, schema created or upgraded, disposed afterwards."""
    engine = create_engine(database_url(url))
    try:
        await upgrade(engine)
        yield engine
    finally:
        await engine.dispose()


@contextmanager
def progress_bar(transient: bool = True) -> Iterator[Progress]:
    """A rich progress display on stderr (drawn only on a terminal)."""
    with Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=transient,
        disable=not stderr.is_terminal,
    ) as progress:
        yield progress


def step_progress(progress: Progress) -> Callable[[str, int, int], None]:
    """Adapts a domain (step, done, total) callback to one bar per step."""
    tasks: dict[str, TaskID] = {}

    def report(step: str, done: int, total: int) -> None:
        if step not in tasks:
            tasks[step] = progress.add_task(step, total=total or 1)
        progress.update(tasks[step], completed=done if total else 1, total=total or 1)

    return report


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error on stderr and leave with `code`."""
    stderr.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise SystemExit(code)


# -- seed --------------------------------------------------------------------------------------


async def run_seed(
    url: str | None, *, customers: int, random_seed: int, force: bool, progress: Progress | None = None
) -> SeedSummary:
    async with migrated_engine(url) as engine:
        async with session_factory(engine)() as session:
            async with session.begin():
                return await seed_database(
                    session,
                    customers=customers,
                    seed=random_seed,
                    force=force,
                    progress=step_progress(progress) if progress is not None else None,
                )


def describe_seed(summary: SeedSummary) -> str:
    return (
        f"seeded {summary.customers} customers, {summary.purchases} purchases, {summary.feedback} feedback, "
        f"{summary.interactions} interactions, {summary.employees} employees, {summary.teams} teams, "
        f"{summary.segments} manual segments, {summary.tasks} hand-made tasks"
    )


@main.command()
@database_url_option
@click.option("--customers", default=5000, show_default=True, type=click.IntRange(min=0), help="How many customers.")
@click.option("--seed", "random_seed", default=42, show_default=True, type=int, help="Random seed (same seed, same data).")
@click.option("--force", is_flag=True, help="Wipe a non-empty database first.")
def seed(url: str | None, customers: int, random_seed: int, force: bool) -> None:
    """Create the schema and fill it with a realistic demo dataset."""
    try:
        with progress_bar() as progress:
            summary = asyncio.run(
                run_seed(url, customers=customers, random_seed=random_seed, force=force, progress=progress)
            )
    except UserError as error:
        fail(error.message)
    stderr.print(describe_seed(summary))


# -- import ------------------------------------------------------------------------------------


def _open_input(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror}")


def _tracked_lines(binary: BinaryIO, progress: Progress) -> Iterator[str]:
    """Decoded lines (UTF-8, optional BOM), moving the bar by bytes read."""
    name = getattr(binary, "name", None)
    try:
        total: int | None = Path(name).stat().st_size if isinstance(name, str) else None
    except OSError:
        total = None
    task = progress.add_task("importing", total=total)
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    seekable = binary.seekable()
    for line in text:
        yield line
        if seekable:
            progress.update(task, completed=binary.tell())


def print_import_report(report: ImportReport, source: str, *, mode: str) -> None:
    for error in report.errors:
        column = f" [{error.column}]" if error.column else ""
        click.echo(f"{source}:{error.line}:{column} {error.message}", err=True)
    if mode == "strict" and not report.committed and report.skipped:
        click.echo(f"strict mode: nothing imported, {report.skipped} bad row(s)")
    else:
        click.echo(f"imported {report.imported}, updated {report.updated}, skipped {report.skipped}")


async def run_import(
    url: str | None, lines: Iterator[str], *, mode: str, update: bool, raw: bool = False
) -> ImportReport:
    async with migrated_engine(url) as engine:
        async with session_factory(engine)() as session:
            return await import_customers(session, lines, mode=mode, update=update, raw=raw)  # type: ignore[arg-type]


@main.command("import")
@click.argument("file", metavar="FILE")
@click.option(
    "--mode",
    type=click.Choice(["skip", "strict"]),
    default="skip",
    show_default=True,
    help="skip: import the good rows, report the bad; strict: import nothing if any row is bad.",
)
@click.option("--update", is_flag=True, help="Update customers whose code exists (else a duplicate is an error).")
@click.option(
    "--raw",
    is_flag=True,
    help="Keep a leading apostrophe in text cells (for files written by `export --raw`); by default one is removed.",
)
@database_url_option
def import_command(file: str, mode: str, update: bool, raw: bool, url: str | None) -> None:
    """Import customers from a CSV FILE (`-` for stdin); exit code 1 if any row failed."""
    binary = _open_input(file)
    source = "<stdin>" if file == "-" else file
    try:
        with progress_bar() as progress:
            report = asyncio.run(
                run_import(url, _tracked_lines(binary, progress), mode=mode, update=update, raw=raw)
            )
    except UnicodeDecodeError as error:
        fail(f"{source} is not UTF-8 text (byte {error.start} of a read block): save it as UTF-8 and retry; nothing was imported")
    except UserError as error:
        fail(f"{source}: {error.message}; nothing was imported")
    finally:
        if binary is not sys.stdin.buffer:
            binary.close()
    print_import_report(report, source, mode=mode)
    if not report.ok:
        raise SystemExit(1)


# -- export ------------------------------------------------------------------------------------


async def run_export(url: str | None, out: TextIO, progress: Progress, *, raw: bool = False) -> int:
    async with migrated_engine(url) as engine:
        async with session_factory(engine)() as session:
            total = await count_customers(session)
            task = progress.add_task("exporting", total=total)
            return await export_customers(
                session, out, progress=lambda written: progress.update(task, completed=written), raw=raw
            )


@main.command("export")
@click.argument("file", metavar="[FILE|-]", default="-")
@click.option(
    "--raw",
    is_flag=True,
    help="Write text cells exactly as stored, without the apostrophe that stops spreadsheets running "
    "cells starting with = + - @ as formulas (for programs, not spreadsheets).",
)
@database_url_option
def export_command(file: str, raw: bool, url: str | None) -> None:
    """Export every customer as CSV to FILE, or to stdout with `-` (the default)."""
    if file == "-":
        sys.stdout.flush()
        # UTF-8 whatever the locale says; csv needs newline="" to write its own line ends.
        out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
        try:
            with progress_bar() as progress:
                written = asyncio.run(run_export(url, out, progress, raw=raw))
            out.flush()
        finally:
            out.detach()
        stderr.print(f"exported {written} customers")
        return
    try:
        handle = open(file, "w", encoding="utf-8", newline="")
    except OSError as error:
        fail(f"cannot write {file}: {error.strerror}")
    with handle, progress_bar() as progress:
        written = asyncio.run(run_export(url, handle, progress, raw=raw))
    stderr.print(f"exported {written} customers to {file}")


# -- token -------------------------------------------------------------------------------------


@main.group()
def token() -> None:
    """API tokens: create, list, revoke."""


def _expires_at_option(value: str | None) -> datetime | None:
    """--expires-at: an ISO 8601 date or date-time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"--expires-at {value[:40]!r} is not an ISO 8601 date-time (e.g. 2027-06-30T18:00:00Z)", code=2)


async def run_create_token(
    url: str | None,
    role: str,
    employee: str | None,
    label: str | None,
    expires_at: datetime | None = None,
    expires_in: str | None = None,
) -> str:
    # The expiry is checked before the database is touched: a bad value changes nothing.
    expires = expiry(expires_at, expires_in, at_field="--expires-at", in_field="--expires-in")
    async with migrated_engine(url) as engine:
        async with session_factory(engine)() as session:
            async with session.begin():
                return await create_token(session, role, employee_email=employee, label=label, expires_at=expires)


@token.command("create")
@click.option("--role", required=True, type=click.Choice(list(ROLES)), help="admin, manager, agent or viewer.")
@click.option("--employee", metavar="EMAIL", default=None, help="Bind the token to this employee (required for agent).")
@click.option("--label", metavar="TEXT", default=None, help="A note to recognise the token by.")
@click.option("--expires-in", metavar="DURATION", default=None, help="Lifetime, e.g. 30d, 12h, 2w, 90m (default: never expires).")
@click.option("--expires-at", metavar="TIME", default=None, help="Expiry as ISO 8601, e.g. 2027-06-30T18:00:00Z (UTC without a zone).")
@database_url_option
def token_create(
    role: str, employee: str | None, label: str | None, expires_in: str | None, expires_at: str | None, url: str | None
) -> None:
    """Create an API token and print it alone on stdout (it is shown only this once)."""
    try:
        new_token = asyncio.run(
            run_create_token(url, role, employee, label, _expires_at_option(expires_at), expires_in)
        )
    except UserError as error:
        located = error.field is not None and error.field.startswith("--")
        fail(f"{error.field}: {error.message}" if located else error.message, code=2)
    click.echo(new_token)


async def run_list_tokens(url: str | None) -> list[TokenInfo]:
    async with migrated_engine(url) as engine:
        async with session_factory(engine)() as session:
            return await list_tokens(session, OPERATOR)


def _stamp(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds") + "Z"


TOKEN_COLUMNS = ("id", "role", "employee", "label", "created", "expires", "revoked", "last-used")


def token_rows(listed: list[TokenInfo]) -> list[tuple[str, ...]]:
    return [
        (
            str(item.id),
            item.role,
            item.employee_email or "-",
            item.label or "-",
            _stamp(item.created_at),
            _stamp(item.expires_at),
            _stamp(item.revoked_at),
            _stamp(item.last_used_at),
        )
        for item in listed
    ]


@token.command("list")
@database_url_option
def token_list(url: str | None) -> None:
    """List every token (tab-separated, with a header): never a secret or a hash."""
    rows = token_rows(asyncio.run(run_list_tokens(url)))
    for row in [TOKEN_COLUMNS, *rows]:
        # Labels are free text: a tab or newline in one must not break the columns.
        click.echo("\t".join(" ".join(cell.split()) or "-" for cell in row))


async def run_revoke_token(url: str | None, token_id: int) -> TokenInfo:
    async with migrated_engine(url) as engine:
        async with session_factory(engine)() as session:
            async with session.begin():
                return await revoke_token(session, OPERATOR, token_id)


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@database_url_option
def token_revoke(token_id: int, url: str | None) -> None:
    """Revoke the token with this ID (from `segmenta token list`): running servers refuse it within SEGMENTA_TOKEN_CACHE seconds."""
    try:
        revoked = asyncio.run(run_revoke_token(url, token_id))
    except UserError as error:
        fail(error.message, code=2)
    stderr.print(f"revoked token {revoked.id} ({revoked.role}{', ' + revoked.label if revoked.label else ''})")
