"""domain.access.tokens: hashed storage, roles, agent binding, authentication."""

from __future__ import annotations

import hashlib
from dataclasses import fields
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.access.tokens import (
    MAX_LIFETIME,
    OPERATOR,
    ROLES,
    Principal,
    PrincipalCache,
    TokenInfo,
    authenticate,
    cache_seconds,
    create_token,
    expiry,
    hash_token,
    issue_token,
    list_tokens,
    parse_duration,
    principals,
    recheck,
    recheck_interval,
    revoke_token,
)
from segmenta.domain.errors import NotFound, UserError
from segmenta.domain.staff.teams import create_employee, update_employee
from segmenta.storage.models import ApiToken, utcnow
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
    revoked = await revoke_token(session, OPERATOR, principal.token_id)
    assert revoked.id == principal.token_id and revoked.revoked_at is not None
    assert await authenticate(session, token) is None
    assert await recheck(session, principal) is None


async def test_revoking_twice_or_an_unknown_token_is_a_clear_error(session: AsyncSession) -> None:
    token = await create_token(session, "viewer")
    principal = await authenticate(session, token)
    assert principal is not None
    await revoke_token(session, OPERATOR, principal.token_id)
    before = await database_snapshot(session)
    with pytest.raises(UserError) as twice:
        await revoke_token(session, OPERATOR, principal.token_id)
    assert (twice.value.code, twice.value.field) == ("already_revoked", "token_id")
    assert "already revoked" in twice.value.message
    with pytest.raises(NotFound) as unknown:
        await revoke_token(session, OPERATOR, 999999)
    assert (unknown.value.code, unknown.value.field) == ("not_found", "token_id")
    with pytest.raises(UserError) as malformed:
        await revoke_token(session, OPERATOR, "x")  # type: ignore[arg-type]
    assert malformed.value.field == "token_id"
    assert await database_snapshot(session) == before


@pytest.mark.parametrize("role", ["manager", "agent", "viewer", None, "ADMIN"])
async def test_only_an_admin_manages_tokens(session: AsyncSession, role: str | None) -> None:
    token = await create_token(session, "viewer")
    principal = await authenticate(session, token)
    assert principal is not None
    before = await database_snapshot(session)
    for attempt in (
        lambda: issue_token(session, role, "admin"),
        lambda: list_tokens(session, role),
        lambda: revoke_token(session, role, principal.token_id),
    ):
        with pytest.raises(UserError) as refused:
            await attempt()
        assert refused.value.code == "forbidden"
    assert await database_snapshot(session) == before
    assert await authenticate(session, token) is not None


async def test_listing_shows_everything_but_the_secret(session: AsyncSession) -> None:
    employee = await create_employee(session, {"name": "Agent", "email": "agent@example.com"})
    first = await issue_token(session, "admin", "agent", employee_email="agent@example.com", label="desk")
    later = utcnow() + timedelta(days=30)
    second = await issue_token(session, "admin", "viewer", expires_at=later)
    await revoke_token(session, "admin", second.token.id)
    listed = await list_tokens(session, "admin")
    assert [item.id for item in listed] == [first.token.id, second.token.id]
    assert (listed[0].role, listed[0].employee_id, listed[0].employee_email, listed[0].label) == (
        "agent", employee.id, "agent@example.com", "desk"
    )
    assert listed[0].expires_at is None and listed[0].revoked_at is None
    assert listed[1].expires_at == later and listed[1].revoked_at is not None
    shown = repr(listed)
    for issued in (first, second):
        assert issued.secret not in shown and hash_token(issued.secret) not in shown
    assert "token_hash" not in {f.name for f in fields(TokenInfo)}


async def test_expired_tokens_no_longer_authenticate(session: AsyncSession) -> None:
    token = await create_token(session, "admin", expires_at=utcnow() + timedelta(hours=1))
    principal = await authenticate(session, token)
    assert principal is not None
    row = (await session.execute(select(ApiToken))).scalar_one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    await session.flush()
    assert await authenticate(session, token) is None
    assert await recheck(session, principal) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2)),
     ("90m", timedelta(minutes=90)), (" 1D12h ", timedelta(days=1, hours=12))],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "  ", "30", "d", "30 d", "-5d", "0d", "0h0m", "1y", "1.5d", "9999999d",
                                 "3661d", "5d" * 30, None, 30])
def test_bad_durations_are_clear_errors(bad: object) -> None:
    with pytest.raises(UserError) as raised:
        parse_duration(bad, "expires_in")
    assert raised.value.field == "expires_in"
    assert raised.value.code in ("invalid", "required")
    assert len(raised.value.message) < 200


@given(st.text(max_size=60))
def test_any_text_is_a_duration_or_a_clear_error(text: str) -> None:
    try:
        lifetime = parse_duration(text)
    except UserError as error:
        assert error.field == "expires_in"
        assert len(error.message) < 200
    else:
        assert timedelta(0) < lifetime <= MAX_LIFETIME


def test_expiry_takes_a_time_or_a_duration() -> None:
    now = datetime(2030, 1, 1, 12, 0)
    assert expiry(None, None, now=now) is None
    assert expiry(None, "1d", now=now) == datetime(2030, 1, 2, 12, 0)
    aware = datetime(2030, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    with pytest.raises(UserError) as past:
        expiry(aware, None, now=now)  # 12:00 UTC: not in the future
    assert past.value.field == "expires_at"
    assert expiry(datetime(2030, 1, 1, 13, 0), None, now=now) == datetime(2030, 1, 1, 13, 0)
    with pytest.raises(UserError) as both:
        expiry(datetime(2031, 1, 1), "1d", now=now)
    assert both.value.field == "expires_in"
    with pytest.raises(UserError):
        expiry(datetime(2045, 1, 1), None, now=now)


async def test_issuing_an_expiry_in_the_past_writes_nothing(session: AsyncSession) -> None:
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await issue_token(session, "admin", "viewer", expires_at=utcnow() - timedelta(minutes=1))
    assert raised.value.field == "expires_at"
    assert await database_snapshot(session) == before


@pytest.mark.parametrize(("raw", "expected"), [(None, 5.0), ("", 5.0), ("0", 0.0), ("2.5", 2.5), ("3600", 3600.0)])
def test_recheck_interval_setting(raw: str | None, expected: float) -> None:
    assert recheck_interval({} if raw is None else {"SEGMENTA_TOKEN_RECHECK": raw}) == expected


@pytest.mark.parametrize("raw", ["-1", "soon", "nan", "inf", "3601"])
def test_bad_recheck_interval_names_the_setting(raw: str) -> None:
    with pytest.raises(UserError) as raised:
        recheck_interval({"SEGMENTA_TOKEN_RECHECK": raw})
    assert "SEGMENTA_TOKEN_RECHECK" in raised.value.message and repr(raw) in raised.value.message


def test_roles_are_the_spec_roles() -> None:
    assert ROLES == ("admin", "manager", "agent", "viewer")


# -- the last use ---------------------------------------------------------------------------------


def _token_updates(statements: list[str]) -> int:
    return sum(1 for statement in statements if statement.lstrip().upper().startswith("UPDATE API_TOKENS"))


async def test_authenticating_writes_the_last_use_at_most_once_a_minute(session: AsyncSession) -> None:
    from tests.schema.test_statement_count import counted_statements

    token = await create_token(session, "viewer")
    await session.commit()
    engine = session.bind
    with counted_statements(engine) as statements:  # type: ignore[arg-type]
        for _ in range(50):
            assert await authenticate(session, token) is not None
            await session.commit()
    # 50 authentications in the same minute: one write, the first; the other 49 only read.
    assert _token_updates(statements) == 1
    row = await session.scalar(select(ApiToken))
    assert row is not None and row.last_used_at is not None
    assert utcnow() - row.last_used_at < timedelta(seconds=5)

    # A minute later the next use is written again, once.
    row.last_used_at = utcnow() - timedelta(seconds=61)
    await session.commit()
    with counted_statements(engine) as statements:  # type: ignore[arg-type]
        for _ in range(5):
            assert await authenticate(session, token) is not None
            await session.commit()
    assert _token_updates(statements) == 1
    listed = await list_tokens(session, OPERATOR)
    assert listed[0].last_used_at is not None and utcnow() - listed[0].last_used_at < timedelta(seconds=5)


async def test_a_busy_database_never_fails_authentication(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from segmenta.domain.access import tokens as tokens_module
    from segmenta.domain.errors import Busy

    token = await create_token(session, "viewer")
    await session.commit()
    calls = 0
    real_execute = session.execute

    async def busy_on_update(statement, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        if getattr(statement, "is_update", False):
            calls += 1
            raise Busy("the database is busy")
        return await real_execute(statement, *args, **kwargs)

    monkeypatch.setattr(session, "execute", busy_on_update)
    monkeypatch.setattr(tokens_module, "_failed_notes", {})
    principal = await authenticate(session, token)
    assert principal is not None and principal.role == "viewer"
    # Given up for a minute in this process: the next authentications do not try again.
    assert await authenticate(session, token) is not None
    assert calls == 1
    monkeypatch.undo()
    await session.commit()
    row = await session.scalar(select(ApiToken))
    assert row is not None and row.last_used_at is None


# -- the per-process principal cache (SEGMENTA_TOKEN_CACHE) -------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(None, 5.0), ("", 5.0), ("0", 0.0), ("1.5", 1.5), ("60", 60.0)])
def test_token_cache_setting(raw: str | None, expected: float) -> None:
    assert cache_seconds({} if raw is None else {"SEGMENTA_TOKEN_CACHE": raw}) == expected


@pytest.mark.parametrize("raw", ["-1", "soon", "nan", "61"])
def test_bad_token_cache_setting_names_it(raw: str) -> None:
    with pytest.raises(UserError) as raised:
        cache_seconds({"SEGMENTA_TOKEN_CACHE": raw})
    assert "SEGMENTA_TOKEN_CACHE" in raised.value.message


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from segmenta.domain.access import tokens as tokens_module

    clock = Clock()
    monkeypatch.setattr(tokens_module.time, "monotonic", clock)
    return clock


TOKEN = "sgm_" + "a" * 43


def test_a_cached_principal_lives_at_most_the_ttl(clock: Clock) -> None:
    cache = PrincipalCache(ttl=5)
    principal = Principal(token_id=1, role="viewer", employee_id=None)
    cache.store(TOKEN, principal)
    assert cache.lookup(TOKEN) == principal and cache.lookup(f" {TOKEN} ") == principal
    clock.now += 4.9
    assert cache.lookup(TOKEN) == principal
    clock.now += 0.2
    assert cache.lookup(TOKEN) is None
    for bad in (None, 42, "", "sgm_other", "x" * 5000):
        assert cache.lookup(bad) is None


def test_a_cached_principal_never_outlives_its_token(clock: Clock) -> None:
    cache = PrincipalCache(ttl=5)
    cache.store(TOKEN, Principal(token_id=1, role="viewer", employee_id=None, expires_at=utcnow() + timedelta(seconds=1)))
    assert cache.lookup(TOKEN) is not None
    clock.now += 1.5
    assert cache.lookup(TOKEN) is None
    cache.store(TOKEN, Principal(token_id=1, role="viewer", employee_id=None, expires_at=utcnow() - timedelta(seconds=1)))
    assert cache.lookup(TOKEN) is None


def test_forgetting_a_token_or_an_employee_is_immediate_and_keeps_it_out_for_the_ttl(clock: Clock) -> None:
    cache = PrincipalCache(ttl=5)
    viewer = Principal(token_id=1, role="viewer", employee_id=None)
    agent = Principal(token_id=2, role="agent", employee_id=7)
    cache.store(TOKEN, viewer)
    cache.store(TOKEN + "b", agent)
    cache.forget(1)
    cache.forget_employee(7)
    assert cache.lookup(TOKEN) is None and cache.lookup(TOKEN + "b") is None
    # A lookup that read the row just before the revocation committed cannot put it back.
    cache.store(TOKEN, viewer)
    cache.store(TOKEN + "b", agent)
    assert cache.lookup(TOKEN) is None and cache.lookup(TOKEN + "b") is None
    clock.now += 6
    cache.store(TOKEN, viewer)
    assert cache.lookup(TOKEN) == viewer


def test_the_cache_is_bounded_and_off_at_zero(clock: Clock) -> None:
    cache = PrincipalCache(ttl=5, max_entries=3)
    for index in range(10):
        cache.store(f"{TOKEN}{index}", Principal(token_id=index, role="viewer", employee_id=None))
    assert [cache.lookup(f"{TOKEN}{index}") is not None for index in range(10)] == [False] * 7 + [True] * 3
    off = PrincipalCache(ttl=0)
    off.store(TOKEN, Principal(token_id=1, role="viewer", employee_id=None))
    assert off.lookup(TOKEN) is None


async def test_revoking_and_deactivating_clear_this_process_cache(session: AsyncSession) -> None:
    employee = await create_employee(session, {"name": "Agent", "email": "cached@example.com"})
    agent_token = await create_token(session, "agent", employee_email="cached@example.com")
    viewer_token = await create_token(session, "viewer")
    for token in (agent_token, viewer_token):
        found = await authenticate(session, token)
        assert found is not None
        principals.store(token, found)
    try:
        viewer = principals.lookup(viewer_token)
        assert viewer is not None and principals.lookup(agent_token) is not None
        await revoke_token(session, OPERATOR, viewer.token_id)
        await update_employee(session, employee.id, {"active": False})
        assert principals.lookup(viewer_token) is None and principals.lookup(agent_token) is None
    finally:
        principals.clear()
