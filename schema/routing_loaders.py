"""Per-request loaders of the objects a run summary names by key (one query per kind).

A module of its own so that schema/context.py can declare them without importing the routing
types and resolvers (which import the context).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from segmenta.domain.routing import realtime_summary
from segmenta.schema.serial import SerialSession
from segmenta.storage import models, run_changes


class RoutingLoaders:
    def __init__(self, db: SerialSession) -> None:
        async def teams(keys: list[str]) -> list[models.Team | None]:
            rows = {row.key: row for row in await db.scalars(select(models.Team).where(models.Team.key.in_(set(keys))))}
            return [rows.get(key) for key in keys]

        async def segments(keys: list[str]) -> list[models.Segment | None]:
            statement = select(models.Segment).where(models.Segment.key.in_(set(keys)))
            rows = {row.key: row for row in await db.scalars(statement)}
            return [rows.get(key) for key in keys]

        async def rulesets(keys: list[int]) -> list[models.RulesetVersion | None]:
            statement = select(models.RulesetVersion).where(models.RulesetVersion.id.in_(set(keys)))
            rows = {row.id: row for row in await db.scalars(statement)}
            return [rows.get(key) for key in keys]

        async def realtime_summaries(run_ids: list[int]) -> list[dict[str, Any]]:
            async with db.exclusive() as session:
                summaries = await realtime_summary.realtime_summaries(session, run_ids)
            return [summaries[run_id] for run_id in run_ids]

        async def label_changes(run_ids: list[int]) -> list[run_changes.LabelChanges]:
            async with db.exclusive() as session:
                found = await run_changes.label_changes(session, run_ids)
            return [found[run_id] for run_id in run_ids]

        self.label_changes: DataLoader[int, run_changes.LabelChanges] = DataLoader(label_changes)
        self.team_by_key: DataLoader[str, models.Team | None] = DataLoader(teams)
        self.realtime_summary: DataLoader[int, dict[str, Any]] = DataLoader(realtime_summaries)
        self.segment_by_key: DataLoader[str, models.Segment | None] = DataLoader(segments)
        self.ruleset: DataLoader[int, models.RulesetVersion | None] = DataLoader(rulesets)
