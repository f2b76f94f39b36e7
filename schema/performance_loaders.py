"""Per-request loader of performance figures (docs/performance.md): the figures of every employee
(or team) a response asks for, over the same periods and with the same selection, come from one statement.

A module of its own so that schema/context.py can declare it without importing the types.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from strawberry.dataloader import DataLoader

from segmenta.domain.staff.performance import Performance, Period, performance_of
from segmenta.schema.serial import SerialSession

# (kind of owner, owner id, the periods, the groups of figures): the owner's figures for each period,
# or None (no such owner).
PerformanceKey = tuple[str, int, tuple[Period, ...], frozenset[str]]


class PerformanceLoaders:
    def __init__(self, db: SerialSession, now: datetime) -> None:
        async def load(keys: list[PerformanceKey]) -> list[list[Performance] | None]:
            owners: dict[tuple[str, tuple[Period, ...], frozenset[str]], set[int]] = defaultdict(set)
            for kind, owner_id, periods, groups in keys:
                owners[(kind, periods, groups)].add(owner_id)
            found: dict[PerformanceKey, list[Performance]] = {}
            for (kind, periods, groups), owner_ids in owners.items():
                async with db.exclusive() as session:
                    figures = await performance_of(session, kind, sorted(owner_ids), periods, now, groups)
                for owner_id in owner_ids:
                    if (owner_id, 0) in figures:
                        found[(kind, owner_id, periods, groups)] = [
                            figures[(owner_id, index)] for index in range(len(periods))
                        ]
            return [found.get(key) for key in keys]

        self.figures: DataLoader[PerformanceKey, list[Performance] | None] = DataLoader(load)
