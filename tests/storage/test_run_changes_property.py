"""storage/run_changes.py over random change rows equals a plain Python count (SQLite and
PostgreSQL): segment and tag gains and losses per run, unnested in SQL, and the changes of one move
between teams (locked ones and stays excluded, no team as None)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage.engine import session_factory
from segmenta.storage.models import EvaluationChange, EvaluationRun, Team
from segmenta.storage.run_changes import label_changes, one_move

LABELS = ["vip", "新客户", "a b", "it's", "x" * 40]
TEAMS = ["east", "west", "north"]
team_keys = st.one_of(st.none(), st.sampled_from(TEAMS))
label_lists = st.lists(st.sampled_from(LABELS), max_size=3, unique=True)
changes = st.lists(
    st.fixed_dictionaries({
        "run": st.integers(0, 1),
        "before": team_keys,
        "after": team_keys,
        "locked": st.booleans(),
        "segments_added": label_lists,
        "segments_removed": label_lists,
        "tags_added": label_lists,
        "tags_removed": label_lists,
    }),
    max_size=25,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rows=changes, cell=st.tuples(team_keys, team_keys))
async def test_counts_and_move_cells_equal_python(engine: AsyncEngine, rows: list[dict], cell: tuple[str | None, str | None]) -> None:
    async with session_factory(engine)() as session:
        try:
            teams = {}
            for key in TEAMS:
                team = Team(key=key, name=key)
                session.add(team)
                await session.flush()
                teams[key] = team.id
            runs = []
            for _ in range(2):
                run = EvaluationRun(mode="preview", status="succeeded", as_of=datetime(2026, 1, 1))
                session.add(run)
                await session.flush()
                runs.append(run.id)
            if rows:
                await session.execute(insert(EvaluationChange), [
                    {
                        "run_id": runs[row["run"]],
                        "team_before_id": teams.get(row["before"]),
                        "team_after_id": teams.get(row["after"]),
                        "locked": row["locked"],
                        **{name: row[name] for name in ("segments_added", "segments_removed", "tags_added", "tags_removed")},
                    }
                    for row in rows
                ])

            found = await label_changes(session, runs)
            for index, run_id in enumerate(runs):
                mine = [row for row in rows if row["run"] == index]
                for kind, got in (("segments", found[run_id].segments), ("tags", found[run_id].tags)):
                    added = Counter(label for row in mine for label in row[f"{kind}_added"])
                    removed = Counter(label for row in mine for label in row[f"{kind}_removed"])
                    assert got == {label: (added[label], removed[label]) for label in added | removed}

            from_key, to_key = cell
            statement = select(EvaluationChange.id).where(EvaluationChange.run_id == runs[0], one_move(from_key, to_key))
            got_ids = len((await session.scalars(statement)).all())
            want = [
                row for row in rows
                if row["run"] == 0 and not row["locked"] and row["before"] == from_key and row["after"] == to_key and from_key != to_key
            ]
            assert got_ids == len(want)
        finally:
            await session.rollback()
