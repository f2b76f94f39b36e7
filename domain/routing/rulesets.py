"""Rulesets: saved versions of a rule file and their lifecycle (docs/routing.md, 'Rulesets').

``save_ruleset`` stores a new version (draft) with the diagnostics of a full
check against the database (unknown teams, unseen values).  A ruleset with
errors can be saved but never activated or applied.  ``activate_ruleset`` makes
one ruleset the active one and archives the previous; at most one ruleset is
active at any time, also with several server processes (see
:func:`_serialise_activation`).

Like every domain service these functions do not commit: the caller owns the
transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import false, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import validation as v
from segmenta.domain.errors import NotFound, UserError
from segmenta.domain.routing.vocabulary import RULESET_STATUSES
from segmenta.dsl.pipeline import CheckResult, check_source
from segmenta.storage.catalog import load_known
from segmenta.storage.locks import hold_exclusive
from segmenta.storage.models import RulesetVersion, Team, utcnow

MAX_NAME_LENGTH = 200
# Any constant works: it names the one advisory lock that serialises activations.
_ACTIVATION_LOCK_KEY = 0x5E6_AC71


async def check_rules(session: AsyncSession | None, source: str, *, values: bool = True) -> CheckResult:
    """Check a rule file; with a session, also against the database: team keys and,
    when `values`, the values seen in the data (warnings only, but a scan of every
    customer — runs skip it)."""
    if session is None:
        return check_source(source)
    if not values:
        team_keys = set((await session.scalars(select(Team.key))).all())
        return check_source(source, known_teams=team_keys)
    team_keys, known_values = await load_known(session)
    return check_source(source, known_teams=team_keys, known_values=known_values)


def diagnostics_json(result: CheckResult) -> list[dict[str, Any]]:
    return [diagnostic.to_dict() for diagnostic in result.diagnostics]


def _validate_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise UserError("a ruleset needs a name", field="name", code="required")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise UserError(f"a ruleset name has at most {MAX_NAME_LENGTH} characters", field="name")
    return v.storable_text(cleaned, "name")


async def save_ruleset(session: AsyncSession, name: str, source: str) -> RulesetVersion:
    """Store `source` as the next version of ruleset `name` (a draft, possibly with errors)."""
    cleaned = _validate_name(name)
    v.storable_text(source, "source")  # PostgreSQL text cannot hold a NUL
    result = await check_rules(session, source)
    diagnostics = diagnostics_json(result)
    # Two concurrent saves of one name can pick the same version; the unique
    # constraint refuses the second, which then takes the next number.
    for _attempt in range(5):
        latest = await session.scalar(select(func.max(RulesetVersion.version)).where(RulesetVersion.name == cleaned))
        ruleset = RulesetVersion(
            name=cleaned,
            version=(latest or 0) + 1,
            source=source,
            status="draft",
            diagnostics=diagnostics,
            has_errors=not result.ok,
        )
        try:
            async with session.begin_nested():
                session.add(ruleset)
                await session.flush()
        except IntegrityError:
            continue
        return ruleset
    raise UserError(f"could not allocate a version for ruleset {cleaned!r}; try again", field="name", code="conflict")


async def get_ruleset(session: AsyncSession, ruleset_id: int) -> RulesetVersion:
    ruleset = await session.get(RulesetVersion, ruleset_id)
    if ruleset is None:
        raise NotFound("ruleset", ruleset_id, field="id")
    return ruleset


async def list_rulesets(
    session: AsyncSession, *, name: str | None = None, status: str | None = None
) -> Sequence[RulesetVersion]:
    """Rulesets, newest first."""
    statement = select(RulesetVersion).order_by(RulesetVersion.created_at.desc(), RulesetVersion.id.desc())
    if name is not None:
        statement = statement.where(RulesetVersion.name == name)
    if status is not None:
        if status not in RULESET_STATUSES:
            raise UserError(f"unknown ruleset status {status!r}", field="status")
        statement = statement.where(RulesetVersion.status == status)
    return (await session.scalars(statement)).all()


async def active_ruleset(session: AsyncSession) -> RulesetVersion | None:
    return await session.scalar(select(RulesetVersion).where(RulesetVersion.status == "active").order_by(RulesetVersion.id).limit(1))


async def _serialise_activation(session: AsyncSession) -> None:
    """Make concurrent activations take turns (see storage.locks.hold_exclusive)."""
    await hold_exclusive(
        session, _ACTIVATION_LOCK_KEY, sqlite_first_write=update(RulesetVersion).where(false()).values(status=RulesetVersion.status)
    )


async def refresh_diagnostics(session: AsyncSession, ruleset: RulesetVersion) -> CheckResult:
    """Re-check a saved ruleset against the database as it is now (teams may have gone)."""
    result = await check_rules(session, ruleset.source)
    ruleset.diagnostics = diagnostics_json(result)
    ruleset.has_errors = not result.ok
    return result


async def activate_ruleset(session: AsyncSession, ruleset_id: int) -> RulesetVersion:
    """Make a ruleset the active one; the previously active one is archived."""
    await _serialise_activation(session)
    ruleset = await get_ruleset(session, ruleset_id)
    await session.refresh(ruleset)
    result = await refresh_diagnostics(session, ruleset)
    if not result.ok:
        errors = [d for d in result.diagnostics if d.is_error]
        first = errors[0]
        raise UserError(
            f"ruleset {ruleset.name} v{ruleset.version} has {len(errors)} error(s) and cannot be activated; "
            f"first at line {first.line}, column {first.column}: {first.message}",
            field="id",
            code="has_errors",
        )
    if ruleset.status == "active":
        await session.flush()
        return ruleset
    now = utcnow()
    await session.execute(
        update(RulesetVersion)
        .where(RulesetVersion.status == "active", RulesetVersion.id != ruleset.id)
        .values(status="archived", archived_at=now)
        .execution_options(synchronize_session="fetch")
    )
    ruleset.status = "active"
    ruleset.activated_at = now
    ruleset.archived_at = None
    await session.flush()
    return ruleset
