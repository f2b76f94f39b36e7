"""Rule-file commands: `segmenta check` and `segmenta fmt`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Collection, Mapping
from pathlib import Path

import click

from segmenta.cli.app import main
from segmenta.dsl.diagnostics import RuleError
from segmenta.dsl.formatter import format_source
from segmenta.dsl.pipeline import check_source
from segmenta.dsl.render import render

EXIT_OK, EXIT_ERRORS, EXIT_UNUSABLE = 0, 1, 2


def read_rules(path: str) -> str:
    """The text of a rule file; a clear message and exit status 2 when it cannot be read as UTF-8."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        click.echo(f"error: cannot read {path}: {error.strerror or error}", err=True)
        sys.exit(EXIT_UNUSABLE)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        click.echo(f"error: {path} is not UTF-8 text (byte 0x{data[error.start]:02x} at line {line}, "
                   f"offset {error.start}); save it as UTF-8", err=True)
        sys.exit(EXIT_UNUSABLE)


def _use_color(stream_is_tty: bool) -> bool:
    return stream_is_tty and "NO_COLOR" not in os.environ


async def _load_known_from(url: str | None) -> tuple[set[str], dict[str, set[str]]]:
    from segmenta.storage.catalog import load_known
    from segmenta.storage.engine import create_engine, session_factory

    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return await load_known(session)
    finally:
        await engine.dispose()


def _known(database_url: str | None) -> tuple[Collection[str], Mapping[str, Collection[str]]]:
    try:
        return asyncio.run(_load_known_from(database_url))
    except Exception as error:  # any driver or schema failure: the check cannot use the database
        click.echo(f"error: cannot read teams and values from the database: {error}", err=True)
        sys.exit(EXIT_UNUSABLE)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: compiler-style report; json: {ok, diagnostics} for tools.")
@click.option("--db", "use_db", is_flag=True,
              help="Also check team keys and values against the database (SEGMENTA_DATABASE_URL).")
@click.option("--database-url", default=None, help="Database to use with --db (default: SEGMENTA_DATABASE_URL).")
@click.option("--color/--no-color", default=None, help="Colour the text report (default: when writing to a terminal).")
def check(file: str, output_format: str, use_db: bool, database_url: str | None, color: bool | None) -> None:
    """Check a rule file: syntax, fields, types, segments, names; exit 1 when it has errors."""
    source = read_rules(file)
    known_teams: Collection[str] | None = None
    known_values: Mapping[str, Collection[str]] | None = None
    if use_db or database_url:
        known_teams, known_values = _known(database_url)
    result = check_source(source, known_teams=known_teams, known_values=known_values)
    if output_format == "json":
        payload = {"ok": result.ok, "diagnostics": [d.to_dict() for d in result.diagnostics]}
        click.echo(json.dumps(payload, ensure_ascii=False))
    else:
        colored = _use_color(sys.stdout.isatty()) if color is None else color
        click.echo(render(result.diagnostics, source, file, color=colored), nl=False, color=colored)
    sys.exit(EXIT_OK if result.ok else EXIT_ERRORS)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 when the file is not formatted.")
def fmt(file: str, check_only: bool) -> None:
    """Rewrite a rule file in the canonical layout (see docs/rule-language.md)."""
    source = read_rules(file)
    try:
        formatted = format_source(source)
    except RuleError as error:
        click.echo(render(error.diagnostics, source, file, color=_use_color(sys.stderr.isatty())), err=True, nl=False)
        click.echo(f"error: {file} has syntax errors; not formatted", err=True)
        sys.exit(EXIT_ERRORS)
    if formatted == source:
        click.echo(f"{file}: already formatted")
        return
    if check_only:
        click.echo(f"{file}: would be reformatted")
        sys.exit(EXIT_ERRORS)
    try:
        Path(file).write_text(formatted, encoding="utf-8")
    except OSError as error:
        click.echo(f"error: cannot write {file}: {error.strerror or error}", err=True)
        sys.exit(EXIT_UNUSABLE)
    click.echo(f"{file}: reformatted")
