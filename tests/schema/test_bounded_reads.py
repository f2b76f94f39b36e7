"""The statements marked as bounded reads (storage/guard.py `bounded_read`; SQLite runs them on the
event loop's thread, storage/sqlite_cursor.py) keep that promise: SQLite's plan for each finds its rows
through an index or the primary key and scans no table, for every shape of the caller's scope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import Executable

from segmenta.domain.access.scope import Scope
from segmenta.schema import loader_statements
from segmenta.schema.prebuilt import Prebuilt
from segmenta.storage.engine import create_engine
from segmenta.storage.guard import BOUNDED_READ
from segmenta.storage.migrate import upgrade

SCOPES = {"everyone": Scope(restricted=False), "an agent": Scope(restricted=True, employee_id=7)}


def _marked_statements() -> dict[str, Any]:
    """Every statement of schema/loader_statements.py marked bounded, per scope shape."""
    found: dict[str, Any] = {}
    for name, value in vars(loader_statements).items():
        if isinstance(value, Prebuilt):
            for label, scope in SCOPES.items():
                statement = value(scope)
                if statement.get_execution_options().get(BOUNDED_READ):
                    found[f"{name} ({label})"] = statement
        elif isinstance(value, Executable) and value.get_execution_options().get(BOUNDED_READ):
            found[name] = value
    return found


MARKED = _marked_statements()


def test_the_lookups_of_a_customer_page_are_marked() -> None:
    names = {name.split(" ")[0] for name in MARKED}
    assert {"CUSTOMERS_BY_ID", "TEAMS_BY_ID", "EMPLOYEES_BY_ID", "CUSTOMERS_WITH_RELATIONS"} <= names
    assert {"SEGMENTS_OF_CUSTOMERS", "TAGS_OF_CUSTOMERS"} <= names
    # A customer's history or purchases grow without bound: never marked.
    assert not names & {"HISTORY_OF_CUSTOMERS", "CATEGORIES_OF_CUSTOMERS"}


@pytest.mark.parametrize("name", sorted(MARKED))
async def test_a_bounded_read_scans_no_table(tmp_path: Path, name: str) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    await upgrade(engine)
    names = MARKED[name].compile(dialect=sqlite.dialect()).params
    parameters = {key: ([1, 2, 3] if key == "keys" else 7) for key in names}
    compiled = MARKED[name].params(parameters).compile(
        dialect=sqlite.dialect(), compile_kwargs={"render_postcompile": True, "literal_binds": True}
    )
    async with engine.connect() as connection:
        plan = (await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")).all()
    steps = [row[-1] for row in plan]
    assert steps and not [step for step in steps if step.startswith("SCAN") and "USING" not in step], steps
    await engine.dispose()
