"""Statements built once per shape of scope (schema/prebuilt.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.access.scope import AGENT_EMPLOYEE, EVERY_CUSTOMER, Scope
from segmenta.schema.loader_statements import CUSTOMERS_BY_ID
from segmenta.schema.prebuilt import Prebuilt, PrebuiltFamily, keyed
from segmenta.storage import models
from segmenta.storage.engine import session_factory

NOBODY = Scope(restricted=True)


def agent(employee_id: int) -> Scope:
    return Scope(restricted=True, employee_id=employee_id)


def test_one_statement_per_shape_built_over_the_bound_scope() -> None:
    built: list[Scope] = []

    def build(scope: Scope) -> str:
        built.append(scope)
        return f"statement {len(built)}"

    prebuilt = Prebuilt(build)
    first = [prebuilt(scope) for scope in (EVERY_CUSTOMER, agent(1), NOBODY)]
    again = [prebuilt(scope) for scope in (EVERY_CUSTOMER, agent(2), NOBODY)]
    assert first == again == ["statement 1", "statement 2", "statement 3"]
    # Never a caller's own id in a statement kept for every agent.
    assert built == [EVERY_CUSTOMER, Scope(restricted=True, employee_id=AGENT_EMPLOYEE), NOBODY]


def test_only_an_agent_has_parameters() -> None:
    assert agent(7).parameters() == {AGENT_EMPLOYEE.key: 7}
    assert EVERY_CUSTOMER.parameters() == NOBODY.parameters() == agent(7).bound().parameters() == {}
    assert [scope.shape for scope in (EVERY_CUSTOMER, agent(7), NOBODY)] == ["every", "agent", "none"]


def test_a_family_keeps_at_most_its_bound_of_members() -> None:
    builds: list[int] = []

    def build(key: int, scope: Scope) -> int:
        builds.append(key)
        return key

    family: PrebuiltFamily[int, int] = PrebuiltFamily(build)
    for key in range(PrebuiltFamily.MAX_MEMBERS + 10):
        assert family(key, EVERY_CUSTOMER) == key
    assert family(0, EVERY_CUSTOMER) == 0 and len(builds) == PrebuiltFamily.MAX_MEMBERS + 10
    # Past the bound, a key is built again on every call instead of kept.
    assert family(PrebuiltFamily.MAX_MEMBERS + 1, EVERY_CUSTOMER) == PrebuiltFamily.MAX_MEMBERS + 1
    assert len(builds) == PrebuiltFamily.MAX_MEMBERS + 11


async def test_an_agents_statement_without_the_agents_id_is_refused(engine: AsyncEngine) -> None:
    """Fail closed: a statement kept for every agent runs only with an agent's id given."""
    async with session_factory(engine)() as session:
        session.add(models.Employee(name="Agent", email="a@example.com"))
        await session.commit()
        employee = await session.scalar(select(models.Employee.id))
        assert employee is not None
        statement = CUSTOMERS_BY_ID(agent(employee))
        assert (await session.execute(statement, keyed([1], agent(employee)))).all() == []
        with pytest.raises(StatementError):
            await session.execute(statement, keyed([1]))
