"""domain.tokens: hashed storage, roles, agent binding, authentication."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import NotFound, UserError
from domain.staff import create_employee, update_employee
from domain.tokens import ROLES, Principal, authenticate, create_token, hash_token, revoke_token
from storage.models import ApiToken
from tests.domain.helpers import database_snapshot


@pytest.mark.parametrize("role", ["admin", "manager", "viewer"])
async def test_tokens_are_stored_hashed_and_authenticate(session: AsyncSession, role: str) -> None:
    token = await create_token(session, role.upper(), label="ci")
    assert token.startswith("sgm_") and len(token) > 40
    stored = (await session.execute(select(ApiToken))).scalar_one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest() == hash_token(token)
    assert token not in (stored.token_hash, stored.label)
    assert (stored.role, stored.label, stored.employee_id) == (role, "ci", None)
    assert await authenticate(session, token) == Principal(token_id=stored.id, role=role, employee_id=None)
    assert await authenticate(session, f"  {token}\n") is not None


async def test_tokens_are_unique(session: AsyncSession) -> None:
    tokens = {await create_token(session, "viewer") for _ in range(20)}
    assert len(tokens) == 20


async def test_agent_tokens_are_bound_to_an_employee(session: AsyncSession) -> None:
    employee = await create_employee(session, {"name": "Agent", "email": "agent@example.com"})
    token = await create_token(session, "agent", employee_email="Agent@Example.com")
    principal = await authenticate(session, token)
    assert principal is not None and (principal.role, principal.employee_id) == ("agent", employee.id)

    await update_employee(session, employee.id, {"active": False})
    assert await authenticate(session, token) is None  # deactivated staff lose access


@pytest.mark.parametrize(
    ("role", "email", "field", "code"),
    [
        ("root", None, "role", "invalid"),
        (None, None, "role", "required"),
        ("agent", None, "employee_email", "required"),
        ("agent", "ghost@example.com", "employee_email", "not_found"),
        ("agent", "not an email", "employee_email", "invalid"),
        ("agent", "idle@example.com", "employee_email", "invalid"),
        ("manager", "ghost@example.com", "employee_email", "not_found"),
    ],
)
async def test_create_token_rejects_bad_input(
    session: AsyncSession, role: str | None, email: str | None, field: str, code: str
) -> None:
    await create_employee(session, {"name": "Idle", "email": "idle@example.com", "active": False})
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await create_token(session, role, employee_email=email)  # type: ignore[arg-type]
    assert (raised.value.field, raised.value.code) == (field, code)
    assert await database_snapshot(session) == before


async def test_label_length_is_checked(session: AsyncSession) -> None:
    with pytest.raises(UserError) as raised:
        await create_token(session, "viewer", label="l" * 201)
    assert raised.value.field == "label"


@pytest.mark.parametrize("bad", ["", "sgm_", "sgm_unknown", "Bearer x", "x" * 5000, "sgm_" + "a" * 500, None, 42])
async def test_authenticate_refuses_malformed_and_unknown_tokens(session: AsyncSession, bad: object) -> None:
    await create_token(session, "admin")
    assert await authenticate(session, bad) is None


async def test_revoked_tokens_no_longer_authenticate(session: AsyncSession) -> None:
    token = await create_token(session, "manager")
    principal = await authenticate(session, token)
    assert principal is not None
    await revoke_token(session, principal.token_id)
    await revoke_token(session, principal.token_id)  # twice is harmless
    assert await authenticate(session, token) is None
    with pytest.raises(NotFound):
        await revoke_token(session, 999999)


def test_roles_are_the_spec_roles() -> None:
    assert ROLES == ("admin", "manager", "agent", "viewer")
