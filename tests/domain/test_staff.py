"""domain.staff.teams: employees, teams, membership."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.errors import Conflict, NotFound, UserError
from segmenta.domain.staff.teams import (
    add_team_member,
    create_employee,
    create_team,
    remove_team_member,
    team_members,
    update_employee,
    update_team,
)
from tests.domain.helpers import database_snapshot


async def test_create_employee_defaults_and_normalisation(session: AsyncSession) -> None:
    employee = await create_employee(session, {"name": " Li Na ", "email": "Li.Na@Example.com"})
    assert (employee.name, employee.email, employee.level) == ("Li Na", "li.na@example.com", "junior")
    assert (employee.specialties, employee.regions, employee.capacity, employee.active) == ([], [], None, True)


async def test_create_employee_all_fields(session: AsyncSession) -> None:
    employee = await create_employee(
        session,
        {
            "name": "Wang",
            "email": "wang@example.com",
            "level": "Senior",
            "specialties": ["finance", "insurance", "finance"],
            "regions": ["east"],
            "capacity": 50,
            "active": False,
            "monthly_target": 200_000,
        },
    )
    await session.commit()
    assert (employee.level, employee.specialties, employee.regions) == ("senior", ["finance", "insurance"], ["east"])
    assert (employee.capacity, employee.active, employee.monthly_target) == (50, False, 200_000.0)


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"email": "a@b.example"}, "name", "required"),
        ({"name": "A"}, "email", "required"),
        ({"name": "A", "email": "nope"}, "email", "invalid"),
        ({"name": "A", "email": "a@b.example", "level": "boss"}, "level", "invalid"),
        ({"name": "A", "email": "a@b.example", "level": None}, "level", "required"),
        ({"name": "A", "email": "a@b.example", "capacity": -1}, "capacity", "out_of_range"),
        ({"name": "A", "email": "a@b.example", "capacity": 2.5}, "capacity", "invalid"),
        ({"name": "A", "email": "a@b.example", "active": "yes"}, "active", "invalid"),
        ({"name": "A", "email": "a@b.example", "monthly_target": -10}, "monthly_target", "out_of_range"),
        ({"name": "A", "email": "a@b.example", "specialties": ["ok", " "]}, "specialties", "invalid"),
        ({"name": "A", "email": "a@b.example", "regions": "east"}, "regions", "invalid"),
        ({"name": "A" * 201, "email": "a@b.example"}, "name", "too_long"),
        ({"name": "A", "email": "a@b.example", "team": "x"}, "team", "invalid"),
    ],
)
async def test_create_employee_rejects_bad_input(
    session: AsyncSession, data: dict[str, Any], field: str, code: str
) -> None:
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await create_employee(session, data)
    assert (raised.value.field, raised.value.code) == (field, code)
    assert await database_snapshot(session) == before


async def test_employee_email_is_unique_ignoring_case(session: AsyncSession) -> None:
    first = await create_employee(session, {"name": "A", "email": "same@example.com"})
    second = await create_employee(session, {"name": "B", "email": "other@example.com"})
    before = await database_snapshot(session)
    with pytest.raises(Conflict) as raised:
        await create_employee(session, {"name": "C", "email": "SAME@example.com"})
    assert raised.value.field == "email"
    with pytest.raises(Conflict):
        await update_employee(session, second.id, {"email": "same@example.com", "name": "Changed"})
    assert await database_snapshot(session) == before
    await update_employee(session, first.id, {"email": "same@example.com"})  # own address: no conflict


async def test_update_employee(session: AsyncSession) -> None:
    employee = await create_employee(session, {"name": "A", "email": "a@example.com", "capacity": 3})
    await update_employee(session, employee.id, {"capacity": None, "active": False, "regions": ["north"]})
    assert (employee.capacity, employee.active, employee.regions, employee.name) == (None, False, ["north"], "A")
    with pytest.raises(UserError) as raised:
        await update_employee(session, employee.id, {"active": None})
    assert raised.value.field == "active"
    with pytest.raises(NotFound) as missing:
        await update_employee(session, 999999, {"name": "x"})
    assert missing.value.field == "id"


async def test_create_team_defaults(session: AsyncSession) -> None:
    team = await create_team(session, {"key": "east_standard"})
    assert (team.key, team.name, team.kind, team.strategy) == ("east_standard", "east_standard", "general", "round_robin")
    full = await create_team(
        session,
        {
            "key": "华东-sales",
            "name": "East sales",
            "description": "large accounts",
            "kind": "regional",
            "strategy": "LEAST_LOADED",
            "monthly_target": 1e6,
        },
    )
    assert (full.kind, full.strategy, full.monthly_target) == ("regional", "least_loaded", 1e6)


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"name": "No key"}, "key", "required"),
        ({"key": "two words"}, "key", "invalid"),
        ({"key": "9lives"}, "key", "invalid"),
        ({"key": "team"}, "key", "invalid"),
        ({"key": "k" * 101}, "key", "too_long"),
        ({"key": "ok", "kind": "secret"}, "kind", "invalid"),
        ({"key": "ok", "strategy": "random"}, "strategy", "invalid"),
        ({"key": "ok", "strategy": None}, "strategy", "required"),
        ({"key": "ok", "monthly_target": -1}, "monthly_target", "out_of_range"),
    ],
)
async def test_create_team_rejects_bad_input(
    session: AsyncSession, data: dict[str, Any], field: str, code: str
) -> None:
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await create_team(session, data)
    assert (raised.value.field, raised.value.code) == (field, code)
    assert await database_snapshot(session) == before


async def test_team_key_unique_and_update(session: AsyncSession) -> None:
    await create_team(session, {"key": "alpha"})
    beta = await create_team(session, {"key": "beta"})
    with pytest.raises(Conflict) as raised:
        await create_team(session, {"key": "alpha"})
    assert raised.value.field == "key"
    before = await database_snapshot(session)
    with pytest.raises(Conflict):
        await update_team(session, "beta", {"key": "alpha", "name": "Renamed"})
    assert await database_snapshot(session) == before

    renamed = await update_team(session, "beta", {"key": "gamma", "strategy": "manual", "description": None})
    assert renamed is beta and (beta.key, beta.strategy) == ("gamma", "manual")
    with pytest.raises(NotFound) as missing:
        await update_team(session, "beta", {"name": "x"})
    assert missing.value.field == "key"


async def test_team_membership(session: AsyncSession) -> None:
    team = await create_team(session, {"key": "desk"})
    lead = await create_employee(session, {"name": "Zed Lead", "email": "lead@example.com"})
    member = await create_employee(session, {"name": "Amy", "email": "amy@example.com"})

    joined = await add_team_member(session, "desk", member.id)
    assert (joined.team_id, joined.employee_id, joined.role) == (team.id, member.id, "member")
    await add_team_member(session, "desk", lead.id, role="leader")
    again = await add_team_member(session, "desk", member.id)  # idempotent
    assert again is joined
    assert [(m.role, e.name) for m, e in await team_members(session, "desk")] == [("leader", "Zed Lead"), ("member", "Amy")]

    await add_team_member(session, "desk", member.id, role="LEADER")  # changes the role
    assert joined.role == "leader"

    await remove_team_member(session, "desk", member.id)
    assert [e.name for _, e in await team_members(session, "desk")] == ["Zed Lead"]
    before = await database_snapshot(session)
    with pytest.raises(UserError) as not_member:
        await remove_team_member(session, "desk", member.id)
    assert (not_member.value.field, not_member.value.code) == ("employee_id", "not_found")
    assert await database_snapshot(session) == before


@pytest.mark.parametrize(
    ("team_key", "employee", "role", "field"),
    [("nope", True, "member", "team_key"), ("desk", False, "member", "employee_id"), ("desk", True, "boss", "role")],
)
async def test_add_team_member_rejects_bad_input(
    session: AsyncSession, team_key: str, employee: bool, role: str, field: str
) -> None:
    await create_team(session, {"key": "desk"})
    person = await create_employee(session, {"name": "P", "email": "p@example.com"})
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await add_team_member(session, team_key, person.id if employee else 999999, role=role)
    assert raised.value.field == field
    assert await database_snapshot(session) == before


async def test_a_team_is_deactivated_and_reactivated_never_cleared(session: AsyncSession) -> None:
    team = await create_team(session, {"key": "east"})
    assert team.active is True
    assert (await update_team(session, "east", {"active": False})).active is False
    assert (await update_team(session, "east", {"name": "East"})).active is False  # other patches keep it
    assert (await update_team(session, "east", {"active": True})).active is True
    before = await database_snapshot(session)
    for bad in (None, "no", 0):
        with pytest.raises(UserError) as refused:
            await update_team(session, "east", {"active": bad})
        assert refused.value.field == "active"
    assert await database_snapshot(session) == before
