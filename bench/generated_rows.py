"""The bulk data sets of bench/apply.py and bench/performance.py: where they live (their shared
command-line arguments, the database opened on them) and the SQL pieces they are generated from, on
SQLite and PostgreSQL alike."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage.engine import create_engine
from segmenta.storage.migrate import upgrade


def add_data_set_arguments(parser: argparse.ArgumentParser) -> None:
    """--customers, --purchases, --postgres, --directory and --reuse."""
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--purchases", type=int, default=300_000)
    parser.add_argument("--postgres", help="PostgreSQL URL (its public schema is dropped and rebuilt!)")
    parser.add_argument("--directory", help="where to put the SQLite file (default: a new temporary directory)")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the data set built by an earlier run (SQLite --directory, or --postgres)"
    )


async def open_data_set(arguments: argparse.Namespace, file_name: str) -> AsyncEngine:
    """The migrated database of `arguments`: PostgreSQL's public schema, or the SQLite file `file_name`
    in --directory; emptied first unless --reuse."""
    if arguments.postgres:
        engine = create_engine(arguments.postgres)
        if not arguments.reuse:
            async with engine.begin() as connection:
                await connection.execute(text("DROP SCHEMA public CASCADE"))
                await connection.execute(text("CREATE SCHEMA public"))
    else:
        directory = Path(arguments.directory or tempfile.mkdtemp(prefix="segmenta-bench-"))
        path = directory / file_name
        if not arguments.reuse:
            path.unlink(missing_ok=True)
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade(engine)
    print(f"database: {engine.dialect.name}")
    return engine


def numbers(dialect: str, count: int) -> str:
    """A row source `n(i)` of 1..count (BIGINT on PostgreSQL, so products of i stay exact)."""
    if dialect == "postgresql":
        return f"(SELECT generate_series(CAST(1 AS BIGINT), {count}) AS i) AS n"
    return f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {count}) SELECT i FROM s) AS n"


def pick(expression: str, words: Sequence[str | None]) -> str:
    """SQL choosing words[expression % len(words)]; NULL for the word None."""
    whens = " ".join(
        f"WHEN {index} THEN {'NULL' if word is None else repr(word)}" for index, word in enumerate(words)
    )
    return f"CASE ({expression}) % {len(words)} {whens} END"
