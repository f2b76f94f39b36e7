"""SQL pieces the benchmarks build their bulk data from, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Sequence


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
