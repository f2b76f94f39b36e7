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
from enum import Enum
from typing import Annotated, Any

import strawberry
from sqlalchemy import select
from strawberry.dataloader import DataLoader

from segmenta.domain.routing import realtime_summary
from segmenta.domain.routing import rulesets as ruleset_service
from segmenta.domain.routing import runs as run_service
from segmenta.dsl.pipeline import check_source
from segmenta.schema.context import Info
from segmenta.schema.enums import to_enum
from segmenta.schema.ids import decode_id, encode_id
from segmenta.schema.loaders import restricted
from segmenta.schema.pagination import Connection, Ordering, counter, fetch_page, page_size, to_connection
from segmenta.schema.payloads import UserError, in_transaction, input_id
from segmenta.schema.permissions import CanManageRules, CanPreviewRules, scope
from segmenta.schema.timestamps import to_api, to_storage
from segmenta.schema.types import Customer, Segment, Team, TeamAndManagerMove
from segmenta.storage import models
from segmenta.storage.catalog import load_known

MAX_SOURCE_LENGTH = 200_000
# Strawberry's permission extension takes a parameter called `source`, so the
# resolvers name the `source` argument differently in Python.
SourceArgument = Annotated[str, strawberry.argument(name="source", description="The rule file text.")]
OptionalSourceArgument = Annotated[
    str | None, strawberry.argument(name="source", description="Unsaved rule file text (instead of `id`).")
]


@strawberry.enum(description="DRAFT when saved, ACTIVE when activated (one at a time), ARCHIVED when replaced.")
class RulesetStatus(Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


@strawberry.enum
class RunMode(Enum):
    PREVIEW = "preview"
    APPLY = "apply"
    REALTIME = "realtime"


@strawberry.enum(description="A run is RUNNING until it SUCCEEDED or FAILED (then `error` says why).")
class RunStatus(Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@strawberry.enum
class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@strawberry.type(description="A located message about a rule file; lines and columns are 1-based, in characters.")
class Diagnostic:
    severity: Severity | None
    code: str
    message: str
    line: int
    column: int
    end_line: int
    end_column: int
    hint: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnostic:
        return cls(
            severity=to_enum(Severity, data.get("severity")),
            code=str(data.get("code", "")),
            message=str(data.get("message", "")),
            line=int(data.get("line", 0)),
            column=int(data.get("column", 0)),
            end_line=int(data.get("end_line", 0)),
            end_column=int(data.get("end_column", 0)),
            hint=data.get("hint"),
        )


@strawberry.type
class CheckResult:
    ok: bool = strawberry.field(description="True when no diagnostic is an error.")
    diagnostics: list[Diagnostic]


@strawberry.type(description="A saved version of a rule file.")
class Ruleset:
    id: strawberry.ID
    name: str
    version: int
    source: str
    status: RulesetStatus | None
    has_errors: bool
    diagnostics: list[Diagnostic]
    created_at: datetime | None
    activated_at: datetime | None
    archived_at: datetime | None

    @classmethod
    def from_row(cls, row: models.Ruleset) -> Ruleset:
        return cls(
            id=strawberry.ID(encode_id("Ruleset", row.id)),
            name=row.name,
            version=row.version,
            source=row.source,
            status=to_enum(RulesetStatus, row.status),
            has_errors=row.has_errors,
            diagnostics=[Diagnostic.from_dict(item) for item in row.diagnostics or []],
            created_at=to_api(row.created_at),
            activated_at=to_api(row.activated_at),
            archived_at=to_api(row.archived_at),
        )


class RoutingLoaders:
    """Per-request loaders of the objects a run summary names by key (one query per kind)."""

    def __init__(self, info: Info) -> None:
        db = info.context.db

        async def teams(keys: list[str]) -> list[models.Team | None]:
            rows = {row.key: row for row in await db.scalars(select(models.Team).where(models.Team.key.in_(set(keys))))}
            return [rows.get(key) for key in keys]

        async def segments(keys: list[str]) -> list[models.Segment | None]:
            statement = select(models.Segment).where(models.Segment.key.in_(set(keys)))
            rows = {row.key: row for row in await db.scalars(statement)}
            return [rows.get(key) for key in keys]

        async def rulesets(keys: list[int]) -> list[models.Ruleset | None]:
            statement = select(models.Ruleset).where(models.Ruleset.id.in_(set(keys)))
            rows = {row.id: row for row in await db.scalars(statement)}
            return [rows.get(key) for key in keys]

        async def realtime_summaries(run_ids: list[int]) -> list[dict[str, Any]]:
            async with db.exclusive() as session:
                summaries = await realtime_summary.realtime_summaries(session, run_ids)
            return [summaries[run_id] for run_id in run_ids]

        self.team_by_key: DataLoader[str, models.Team | None] = DataLoader(teams)
        self.realtime_summary: DataLoader[int, dict[str, Any]] = DataLoader(realtime_summaries)
        self.segment_by_key: DataLoader[str, models.Segment | None] = DataLoader(segments)
        self.ruleset: DataLoader[int, models.Ruleset | None] = DataLoader(rulesets)

    @staticmethod
    def of(info: Info) -> RoutingLoaders:
        loaders = getattr(info.context, "routing_loaders", None)
        if loaders is None:
            loaders = RoutingLoaders(info)
            info.context.routing_loaders = loaders
        return loaders


async def _team_by_key(info: Info, key: str | None) -> Team | None:
    if key is None:
        return None
    row = await RoutingLoaders.of(info).team_by_key.load(key)
    return Team.from_row(row) if row is not None else None


@strawberry.type
class RunTeamCount:
    team_key: str
    count: int

    @strawberry.field(description="The team, or null when it has been deleted since the run.")
    async def team(self, info: Info) -> Team | None:
        return await _team_by_key(info, self.team_key)


@strawberry.type
class RuleHit:
    label: str = strawberry.field(description="The rule's label, or `line N` for an unlabelled rule.")
    count: int = strawberry.field(description="Customers whose team this rule decided.")


@strawberry.type
class SegmentCount:
    segment_key: str
    count: int

    @strawberry.field
    async def segment(self, info: Info) -> Segment | None:
        row = await RoutingLoaders.of(info).segment_by_key.load(self.segment_key)
        return Segment.from_row(row) if row is not None else None


@strawberry.type
class TagCount:
    tag: str
    count: int


@strawberry.type(description="Customers moved from one team to another (null: no team).")
class TeamMove:
    from_key: str | None
    to_key: str | None
    count: int

    @strawberry.field(name="from")
    async def from_team(self, info: Info) -> Team | None:
        return await _team_by_key(info, self.from_key)

    @strawberry.field(name="to")
    async def to_team(self, info: Info) -> Team | None:
        return await _team_by_key(info, self.to_key)


@strawberry.type(description="The figures of a run (empty while it is RUNNING or when it FAILED).")
class RunSummary:
    evaluated: int = strawberry.field(description="Customers evaluated.")
    changed: int = strawberry.field(
        description="Customers whose team, manager, segments or tags change (a locked one only by segments and tags)."
    )
    unmatched: int = strawberry.field(description="Customers no team rule matched (they are left without a team).")
    locked: int = strawberry.field(description="Customers with a locked assignment (team and manager kept).")
    team_counts: list[RunTeamCount] = strawberry.field(description="Customers per team after the run.")
    rule_hits: list[RuleHit] = strawberry.field(description="Customers per deciding team rule, every team rule listed.")
    segment_counts: list[SegmentCount] = strawberry.field(description="Members per segment the rules maintain.")
    tag_counts: list[TagCount]
    unassigned_by_team: list[RunTeamCount] = strawberry.field(
        description="Customers left without a manager because no member of the team had capacity."
    )
    moves: list[TeamMove]
    superseded: int = strawberry.field(
        default=0,
        description="Customers an apply left alone: re-routed in real time, on newer data, while it evaluated.",
    )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSummary:
        def counts(key: str) -> list[tuple[str, int]]:
            return [(name, int(count)) for name, count in (data.get(key) or {}).items()]

        return cls(
            evaluated=int(data.get("evaluated", 0)),
            changed=int(data.get("changed", 0)),
            unmatched=int(data.get("unmatched", 0)),
            locked=int(data.get("locked", 0)),
            team_counts=[RunTeamCount(team_key=key, count=count) for key, count in counts("team_counts")],
            rule_hits=[RuleHit(label=label, count=count) for label, count in counts("rule_hits")],
            segment_counts=[SegmentCount(segment_key=key, count=count) for key, count in counts("segment_counts")],
            tag_counts=[TagCount(tag=tag, count=count) for tag, count in counts("tag_counts")],
            unassigned_by_team=[RunTeamCount(team_key=key, count=count) for key, count in counts("unassigned_by_team")],
            moves=[
                TeamMove(from_key=move.get("from"), to_key=move.get("to"), count=int(move.get("count", 0)))
                for move in data.get("moves") or []
            ],
            superseded=int(data.get("superseded", 0)),
        )


@strawberry.type(description="What a run changes (or, for a locked customer, would have changed) for one customer.")
class EvaluationChange(TeamAndManagerMove):
    id: strawberry.ID
    segments_added: list[str]
    segments_removed: list[str]
    tags_added: list[str]
    tags_removed: list[str]
    deciding_rule: str | None
    locked: bool = strawberry.field(
        description="The customer's assignment is locked: teamAfter is what the rules chose, but team and manager were kept."
    )
    row: strawberry.Private[models.EvaluationChange]

    @classmethod
    def from_row(cls, row: models.EvaluationChange) -> EvaluationChange:
        return cls(
            id=strawberry.ID(encode_id("EvaluationChange", row.id)),
            segments_added=sorted(row.segments_added or []),
            segments_removed=sorted(row.segments_removed or []),
            tags_added=sorted(row.tags_added or []),
            tags_removed=sorted(row.tags_removed or []),
            deciding_rule=row.deciding_rule,
            locked=row.locked,
            row=row,
        )

    @strawberry.field(description="Null when the customer has been deleted since the run.")
    async def customer(self, info: Info) -> Customer | None:
        if self.row.customer_id is None:
            return None
        row = await info.context.loaders.customer.load(self.row.customer_id)
        return Customer.from_row(row, info.context.now) if row is not None else None


CHANGE_ORDER = Ordering(models.EvaluationChange.id, models.EvaluationChange.id, "number")
NEWEST_RUNS = Ordering(models.EvaluationRun.id, models.EvaluationRun.id, "number", descending=True)


@strawberry.type(description="One evaluation of a ruleset over every customer.")
class EvaluationRun:
    id: strawberry.ID
    mode: RunMode | None
    status: RunStatus | None
    as_of: datetime | None = strawberry.field(description="The instant day-based metrics were measured at.")
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    row: strawberry.Private[models.EvaluationRun]

    @classmethod
    def from_row(cls, row: models.EvaluationRun) -> EvaluationRun:
        return cls(
            id=strawberry.ID(encode_id("EvaluationRun", row.id)),
            mode=to_enum(RunMode, row.mode),
            status=to_enum(RunStatus, row.status),
            as_of=to_api(row.as_of),
            started_at=to_api(row.started_at),
            finished_at=to_api(row.finished_at),
            error=row.error,
            row=row,
        )

    @strawberry.field(
        description=(
            "What the run found. A REALTIME run's summary is computed from its changes when read: "
            "evaluated and changed count the customers changed that day, ruleHits, moves and "
            "unassignedByTeam count change events, and the totals over every customer (teamCounts, "
            "segmentCounts, tagCounts) are empty."
        )
    )
    async def summary(self, info: Info) -> RunSummary:
        if self.row.mode == "realtime":
            return RunSummary.from_json(await RoutingLoaders.of(info).realtime_summary.load(self.row.id))
        return RunSummary.from_json(self.row.summary or {})

    @strawberry.field(description="The ruleset evaluated; null for a preview of unsaved source.")
    async def ruleset(self, info: Info) -> Ruleset | None:
        if self.row.ruleset_id is None:
            return None
        row = await RoutingLoaders.of(info).ruleset.load(self.row.ruleset_id)
        return Ruleset.from_row(row) if row is not None else None

    @strawberry.field(
        description="The customers this run changes, in customer order of the run (an agent: only their customers). `first` ≤ 100."
    )
    async def changes(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[EvaluationChange]:
        size = page_size(first)
        statement = restricted(
            select(models.EvaluationChange).where(models.EvaluationChange.run_id == self.row.id),
            scope(info).owned_by_visible(models.EvaluationChange.customer_id),
        )
        db = info.context.db
        page = await fetch_page(db, statement, CHANGE_ORDER, size, after)
        return to_connection(page, CHANGE_ORDER, EvaluationChange.from_row, counter(db, statement))


def _diagnostics(items: Sequence[Any]) -> list[Diagnostic]:
    return [Diagnostic.from_dict(item.to_dict()) for item in items]


@strawberry.type
class RoutingQuery:
    @strawberry.field(description="Saved rulesets, newest first; optionally one name's versions or one status.")
    async def rulesets(
        self, info: Info, name: str | None = None, status: RulesetStatus | None = None
    ) -> list[Ruleset]:
        statement = select(models.Ruleset).order_by(models.Ruleset.created_at.desc(), models.Ruleset.id.desc())
        if name is not None:
            statement = statement.where(models.Ruleset.name == name)
        if status is not None:
            statement = statement.where(models.Ruleset.status == status.value)
        return [Ruleset.from_row(row) for row in await info.context.db.scalars(statement)]

    @strawberry.field
    async def ruleset(self, info: Info, id: strawberry.ID) -> Ruleset | None:
        row = await RoutingLoaders.of(info).ruleset.load(decode_id(id, "Ruleset"))
        return Ruleset.from_row(row) if row is not None else None

    @strawberry.field(description="The ruleset used in real time and by apply, or null.")
    async def active_ruleset(self, info: Info) -> Ruleset | None:
        row = await info.context.db.scalar(select(models.Ruleset).where(models.Ruleset.status == "active").limit(1))
        return Ruleset.from_row(row) if row is not None else None

    @strawberry.field(
        description="Check a rule file against the database (unknown teams, values never seen); nothing is saved."
    )
    async def check_rules(self, info: Info, source: str) -> CheckResult:
        if len(source) > MAX_SOURCE_LENGTH:
            from segmenta.schema.errors import client_error

            raise client_error(f"rule source too long ({len(source)} characters; at most {MAX_SOURCE_LENGTH})")
        # load_known only needs execute/scalars, which the serialised request session provides.
        team_keys, known_values = await load_known(info.context.db)  # type: ignore[arg-type]
        result = check_source(source, known_teams=team_keys, known_values=known_values)
        return CheckResult(ok=result.ok, diagnostics=_diagnostics(result.diagnostics))

    @strawberry.field(description="Evaluation runs, newest first. `first` ≤ 100.")
    async def evaluation_runs(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[EvaluationRun]:
        size = page_size(first)
        statement = select(models.EvaluationRun)
        db = info.context.db
        page = await fetch_page(db, statement, NEWEST_RUNS, size, after)
        return to_connection(page, NEWEST_RUNS, EvaluationRun.from_row, counter(db, statement))

    @strawberry.field(description="One run; poll it while its status is RUNNING.")
    async def evaluation_run(self, info: Info, id: strawberry.ID) -> EvaluationRun | None:
        row = await info.context.db.scalar(
            select(models.EvaluationRun).where(models.EvaluationRun.id == decode_id(id, "EvaluationRun"))
        )
        return EvaluationRun.from_row(row) if row is not None else None


@strawberry.type
class RulesetPayload:
    ruleset: Ruleset | None
    user_errors: list[UserError]


@strawberry.type
class RunPayload:
    run: EvaluationRun | None
    user_errors: list[UserError]


def _source_problem(source: str) -> None:
    if len(source) > MAX_SOURCE_LENGTH:
        from segmenta.domain.errors import UserError as DomainUserError

        raise DomainUserError(
            f"rule source too long ({len(source)} characters; at most {MAX_SOURCE_LENGTH})", field="source"
        )


async def _start_run(
    info: Info, plan: Callable[[], Awaitable[run_service.RunPlan]], *, arguments: set[str]
) -> RunPayload:
    """Validate (a user error writes nothing), commit the run as RUNNING, execute it in the
    background and return it: finished when it ended within the launcher's wait."""
    session = info.context.session
    plans: list[run_service.RunPlan] = []

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
        description="Save a rule file as the next version of `name` (a DRAFT; saved even with errors, see diagnostics).",
    )
    async def save_ruleset(self, info: Info, name: str, rule_source: SourceArgument) -> RulesetPayload:
        session = info.context.session

        async def work() -> models.Ruleset:
            _source_problem(rule_source)
            return await ruleset_service.save_ruleset(session, name, rule_source)

        row, errors = await in_transaction(info, work, arguments={"name", "source"})
        return RulesetPayload(ruleset=Ruleset.from_row(row) if row is not None else None, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanManageRules],
        description="Make a ruleset the active one (the previous one is archived). Does not re-route: apply does.",
    )
    async def activate_ruleset(self, info: Info, id: strawberry.ID) -> RulesetPayload:
        session = info.context.session

        async def work() -> models.Ruleset:
            return await ruleset_service.activate_ruleset(session, input_id(id, "Ruleset", "id"))

        row, errors = await in_transaction(info, work, arguments={"id"})
        return RulesetPayload(ruleset=Ruleset.from_row(row) if row is not None else None, user_errors=errors)

    @strawberry.mutation(
        permission_classes=[CanPreviewRules],
        description="Evaluate a saved ruleset (`id`) or unsaved rules (`source`) for every customer; changes nothing.",
    )
    async def preview_ruleset(
        self,
        info: Info,
        id: strawberry.ID | None = None,
        rule_source: OptionalSourceArgument = None,
        as_of: datetime | None = None,
    ) -> RunPayload:
        session = info.context.session

        async def plan() -> run_service.RunPlan:
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
            "and the run is FAILED with its error."
        ),
    )
    async def apply_ruleset(self, info: Info, id: strawberry.ID, as_of: datetime | None = None) -> RunPayload:
        session = info.context.session

        async def plan() -> run_service.RunPlan:
            return await run_service.plan_run(
                session, "apply", ruleset_id=input_id(id, "Ruleset", "id"), as_of=to_storage(as_of)
            )

        return await _start_run(info, plan, arguments={"id", "as_of"})
