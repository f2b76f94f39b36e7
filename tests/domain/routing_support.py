"""Builders for routing tests: teams, employees and customers written straight through the models."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.storage.models import (
    AssignmentHistory,
    Customer,
    CustomerTag,
    Employee,
    EvaluationChange,
    EvaluationRun,
    Segment,
    SegmentMember,
    Team,
    TeamMember,
)


async def add_employee(
    session: AsyncSession,
    name: str,
    *,
    capacity: int | None = None,
    specialties: Sequence[str] = (),
    regions: Sequence[str] = (),
    active: bool = True,
) -> Employee:
    employee = Employee(
        name=name,
        email=f"{name.lower().replace(' ', '.')}@example.com",
        capacity=capacity,
        specialties=list(specialties),
        regions=list(regions),
        active=active,
    )
    session.add(employee)
    await session.flush()
    return employee


async def add_team(
    session: AsyncSession,
    key: str,
    *,
    strategy: str = "round_robin",
    members: Iterable[Employee] = (),
    position: int = 0,
) -> Team:
    team = Team(key=key, name=key.replace("_", " ").title(), strategy=strategy, round_robin_position=position)
    session.add(team)
    await session.flush()
    for employee in members:
        session.add(TeamMember(team_id=team.id, employee_id=employee.id))
    await session.flush()
    return team


async def add_customer(session: AsyncSession, code: str, *, tags: Sequence[str] = (), **fields: Any) -> Customer:
    customer = Customer(code=code, name=fields.pop("name", code), **fields)
    session.add(customer)
    await session.flush()
    for tag in tags:
        session.add(CustomerTag(customer_id=customer.id, tag=tag, source="manual"))
    await session.flush()
    return customer


async def customer_state(session: AsyncSession) -> dict[str, tuple[int | None, int | None]]:
    """(team id, manager id) by customer code."""
    rows = await session.execute(select(Customer.code, Customer.team_id, Customer.manager_id))
    return {code: (team, manager) for code, team, manager in rows.all()}


async def team_keys_by_code(session: AsyncSession) -> dict[str, str | None]:
    rows = await session.execute(select(Customer.code, Team.key).outerjoin(Team, Team.id == Customer.team_id))
    return {code: key for code, key in rows.all()}


async def dynamic_segments_by_code(session: AsyncSession) -> dict[str, set[str]]:
    rows = await session.execute(
        select(Customer.code, Segment.key)
        .join(SegmentMember, SegmentMember.customer_id == Customer.id)
        .join(Segment, Segment.id == SegmentMember.segment_id)
        .where(Segment.kind == "dynamic")
    )
    result: dict[str, set[str]] = {}
    for code, key in rows.all():
        result.setdefault(code, set()).add(key)
    return result


async def rule_tags_by_code(session: AsyncSession) -> dict[str, set[str]]:
    rows = await session.execute(
        select(Customer.code, CustomerTag.tag)
        .join(CustomerTag, CustomerTag.customer_id == Customer.id)
        .where(CustomerTag.source == "rule")
    )
    result: dict[str, set[str]] = {}
    for code, tag in rows.all():
        result.setdefault(code, set()).add(tag)
    return result


# Tables a preview must leave exactly as they were (everything but the run's own rows).
SNAPSHOT_MODELS = (Customer, CustomerTag, Segment, SegmentMember, Team, TeamMember, Employee, AssignmentHistory)


async def snapshot(session: AsyncSession) -> dict[str, list[tuple[Any, ...]]]:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for model in SNAPSHOT_MODELS:
        table = model.__table__
        rows = await session.execute(select(table).order_by(*table.primary_key.columns))
        tables[table.name] = [tuple(row) for row in rows.all()]
    return tables


async def run_changes(session: AsyncSession, run_id: int) -> list[EvaluationChange]:
    return list(
        (await session.scalars(select(EvaluationChange).where(EvaluationChange.run_id == run_id).order_by(EvaluationChange.customer_id))).all()
    )


async def latest_run(session: AsyncSession) -> EvaluationRun | None:
    return await session.scalar(select(EvaluationRun).order_by(EvaluationRun.id.desc()).limit(1))
