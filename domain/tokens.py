"""API tokens: created once in plaintext, stored only as a SHA-256 hash.

A token is 32 random bytes (``secrets.token_urlsafe``) behind the prefix ``sgm_``.
Looking it up by its hash needs no constant-time comparison: the hash of a guess
reveals nothing about stored hashes.  ``authenticate`` answers None for every kind
of failure alike (malformed, unknown, revoked, agent without an active employee).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import validation as v
from domain.errors import NotFound, UserError
from storage.models import ApiToken, Employee, utcnow

ROLES = ("admin", "manager", "agent", "viewer")
TOKEN_PREFIX = "sgm_"
_RANDOM_BYTES = 32
# Generous bound on what authenticate bothers hashing; real tokens are 47 characters.
_MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class Principal:
    """Who a request acts as."""

    token_id: int
    role: str
    employee_id: int | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(
    session: AsyncSession, role: str, employee_email: str | None = None, label: str | None = None
) -> str:
    """Store a new token and return its plaintext (shown once).

    Agent tokens must name an active employee; other roles may name one too.
    """
    checked_role = v.required_word(role, "role", ROLES)
    checked_label = v.text(label, "label", max_length=v.column_length(ApiToken, "label"))
    email = v.email(employee_email, "employee_email", max_length=v.column_length(Employee, "email"))
    if checked_role == "agent" and email is None:
        raise UserError("an agent token must be bound to an employee (--employee EMAIL)", field="employee_email",
                        code="required")
    employee_id: int | None = None
    if email is not None:
        employee = (await session.execute(select(Employee).where(Employee.email == email))).scalar_one_or_none()
        if employee is None:
            raise NotFound("employee", email, field="employee_email")
        if not employee.active:
            raise UserError(f"employee {email!r} is not active", field="employee_email")
        employee_id = employee.id

    token = TOKEN_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)
    session.add(ApiToken(token_hash=hash_token(token), role=checked_role, employee_id=employee_id, label=checked_label))
    await session.flush()
    return token


async def authenticate(session: AsyncSession, token: object) -> Principal | None:
    if not isinstance(token, str):
        return None
    candidate = token.strip()
    if not candidate.startswith(TOKEN_PREFIX) or len(candidate) > _MAX_TOKEN_LENGTH:
        return None
    row = (
        await session.execute(
            select(ApiToken.id, ApiToken.role, ApiToken.employee_id, Employee.active)
            .outerjoin(Employee, Employee.id == ApiToken.employee_id)
            .where(ApiToken.token_hash == hash_token(candidate), ApiToken.revoked_at.is_(None))
        )
    ).first()
    if row is None or row.role not in ROLES:
        return None
    if row.role == "agent" and (row.employee_id is None or not row.active):
        return None
    return Principal(token_id=row.id, role=row.role, employee_id=row.employee_id)


async def revoke_token(session: AsyncSession, token_id: int) -> None:
    """Revoke a token; revoking twice is harmless."""
    token = await session.get(ApiToken, v.identifier(token_id, "token_id"))
    if token is None:
        raise NotFound("token", token_id, field="token_id")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    await session.flush()
