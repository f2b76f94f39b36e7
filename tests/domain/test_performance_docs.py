"""docs/performance.md prints the SQL the performance statement runs, part by part (storage/performance_sql.py)."""

from __future__ import annotations

import re
from pathlib import Path

from segmenta.storage.performance_sql import EMPLOYEE, KINDS, SECONDS, TEAM, documented_parts, statement_text

DOC = (Path(__file__).resolve().parents[2] / "docs" / "performance.md").read_text(encoding="utf-8")
SQL_BLOCKS = re.findall(r"```sql\n(.*?)\n```", DOC, flags=re.DOTALL)


def test_every_part_of_the_statement_is_printed_as_it_runs() -> None:
    parts = documented_parts(EMPLOYEE, "sqlite")
    # The parts in order, then (in the tasks' section) how a team's tasks are assigned.
    assert SQL_BLOCKS[:-2] == list(parts.values())[:-1]
    assert SQL_BLOCKS[-2:] == [KINDS[TEAM].assigned, parts["final"]]
    # The parts make the whole statement, in order.
    assert statement_text(EMPLOYEE, "sqlite", 1) == "WITH " + ",\n".join(list(parts.values())[:-1]) + "\n" + parts["final"]
    assert SECONDS["postgresql"] in DOC


def test_the_team_statement_differs_only_where_the_page_says() -> None:
    employee, team = statement_text(EMPLOYEE, "sqlite", 1), statement_text(TEAM, "sqlite", 1)
    for before, after in (
        ("manager_before_id", "team_before_id"), ("c.manager_id", "c.team_id"),
        ("FROM employees o", "FROM teams o"), ("t.employee_id = o.id", "t.team_id = o.id"),
        (KINDS[EMPLOYEE].assigned, KINDS[TEAM].assigned),
    ):
        employee = employee.replace(before, after)
    assert employee == team
