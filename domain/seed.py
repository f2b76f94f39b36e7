"""Seeding a database with the demo dataset, a realistic, deterministic customer base for trying Segmenta.

`generate_dataset` (domain/seed_generator.py) is pure: the same count, seed and `as_of` give
the same rows; `seed_database` writes them with bulk Core inserts in the caller's transaction and
then recomputes the maintained metric columns in one set-based pass, so 5,000
customers with their purchase history take seconds, not minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import exists, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.metrics import recompute_metrics
from segmenta.domain.errors import Conflict
from segmenta.domain.seed_generator import Dataset, default_as_of, generate_dataset
from segmenta.domain.seed_tasks import seed_tasks
from segmenta.storage.models import (
    ApiToken,
    Base,
    Customer,
    CustomerAttribute,
    CustomerTag,
    Employee,
    Feedback,
    Interaction,
    Purchase,
    SchedulerLock,
    Segment,
    SegmentMember,
    Team,
    TeamMember,
)

SAMPLE_RULES_PATH = Path(__file__).with_name("sample_rules.seg")

# (step name, rows done, rows in the step) — lets a CLI draw a progress bar.
ProgressCallback = Callable[[str, int, int], None]

INSERT_BATCH = 2000


@dataclass(frozen=True)
class SeedSummary:
    customers: int
    purchases: int
    feedback: int
    interactions: int
    employees: int
    teams: int
    segments: int
    tasks: int = 0


def sample_rules() -> str:
    """The sample rule file routing the demo customers to the demo teams."""
    return SAMPLE_RULES_PATH.read_text(encoding="utf-8")


# Credentials and scheduler bookkeeping are not business data: a database holding only
# those (say, after `segmenta token create`) still counts as empty.
NOT_DATA_TABLES = frozenset({ApiToken.__tablename__, SchedulerLock.__tablename__})


async def database_is_empty(session: AsyncSession) -> bool:
    """True when no table holding business data has a row."""
    for table in Base.metadata.sorted_tables:
        if table.name in NOT_DATA_TABLES:
            continue
        if (await session.execute(select(exists().select_from(table)))).scalar():
            return False
    return True


async def wipe_database(session: AsyncSession) -> None:
    """Delete every row of every model table, children first."""
    for table in reversed(Base.metadata.sorted_tables):
        await session.execute(table.delete())


async def _bulk_insert(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]], step: str, progress: ProgressCallback | None
) -> None:
    for start in range(0, len(rows), INSERT_BATCH):
        batch = rows[start : start + INSERT_BATCH]
        await session.execute(insert(table), batch)
        if progress is not None:
            progress(step, start + len(batch), len(rows))
    if not rows and progress is not None:
        progress(step, 0, 0)


async def _ids(session: AsyncSession, key_column: Any, id_column: Any) -> dict[Any, int]:
    return {key: ident for key, ident in (await session.execute(select(key_column, id_column))).all()}


async def insert_dataset(session: AsyncSession, data: Dataset, progress: ProgressCallback | None = None) -> None:
    """Bulk-insert a generated dataset into an empty database (caller's transaction)."""
    employees = [{k: v for k, v in row.items() if k != "index"} for row in data.employees]
    await _bulk_insert(session, Employee.__table__, employees, "employees", progress)
    await _bulk_insert(session, Team.__table__, data.teams, "teams", progress)
    employee_ids = await _ids(session, Employee.email, Employee.id)
    team_ids = await _ids(session, Team.key, Team.id)
    members = [
        {"team_id": team_ids[team], "employee_id": employee_ids[email], "role": role}
        for team, email, role in data.team_members
    ]
    await _bulk_insert(session, TeamMember.__table__, members, "team members", progress)

    await _bulk_insert(session, Customer.__table__, data.customers, "customers", progress)
    customer_ids = await _ids(session, Customer.code, Customer.id)
    tags = [{"customer_id": customer_ids[code], "tag": tag, "source": "manual"} for code, tag in data.tags]
    await _bulk_insert(session, CustomerTag.__table__, tags, "tags", progress)
    attributes = [
        {"customer_id": customer_ids[code], "key": key, "text_value": text, "number_value": number}
        for code, key, text, number in data.attributes
    ]
    await _bulk_insert(session, CustomerAttribute.__table__, attributes, "attributes", progress)

    def resolve(row: dict[str, Any]) -> dict[str, Any]:
        resolved = {k: v for k, v in row.items() if k not in ("customer_code", "employee_email")}
        resolved["customer_id"] = customer_ids[row["customer_code"]]
        if "employee_email" in row:
            email = row["employee_email"]
            resolved["employee_id"] = employee_ids[email] if email is not None else None
        return resolved

    await _bulk_insert(session, Purchase.__table__, [resolve(r) for r in data.purchases], "purchases", progress)
    await _bulk_insert(session, Feedback.__table__, [resolve(r) for r in data.feedback], "feedback", progress)
    await _bulk_insert(session, Interaction.__table__, [resolve(r) for r in data.interactions], "interactions", progress)

    await _bulk_insert(session, Segment.__table__, data.segments, "segments", progress)
    segment_ids = await _ids(session, Segment.key, Segment.id)
    segment_members = [
        {"segment_id": segment_ids[key], "customer_id": customer_ids[code]} for key, code in data.segment_members
    ]
    await _bulk_insert(session, SegmentMember.__table__, segment_members, "segment members", progress)


async def analyze_tables(session: AsyncSession) -> None:
    """Refresh the planner statistics after a bulk load.

    Without them SQLite picks the low-selectivity `feedback.kind` index for the
    per-customer subqueries of the metric recomputation, which then takes minutes.
    """
    preparer = session.get_bind().dialect.identifier_preparer
    for table in Base.metadata.sorted_tables:
        await session.execute(text(f"ANALYZE {preparer.format_table(table)}"))


async def seed_database(
    session: AsyncSession,
    *,
    customers: int = 5000,
    seed: int = 42,
    as_of: datetime | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> SeedSummary:
    """Fill an empty database with the demo dataset and compute its metrics (caller's transaction).

    A non-empty database is refused with Conflict unless `force`, which wipes it first.
    """
    if not await database_is_empty(session):
        if not force:
            raise Conflict("the database already holds data; use --force to wipe it and seed again")
        await wipe_database(session)
    data = generate_dataset(customers, seed, as_of)
    await insert_dataset(session, data, progress)
    await analyze_tables(session)
    if progress is not None:
        progress("metrics", 0, 1)
    await recompute_metrics(session)
    if progress is not None:
        progress("metrics", 1, 1)
    tasks = await seed_tasks(session, as_of or default_as_of())
    return SeedSummary(
        customers=len(data.customers),
        purchases=len(data.purchases),
        feedback=len(data.feedback),
        interactions=len(data.interactions),
        employees=len(data.employees),
        teams=len(data.teams),
        segments=len(data.segments),
        tasks=tasks,
    )
