"""Rulesets and evaluation runs in GraphQL (docs/routing.md): `RoutingQuery` and `RoutingMutation`,
merged into the root types by schema/__init__.py.

Thin over domain.routing.rulesets and domain.routing.runs.  Preview is allowed to admins and
managers; saving, activating and applying to admins.  Runs execute in the
background (domain.routing.run_tasks) and are returned at once with their status: finished
when the run ended within SEGMENTA_RUN_WAIT, otherwise RUNNING, and a client polls
`evaluationRun(id)` or subscribes to `evaluationRunProgress`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import select

from segmenta.domain.errors import UserError
from segmenta.domain.routing import rulesets as ruleset_service
from segmenta.domain.routing import runs as run_service
from segmenta.domain.routing.run_plan import RunPlan
from segmenta.dsl.pipeline import check_source
from segmenta.schema.context import Info
from segmenta.schema.enums import RulesetStatus
from segmenta.schema.errors import client_error
from segmenta.schema.ids import decode_id
from segmenta.schema.pagination import (
    AfterArgument,
    Connection,
    FirstArgument,
    counter,
    fetch_page,
    page_size,
    to_connection,
)
from segmenta.schema.payloads import UserErrorType, in_transaction, input_id
from segmenta.schema.permissions import CanManageRules, CanPreviewRules
from segmenta.schema.routing_types import (
    NEWEST_RUNS,
    CheckResult,
    Diagnostic,
    EvaluationRun,
    RulesetType,
    routing_loaders,
)
from segmenta.schema.timestamps import to_storage
from segmenta.storage import models
from segmenta.storage.catalog import load_known

MAX_SOURCE_LENGTH = 200_000
# Strawberry's permission extension takes a parameter called `source`, so the
# resolvers name the `source` argument differently in Python.
SourceArgument = Annotated[
    str, strawberry.argument(name="source", description="The rule file text (at most 200,000 characters).")
]
OptionalSourceArgument = Annotated[
    str | None,
    strawberry.argument(
        name="source",
        description="Unsaved rule file text, instead of a saved ruleset (at most 200,000 characters).",
    ),
]


def _diagnostics(items: Sequence[Any]) -> list[Diagnostic]:
    return [Diagnostic.from_dict(item.to_dict()) for item in items]


@strawberry.type
class RoutingQuery:
    @strawberry.field(description="Saved rulesets, newest first; optionally one name's versions or one status.")
    async def rulesets(
        self,
        info: Info,
        name: Annotated[str | None, strawberry.argument(description="Only the versions of this name.")] = None,
        status: Annotated[RulesetStatus | None, strawberry.argument(description="Only versions in this status.")] = None,
    ) -> list[RulesetType]:
        statement = select(models.RulesetVersion).order_by(models.RulesetVersion.created_at.desc(), models.RulesetVersion.id.desc())
        if name is not None:
            statement = statement.where(models.RulesetVersion.name == name)
        if status is not None:
            statement = statement.where(models.RulesetVersion.status == status.value)
        return [RulesetType.from_row(row) for row in await info.context.db.scalars(statement)]

    @strawberry.field(description="The ruleset version with this ID, or null.")
    async def ruleset(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="A Ruleset ID.")]
    ) -> RulesetType | None:
        row = await routing_loaders(info).ruleset.load(decode_id(id, "Ruleset"))
        return RulesetType.from_row(row) if row is not None else None

    @strawberry.field(description="The ruleset used in real time and by apply, or null.")
    async def active_ruleset(self, info: Info) -> RulesetType | None:
        row = await info.context.db.scalar(select(models.RulesetVersion).where(models.RulesetVersion.status == "active").limit(1))
        return RulesetType.from_row(row) if row is not None else None

    @strawberry.field(
        description="Check a rule file against the database (unknown teams, values never seen); nothing is saved."
    )
    async def check_rules(
        self,
        info: Info,
        source: Annotated[str, strawberry.argument(description="The rule file text (at most 200,000 characters).")],
    ) -> CheckResult:
        if len(source) > MAX_SOURCE_LENGTH:
            raise client_error(f"rule source too long ({len(source)} characters; at most {MAX_SOURCE_LENGTH})")
        # load_known only needs execute/scalars, which the serialised request session provides.
        team_keys, known_values = await load_known(info.context.db)  # type: ignore[arg-type]
        result = check_source(source, known_teams=team_keys, known_values=known_values)
        return CheckResult(ok=result.ok, diagnostics=_diagnostics(result.diagnostics))

    @strawberry.field(description="Evaluation runs of every mode, newest first, paged.")
    async def evaluation_runs(
        self, info: Info, first: FirstArgument = None, after: AfterArgument = None
    ) -> Connection[EvaluationRun]:
        size = page_size(first)
        statement = select(models.EvaluationRun)
        db = info.context.db
        page = await fetch_page(db, statement, NEWEST_RUNS, size, after)
        return to_connection(page, NEWEST_RUNS, EvaluationRun.from_row, counter(db, statement))

    @strawberry.field(description="One run, or null; poll it while its status is RUNNING.")
    async def evaluation_run(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="An EvaluationRun ID.")]
    ) -> EvaluationRun | None:
        row = await info.context.db.scalar(
            select(models.EvaluationRun).where(models.EvaluationRun.id == decode_id(id, "EvaluationRun"))
        )
        return EvaluationRun.from_row(row) if row is not None else None


@strawberry.type(description="The result of saveRuleset or activateRuleset.")
class RulesetPayload:
    ruleset: RulesetType | None = strawberry.field(
        description="The ruleset version; null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why nothing was changed; empty on success.")


@strawberry.type(description="The result of previewRuleset or applyRuleset: the run, finished or still RUNNING.")
class RunPayload:
    run: EvaluationRun | None = strawberry.field(
        description=(
            "The run as committed: finished when it ended within SEGMENTA_RUN_WAIT seconds (default 2), else "
            "RUNNING (follow it with evaluationRunProgress or evaluationRun). Null when userErrors is not empty."
        ),
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why no run was started; empty on success.")


def _source_problem(source: str) -> None:
    if len(source) > MAX_SOURCE_LENGTH:
        raise UserError(
            f"rule source too long ({len(source)} characters; at most {MAX_SOURCE_LENGTH})", field="source"
        )


async def _start_run(
    info: Info, plan: Callable[[], Awaitable[RunPlan]], *, arguments: set[str]
) -> RunPayload:
    """Validate (a user error writes nothing), commit the run as RUNNING, execute it in the
    background and return it: finished when it ended within the launcher's wait."""
    session = info.context.session
    plans: list[RunPlan] = []

    async def work() -> models.EvaluationRun:
        plans.append(await plan())
        return await run_service.start_run(session, plans[0])

    row, errors = await in_transaction(info, work, arguments=arguments)
    if row is None:
        return RunPayload(run=None, user_errors=errors)
    launcher = info.context.runs
    if launcher is None:
        row = await run_service.execute_run(session, plans[0], row.id)
    else:
        await launcher.launch(plans[0], row.id)
        # The run's own task wrote it in another session: read what is committed now.
        fresh = await session.get(models.EvaluationRun, row.id, populate_existing=True)
        assert fresh is not None
        row = fresh
    session.expunge_all()
    return RunPayload(run=EvaluationRun.from_row(row), user_errors=[])


@strawberry.type
class RoutingMutation:
    @strawberry.mutation(
        permission_classes=[CanManageRules],
        description=(
            "Save a rule file as the next version of `name`: a DRAFT, saved even with errors (see its diagnostics). "
            "Role: admin."
        ),
    )
    async def save_ruleset(
        self,
        info: Info,
        name: Annotated[str, strawberry.argument(description="The ruleset's name; each save adds a version.")],
        rule_source: SourceArgument,
    ) -> RulesetPayload:
        session = info.context.session

        async def work() -> models.RulesetVersion:
            _source_problem(rule_source)
            return await ruleset_service.save_ruleset(session, name, rule_source)

        row, errors = await in_transaction(info, work, arguments={"name", "source"})
        return RulesetPayload(ruleset=RulesetType.from_row(row) if row is not None else None, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanManageRules],
        description=(
            "Make a ruleset version the active one (the previous one is archived); one with errors is refused "
            "(HAS_ERRORS). Does not re-route existing customers: applyRuleset does. Role: admin."
        ),
    )
    async def activate_ruleset(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="A Ruleset ID.")]
    ) -> RulesetPayload:
        session = info.context.session

        async def work() -> models.RulesetVersion:
            return await ruleset_service.activate_ruleset(session, input_id(id, "Ruleset", "id"))

        row, errors = await in_transaction(info, work, arguments={"id"})
        return RulesetPayload(ruleset=RulesetType.from_row(row) if row is not None else None, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanPreviewRules],
        description=(
            "Evaluate a saved ruleset (`id`) or unsaved rules (`source`) for every customer and report what would "
            "change; changes nothing. Roles: admin, manager."
        ),
    )
    async def preview_ruleset(
        self,
        info: Info,
        id: Annotated[
            strawberry.ID | None, strawberry.argument(description="A saved Ruleset ID (or give `source`).")
        ] = None,
        rule_source: OptionalSourceArgument = None,
        as_of: Annotated[
            datetime | None,
            strawberry.argument(
                description="The instant day-based metrics are measured at (without a zone: UTC); default now."
            ),
        ] = None,
    ) -> RunPayload:
        session = info.context.session

        async def plan() -> RunPlan:
            if rule_source is not None:
                _source_problem(rule_source)
            ruleset_id = input_id(id, "Ruleset", "id") if id is not None else None
            return await run_service.plan_run(
                session, "preview", ruleset_id=ruleset_id, source=rule_source, as_of=to_storage(as_of)
            )

        return await _start_run(info, plan, arguments={"id", "source", "as_of"})

    @strawberry.mutation(
        permission_classes=[CanManageRules],
        description=(
            "Route every customer with the ACTIVE ruleset `id`, in one transaction: on failure nothing changes "
            "and the run is FAILED with its error. Role: admin."
        ),
    )
    async def apply_ruleset(
        self,
        info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The ACTIVE ruleset's ID.")],
        as_of: Annotated[
            datetime | None,
            strawberry.argument(
                description="The instant day-based metrics are measured at (without a zone: UTC); default now."
            ),
        ] = None,
    ) -> RunPayload:
        session = info.context.session

        async def plan() -> RunPlan:
            return await run_service.plan_run(
                session, "apply", ruleset_id=input_id(id, "Ruleset", "id"), as_of=to_storage(as_of)
            )

        return await _start_run(info, plan, arguments={"id", "as_of"})
