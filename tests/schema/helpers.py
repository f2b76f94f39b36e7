"""Helpers for the GraphQL tests: a client that speaks GraphQL, sample data, database snapshots."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.storage import models
from segmenta.storage.engine import session_factory


@dataclass
class Api:
    """Posts GraphQL documents to the app with a bearer token."""

    client: httpx.AsyncClient
    token: str | None

    async def post(self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None) -> httpx.Response:
        used = token if token is not None else self.token
        headers = {"Authorization": f"Bearer {used}"} if used is not None else {}
        return await self.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)

    async def data(self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None) -> Any:
        """The `data` of a call that must succeed without errors."""
        response = await self.post(query, variables, token=token)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        return body["data"]

    async def errors(self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None) -> list[dict[str, Any]]:
        """The `errors` of a call that must fail."""
        response = await self.post(query, variables, token=token)
        body = response.json()
        assert body.get("errors"), body
        return body["errors"]


def global_id(type_name: str, key: int) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def key_of(value: str) -> int:
    type_name, _, key = base64.b64decode(value).decode().partition(":")
    return int(key)


# Authentication's own bookkeeping (a token's last use, at most once a minute), not a write of the call.
NOT_SNAPSHOTTED = {("api_tokens", "last_used_at")}


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a refused call wrote nothing."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    async with session_factory(engine)() as session:
        for table in models.Base.metadata.sorted_tables:
            columns = [column for column in table.columns if (table.name, column.name) not in NOT_SNAPSHOTTED]
            rows = await session.execute(select(*columns).order_by(*table.primary_key.columns))
            tables[table.name] = [tuple(row) for row in rows]
    return tables


@dataclass
class World:
    """A small, fully known data set: two teams, three employees, two segments, customers."""

    teams: dict[str, int]
    employees: dict[str, int]
    segments: dict[str, int]
    customers: dict[str, int]


async def build_world(session: AsyncSession, customer_count: int = 6) -> World:
    east = models.Team(key="east_sales", name="East sales", kind="regional", strategy="round_robin")
    west = models.Team(key="west_sales", name="West sales", kind="regional", strategy="least_loaded")
    ann = models.Employee(name="Ann Lee", email="ann@example.com", level="senior", capacity=50,
                          specialties=["finance"], regions=["east"])
    bob = models.Employee(name="Bob Wu", email="bob@example.com", level="junior", capacity=None)
    cat = models.Employee(name="Cat Ng", email="cat@example.com", level="lead", capacity=3, active=False)
    session.add_all([east, west, ann, bob, cat])
    await session.flush()
    session.add_all([
        models.TeamMember(team_id=east.id, employee_id=ann.id, role="leader"),
        models.TeamMember(team_id=east.id, employee_id=bob.id, role="member"),
        models.TeamMember(team_id=west.id, employee_id=bob.id, role="leader"),
    ])
    vip = models.Segment(key="vip", name="VIP", kind="manual")
    high_value = models.Segment(key="high_value", name="High value", kind="dynamic")
    session.add_all([vip, high_value])
    await session.flush()
    customers: dict[str, int] = {}
    sizes = ["small", "medium", "large", "enterprise"]
    for index in range(customer_count):
        east_side = index % 2 == 0
        customer = models.Customer(
            code=f"C{index:03d}",
            name=f"Customer {index:03d}",
            kind="company",
            industry="finance" if index % 3 == 0 else "retail",
            size=sizes[index % 4],
            region="east" if east_side else "west",
            lifecycle="active",
            team_id=east.id if east_side else west.id,
            manager_id=ann.id if east_side else bob.id,
            total_spent=float(index * 100),
            purchase_count=index,
        )
        session.add(customer)
        await session.flush()
        customers[customer.code] = customer.id
        session.add(models.CustomerTag(customer_id=customer.id, tag="newsletter", source="manual"))
        if index % 2 == 0:
            session.add(models.CustomerTag(customer_id=customer.id, tag="priority", source="rule"))
            session.add(models.SegmentMember(segment_id=high_value.id, customer_id=customer.id))
        if index % 3 == 0:
            session.add(models.SegmentMember(segment_id=vip.id, customer_id=customer.id))
        session.add(models.CustomerAttribute(customer_id=customer.id, key="tier", text_value="gold"))
        session.add(models.CustomerAttribute(customer_id=customer.id, key="score", number_value=float(index)))
        for purchase in range(index % 3):
            session.add(models.Purchase(customer_id=customer.id, amount=50.0, category=f"cat{purchase}"))
    await session.commit()
    return World(
        teams={"east_sales": east.id, "west_sales": west.id},
        employees={"ann": ann.id, "bob": bob.id, "cat": cat.id},
        segments={"vip": vip.id, "high_value": high_value.id},
        customers=customers,
    )
