"""API tokens: created once in plaintext, stored only as a SHA-256 hash.

A token is 32 random bytes (``secrets.token_urlsafe``) behind the prefix ``sgm_``.
Looking it up by its hash needs no constant-time comparison: the hash of a guess
reveals nothing about stored hashes.  ``authenticate`` answers None for every kind
of failure alike (malformed, unknown, revoked, expired, agent without an active
employee).

Managing tokens (issuing, listing, revoking) is an administrator's job: those
functions take the acting role and refuse every other.  The command line acts as
``OPERATOR``: whoever holds the database URL already holds every token's row.
No function here ever returns a secret or a hash except ``issue_token``, once.

Settings: ``SEGMENTA_TOKEN_RECHECK`` — seconds between two checks that a long-lived
connection's token (a websocket) is still valid while it delivers subscription events;
``SEGMENTA_TOKEN_CACHE`` — seconds a server process may answer a token from `principals`
(`PrincipalCache`) without reading its row again.  ``authenticate`` itself always reads the row.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import validation as v
from segmenta.domain.errors import NotFound, Unavailable, UserError
from segmenta.domain.settings import number_setting
from segmenta.storage.models import ApiToken, Employee, utcnow

ROLES = ("admin", "manager", "agent", "viewer")
TOKEN_PREFIX = "sgm_"
_RANDOM_BYTES = 32
# Generous bound on what authenticate bothers hashing; real tokens are 47 characters.
_MAX_TOKEN_LENGTH = 200

MANAGING_ROLE = "admin"
# The command line: it runs with the database's own credentials.
OPERATOR = MANAGING_ROLE
FORBIDDEN = "forbidden"
ALREADY_REVOKED = "already_revoked"

# Durations: one or more NUMBER UNIT parts, e.g. `30d`, `12h`, `1d12h`, `90m`.
_DURATION_PART = re.compile(r"([0-9]{1,6})([wdhm])")
_DURATION_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
_MAX_DURATION_TEXT = 40
# Far enough for any real credential, near enough that the date stays a valid datetime everywhere.
MAX_LIFETIME = timedelta(days=3660)

# A token's last use is stored to the minute: authenticating writes its row at most once a minute,
# not on every request (docs/security.md, Tokens).
LAST_USED_GRANULARITY = timedelta(minutes=1)
# Token id -> time.monotonic() of this process's last failed attempt to store a use.
_failed_notes: dict[int, float] = {}
logger = logging.getLogger(__name__)

RECHECK_SETTING = "SEGMENTA_TOKEN_RECHECK"
DEFAULT_RECHECK = 5.0
MAX_RECHECK = 3600.0

CACHE_SETTING = "SEGMENTA_TOKEN_CACHE"
DEFAULT_CACHE_SECONDS = 5.0
MAX_CACHE_SECONDS = 60.0
# Far more tokens than a deployment uses at once; past it the oldest entries go.
MAX_CACHED_TOKENS = 10_000


@dataclass(frozen=True)
class Principal:
    """Who a request acts as.  `checked_at` (time.monotonic) is when the token was last found valid."""

    token_id: int
    role: str
    employee_id: int | None
    checked_at: float = field(default=0.0, compare=False)
    # The token's expiry (naive UTC), so a cached principal never outlives it.
    expires_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a stored token: never its secret nor its hash."""

    id: int
    role: str
    employee_id: int | None
    employee_email: str | None
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    # When it last authenticated, to within LAST_USED_GRANULARITY; None: not used yet.
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class NewToken:
    """A token just issued: `secret` is the plaintext, shown this once and stored nowhere."""

    token: TokenInfo
    secret: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def ensure_may_manage_tokens(acting_role: str | None) -> None:
    """Refuse (code `forbidden`) anyone but an administrator."""
    if acting_role != MANAGING_ROLE:
        raise UserError(f"forbidden: managing API tokens needs the role {MANAGING_ROLE}", code=FORBIDDEN)


def parse_duration(text: object, field_name: str = "expires_in") -> timedelta:
    """A lifetime such as `30d`, `12h`, `2w`, `90m` or `1d12h`: positive, at most MAX_LIFETIME."""
    if not isinstance(text, str) or not text.strip():
        raise UserError("give a duration such as 30d, 12h, 2w or 90m", field=field_name, code="required")
    compact = text.strip().lower()
    # Quoted, escaped and cut: the message stays short and printable whatever was sent.
    quoted = repr(text)
    shown = quoted if len(quoted) <= _MAX_DURATION_TEXT else quoted[:_MAX_DURATION_TEXT] + "…"
    if len(compact) > _MAX_DURATION_TEXT or not re.fullmatch(f"(?:{_DURATION_PART.pattern})+", compact):
        raise UserError(
            f"{shown} is not a duration: use NUMBER and a unit w, d, h or m, e.g. 30d, 12h, 1d12h",
            field=field_name,
        )
    total = sum((int(count) * _DURATION_UNITS[unit] for count, unit in _DURATION_PART.findall(compact)), timedelta())
    if total <= timedelta(0):
        raise UserError(f"{shown} is not a positive duration", field=field_name)
    if total > MAX_LIFETIME:
        raise UserError(f"{shown} is longer than {MAX_LIFETIME.days} days", field=field_name)
    return total


def expiry(
    expires_at: datetime | None = None,
    expires_in: str | None = None,
    *,
    now: datetime | None = None,
    at_field: str = "expires_at",
    in_field: str = "expires_in",
) -> datetime | None:
    """The naive-UTC expiry from an absolute time or a duration (at most one of them); None: never."""
    if expires_at is not None and expires_in is not None:
        raise UserError("give an expiry time or a duration, not both", field=in_field)
    current = now or utcnow()
    if expires_in is not None:
        return current + parse_duration(expires_in, in_field)
    if expires_at is None:
        return None
    moment = expires_at.astimezone(UTC).replace(tzinfo=None) if expires_at.tzinfo else expires_at
    if moment <= current:
        raise UserError(f"the expiry {moment.isoformat()}Z is not in the future", field=at_field)
    if moment - current > MAX_LIFETIME:
        raise UserError(f"the expiry is more than {MAX_LIFETIME.days} days away", field=at_field)
    return moment


def _info(row: ApiToken, employee_email: str | None) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        role=row.role,
        employee_id=row.employee_id,
        employee_email=employee_email,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


async def issue_token(
    session: AsyncSession,
    acting_role: str | None,
    role: str,
    employee_email: str | None = None,
    label: str | None = None,
    expires_at: datetime | None = None,
) -> NewToken:
    """Store a new token for an administrator and return it with its plaintext (shown once).

    Agent tokens must name an active employee; other roles may name one too.  `expires_at`
    (naive UTC, from `expiry`) must be in the future; None never expires.
    """
    ensure_may_manage_tokens(acting_role)
    checked_role = v.required_word(role, "role", ROLES)
    checked_label = v.text(label, "label", max_length=v.column_length(ApiToken, "label"))
    email = v.email(employee_email, "employee_email", max_length=v.column_length(Employee, "email"))
    if expires_at is not None:
        expires_at = expiry(expires_at)
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

    secret = TOKEN_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)
    row = ApiToken(
        token_hash=hash_token(secret),
        role=checked_role,
        employee_id=employee_id,
        label=checked_label,
        expires_at=expires_at,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return NewToken(token=_info(row, email), secret=secret)


async def create_token(
    session: AsyncSession,
    role: str,
    employee_email: str | None = None,
    label: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """The operator's shortcut (command line, set-up code): issue a token and return its plaintext."""
    issued = await issue_token(session, OPERATOR, role, employee_email, label, expires_at)
    return issued.secret


async def list_tokens(session: AsyncSession, acting_role: str | None) -> list[TokenInfo]:
    """Every token, oldest first, without secrets or hashes (revoked and expired ones too)."""
    ensure_may_manage_tokens(acting_role)
    rows = await session.execute(
        select(ApiToken, Employee.email).outerjoin(Employee, Employee.id == ApiToken.employee_id).order_by(ApiToken.id)
    )
    return [_info(token, email) for token, email in rows]


async def tokens_by_id(session: AsyncSession, acting_role: str | None, token_ids: list[int]) -> dict[int, TokenInfo]:
    """The tokens with these ids, for an administrator; for every other role none (as if they did not
    exist: `node(id)` answers null rather than telling a non-admin which token ids exist)."""
    if acting_role != MANAGING_ROLE or not token_ids:
        return {}
    rows = await session.execute(
        select(ApiToken, Employee.email)
        .outerjoin(Employee, Employee.id == ApiToken.employee_id)
        .where(ApiToken.id.in_(set(token_ids)))
    )
    return {token.id: _info(token, email) for token, email in rows}


async def revoke_token(session: AsyncSession, acting_role: str | None, token_id: int) -> TokenInfo:
    """Revoke a token; an unknown id is `not_found`, a token already revoked `already_revoked`."""
    ensure_may_manage_tokens(acting_role)
    key = v.identifier(token_id, "token_id")
    row = (
        await session.execute(
            select(ApiToken, Employee.email)
            .outerjoin(Employee, Employee.id == ApiToken.employee_id)
            .where(ApiToken.id == key)
            .with_for_update(of=ApiToken)
        )
    ).first()
    if row is None:
        raise NotFound("token", token_id, field="token_id")
    token, email = row
    if token.revoked_at is not None:
        raise UserError(
            f"token {key} was already revoked at {token.revoked_at.isoformat(timespec='seconds')}Z",
            field="token_id",
            code=ALREADY_REVOKED,
        )
    token.revoked_at = utcnow()
    await session.flush()
    # This process stops answering the token from its cache at once (others within SEGMENTA_TOKEN_CACHE).
    principals.forget(token.id)
    return _info(token, email)


def _valid_now(now: datetime) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (ApiToken.revoked_at.is_(None), or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))


async def authenticate(session: AsyncSession, token: object) -> Principal | None:
    if not isinstance(token, str):
        return None
    candidate = token.strip()
    if not candidate.startswith(TOKEN_PREFIX) or len(candidate) > _MAX_TOKEN_LENGTH:
        return None
    return await _principal(session, ApiToken.token_hash == hash_token(candidate))


async def recheck(session: AsyncSession, principal: Principal) -> Principal | None:
    """The principal again if its token is still valid (not revoked, not expired, agent still active)."""
    return await _principal(session, ApiToken.id == principal.token_id)


async def _principal(session: AsyncSession, which: ColumnElement[bool]) -> Principal | None:
    now = utcnow()
    row = (
        await session.execute(
            select(
                ApiToken.id, ApiToken.role, ApiToken.employee_id, Employee.active, ApiToken.last_used_at,
                ApiToken.expires_at,
            )
            .outerjoin(Employee, Employee.id == ApiToken.employee_id)
            .where(which, *_valid_now(now))
        )
    ).first()
    if row is None or row.role not in ROLES:
        return None
    if row.role == "agent" and (row.employee_id is None or not row.active):
        return None
    if _last_use_is_stale(row.id, row.last_used_at, now):
        await _note_use(session, row.id, now)
    return Principal(
        token_id=row.id, role=row.role, employee_id=row.employee_id, checked_at=time.monotonic(),
        expires_at=row.expires_at,
    )


def _last_use_is_stale(token_id: int, last_used_at: datetime | None, now: datetime) -> bool:
    """Whether this use should be written: the stored one is a minute old or more (read with the token,
    so a fresh one costs no statement), and this process did not fail to write it in the last minute."""
    if last_used_at is not None and now - last_used_at < LAST_USED_GRANULARITY:
        return False
    failed_at = _failed_notes.get(token_id)
    return failed_at is None or time.monotonic() - failed_at >= LAST_USED_GRANULARITY.total_seconds()


async def _note_use(session: AsyncSession, token_id: int, now: datetime) -> None:
    """Store `now` as the token's last use, best effort: in a savepoint, and only if no one stored a use
    within the minute meanwhile (concurrent requests, other processes), so the row is written at most
    about once a minute per token.  A write that cannot get its lock (`Busy`, `TimedOut`: an apply
    holding SQLite's write lock) is given up, never failing the request it authenticates; this
    process then leaves that token's last use alone for a minute."""
    statement = (
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_GRANULARITY),
        )
        .values(last_used_at=now)
    )
    try:
        async with session.begin_nested():
            await session.execute(statement)
    except Unavailable:
        _failed_notes[token_id] = time.monotonic()
        logger.info("the last use of token %s was not recorded: the database was busy", token_id)
    else:
        _failed_notes.pop(token_id, None)


def recheck_interval(environ: Mapping[str, str] | None = None) -> float:
    """Seconds between two checks of a websocket's token while events flow (SEGMENTA_TOKEN_RECHECK)."""
    return number_setting(RECHECK_SETTING, DEFAULT_RECHECK, minimum=0, maximum=MAX_RECHECK, environ=environ)


def cache_seconds(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a server process answers a token from its cache (SEGMENTA_TOKEN_CACHE; 0: never)."""
    return number_setting(CACHE_SETTING, DEFAULT_CACHE_SECONDS, minimum=0, maximum=MAX_CACHE_SECONDS, environ=environ)


class PrincipalCache:
    """The principals of tokens found valid in the last `ttl` seconds, by token hash, per process.

    A hit costs no statement.  What a hit may miss is bounded by `ttl`: a token revoked, expired or
    whose agent was deactivated by another process (or by the command line) still authenticates
    here for at most `ttl` seconds; `forget` (called by `revoke_token` and when an employee is
    deactivated) ends it in this process at once, and keeps the token out of the cache for `ttl`
    seconds, so a lookup that read the row just before the revocation committed cannot put it
    back.  An entry never outlives the token's expiry.  Failures are never cached: an unknown
    token reads the database every time, as it would without the cache.
    The last use (`lastUsedAt`) is still written to the minute: a miss, at least every `ttl`
    seconds per token and process, checks and writes it as before."""

    def __init__(self, ttl: float = DEFAULT_CACHE_SECONDS, max_entries: int = MAX_CACHED_TOKENS) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        # token hash -> (principal, time.monotonic() until which it may be answered)
        self._entries: dict[str, tuple[Principal, float]] = {}
        # token id / employee id -> time.monotonic() when it was forgotten
        self._forgotten_tokens: dict[int, float] = {}
        self._forgotten_employees: dict[int, float] = {}

    def lookup(self, token: object) -> Principal | None:
        key = _cache_key(token)
        entry = self._entries.get(key) if key is not None else None
        if entry is None:
            return None
        principal, until = entry
        if time.monotonic() >= until:
            del self._entries[key]  # type: ignore[arg-type]
            return None
        return principal

    def store(self, token: object, principal: Principal) -> None:
        key = _cache_key(token)
        if key is None or self.ttl <= 0:
            return
        now = time.monotonic()
        if self._recently(self._forgotten_tokens, principal.token_id, now) or (
            principal.employee_id is not None and self._recently(self._forgotten_employees, principal.employee_id, now)
        ):
            return
        until = now + self.ttl
        if principal.expires_at is not None:
            until = min(until, now + (principal.expires_at - utcnow()).total_seconds())
        if until <= now:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (principal, until)

    def forget(self, token_id: int) -> None:
        """Stop answering this token from the cache (it was just revoked)."""
        self._forgotten_tokens[token_id] = time.monotonic()
        self._drop(lambda principal: principal.token_id == token_id)

    def forget_employee(self, employee_id: int) -> None:
        """Stop answering the tokens bound to this employee from the cache (they were just deactivated)."""
        self._forgotten_employees[employee_id] = time.monotonic()
        self._drop(lambda principal: principal.employee_id == employee_id)

    def clear(self) -> None:
        self._entries.clear()
        self._forgotten_tokens.clear()
        self._forgotten_employees.clear()

    def _drop(self, which: Callable[[Principal], bool]) -> None:
        for key in [key for key, (principal, _) in self._entries.items() if which(principal)]:
            del self._entries[key]

    def _recently(self, forgotten: dict[int, float], key: int, now: float) -> bool:
        at = forgotten.get(key)
        if at is None:
            return False
        if now - at < self.ttl:
            return True
        del forgotten[key]
        return False


def _cache_key(token: object) -> str | None:
    if not isinstance(token, str):
        return None
    candidate = token.strip()
    if not candidate.startswith(TOKEN_PREFIX) or len(candidate) > _MAX_TOKEN_LENGTH:
        return None
    return hash_token(candidate)


# This process's cache; server.py sets its `ttl` from SEGMENTA_TOKEN_CACHE when it builds the app.
principals = PrincipalCache()
