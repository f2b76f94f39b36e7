"""The GraphQL types of rulesets and evaluation runs (docs/routing.md): what a run found, what it
changes, and the diagnostics of a rule file. The queries and mutations are in schema/routing.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import select

from segmenta.schema.context import Info
from segmenta.schema.enums import RulesetStatus, RunMode, RunStatus, Severity, to_enum
from segmenta.schema.ids import encode_id
from segmenta.schema.loaders import restricted
from segmenta.schema.node_interface import Node
from segmenta.schema.pagination import (
    AfterArgument,
    Connection,
    FirstArgument,
    Ordering,
    counter,
    fetch_page,
    page_size,
    to_connection,
)
from segmenta.schema.permissions import scope
from segmenta.schema.routing_loaders import RoutingLoaders
from segmenta.schema.timestamps import to_api
from segmenta.schema.types import Customer, Segment, Team, TeamAndManagerMove
from segmenta.storage import models, run_changes


def routing_loaders(info: Info) -> RoutingLoaders:
    """The request's routing loaders, made on first use."""
    loaders = info.context.routing_loaders
    if loaders is None:
        loaders = info.context.routing_loaders = RoutingLoaders(info.context.db)
    return loaders


@strawberry.type(description="A located message about a rule file; lines and columns are 1-based, in characters.")
class Diagnostic:
    severity: Severity | None = strawberry.field(
        description="ERROR, WARNING or INFO; null for a word this server does not know.",
    )
    code: str = strawberry.field(
        description=(
            "A stable kebab-case code, e.g. `unknown-field`, `type-mismatch`, `too-complex` (docs: rule "
            "language)."
        ),
    )
    message: str = strawberry.field(description="What is wrong, in plain words.")
    line: int = strawberry.field(description="Line where the problem starts (1-based).")
    column: int = strawberry.field(
        description="Column where the problem starts (1-based, in characters).",
    )
    end_line: int = strawberry.field(description="Line where the problem ends (1-based).")
    end_column: int = strawberry.field(
        description="Column just after the problem's end (1-based, in characters).",
    )
    hint: str | None = strawberry.field(
        description="How to fix it (e.g. `did you mean region?`); null when there is no hint.",
    )

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


@strawberry.type(description="The outcome of checking a rule file: whether it can be used, and every diagnostic.")
class CheckResult:
    ok: bool = strawberry.field(description="True when no diagnostic is an error.")
    diagnostics: list[Diagnostic] = strawberry.field(description="Every diagnostic, in source order.")


@strawberry.type(name="Ruleset", description="A saved version of a rule file.")
class RulesetType(Node):
    id: strawberry.ID = strawberry.field(
        description=(
            "Opaque global ID (base64 of `Ruleset:key`); pass it back as given, e.g. to `ruleset(id)` or "
            "`activateRuleset(id)`."
        ),
    )
    name: str = strawberry.field(
        description="The ruleset's name; saving under the same name makes a new version.",
    )
    version: int = strawberry.field(
        description="Version number within its name: 1 for the first save, then one more per save.",
    )
    source: str = strawberry.field(description="The rule file text as saved.")
    status: RulesetStatus | None = strawberry.field(description="DRAFT, ACTIVE (at most one version) or ARCHIVED.")
    has_errors: bool = strawberry.field(
        description="True when a diagnostic is an error: such a version cannot be activated.",
    )
    diagnostics: list[Diagnostic] = strawberry.field(
        description="The diagnostics of the last check against the database (at save, and again at activation).",
    )
    created_at: datetime | None = strawberry.field(description="When the version was saved, UTC.")
    activated_at: datetime | None = strawberry.field(
        description="When the version was last activated, UTC; null when never.",
    )
    archived_at: datetime | None = strawberry.field(
        description="When the version was archived (another was activated), UTC; null unless ARCHIVED.",
    )

    @classmethod
    def from_row(cls, row: models.RulesetVersion) -> RulesetType:
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


async def _team_by_key(info: Info, key: str | None) -> Team | None:
    if key is None:
        return None
    row = await routing_loaders(info).team_by_key.load(key)
    return Team.from_row(row) if row is not None else None


@strawberry.type(description="A number of customers of one team.")
class RunTeamCount:
    team_key: str = strawberry.field(description="The team's key as the run saw it.")
    count: int = strawberry.field(description="Number of customers.")

    @strawberry.field(description="The team, or null when it has been deleted since the run.")
    async def team(self, info: Info) -> Team | None:
        return await _team_by_key(info, self.team_key)


@strawberry.type(description="How many customers one team rule decided.")
class RuleHit:
    label: str = strawberry.field(description="The rule's label, or `line N` for an unlabelled rule.")
    count: int = strawberry.field(description="Customers whose team this rule decided.")


@strawberry.type(description="The number of members of one segment.")
class SegmentCount:
    segment_key: str = strawberry.field(description="The segment's key.")
    count: int = strawberry.field(description="Number of members.")

    @strawberry.field(description="The segment, or null when it has been deleted since the run.")
    async def segment(self, info: Info) -> Segment | None:
        row = await routing_loaders(info).segment_by_key.load(self.segment_key)
        return Segment.from_row(row) if row is not None else None


@strawberry.type(description="The number of customers with one rule tag.")
class TagCount:
    tag: str = strawberry.field(description="The rule tag.")
    count: int = strawberry.field(description="Customers with the tag after the run.")


@strawberry.type(
    description="Tasks one `-> task KIND` action of the rules created (an apply) or would create (a preview)."
)
class RunTaskCount:
    kind: str = strawberry.field(description="The task kind.")
    rule: str = strawberry.field(description="The rule giving it (its label, or `line N`): the first of its kind to match.")
    due_days: int = strawberry.field(description="Days from the run until such a task is due.")
    count: int = strawberry.field(
        description=(
            "Tasks created (APPLY) or that an apply now would create (PREVIEW): customers for whom the rule holds, "
            "did not hold at their previous evaluation, and who have no OPEN task of the kind."
        )
    )


@strawberry.type(description="Customers moved from one team to another (null: no team).")
class TeamMove:
    from_key: str | None = strawberry.field(
        description="Key of the team the customers left; null: they had no team.",
    )
    to_key: str | None = strawberry.field(
        description="Key of the team the customers joined; null: they are left without a team.",
    )
    count: int = strawberry.field(description="Number of customers that made this move.")

    @strawberry.field(name="from", description="The team the customers left; null: no team (or deleted since).")
    async def from_team(self, info: Info) -> Team | None:
        return await _team_by_key(info, self.from_key)

    @strawberry.field(name="to", description="The team the customers joined; null: no team (or deleted since).")
    async def to_team(self, info: Info) -> Team | None:
        return await _team_by_key(info, self.to_key)


@strawberry.type(description="How many customers gained and lost one segment or one tag in a run.")
class LabelChange:
    key: str = strawberry.field(description="The segment's key, or the tag.")
    added: int = strawberry.field(description="Customers who gain it.")
    removed: int = strawberry.field(description="Customers who lose it.")


def _label_changes(counts: dict[str, tuple[int, int]]) -> list[LabelChange]:
    return [LabelChange(key=key, added=added, removed=removed) for key, (added, removed) in sorted(counts.items())]


@strawberry.input(
    description=(
        "One cell of a run's `summary.moves`: the customers that left team `fromKey` for team `toKey`. "
        "Null (or left out) means no team. Locked customers never move; staying in the same team is not a move."
    )
)
class TeamMoveFilter:
    from_key: str | None = strawberry.field(
        default=None, description="Key of the team the customers left; null: they had no team."
    )
    to_key: str | None = strawberry.field(
        default=None, description="Key of the team the customers join; null: they are left without a team."
    )


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
    tag_counts: list[TagCount] = strawberry.field(description="Customers per rule tag after the run.")
    unassigned_by_team: list[RunTeamCount] = strawberry.field(
        description="Customers left without a manager because no member of the team had capacity."
    )
    moves: list[TeamMove] = strawberry.field(description="Team changes, one entry per (from, to) pair.")
    superseded: int = strawberry.field(
        default=0,
        description="Customers an apply left alone: re-routed in real time, on newer data, while it evaluated.",
    )
    inactive_teams: list[str] = strawberry.field(
        default_factory=list,
        description=(
            "Keys of inactive teams the rules name: the run passed over their rules' team action, so their "
            "customers went to the next matching team rule or, with none, were left without a team "
            "(counted in unmatched). Empty when every team named is active."
        ),
    )
    tasks: list[RunTaskCount] = strawberry.field(
        default_factory=list,
        description=(
            "Per `-> task` action of the rules, the tasks the run created (APPLY) or would create (PREVIEW); "
            "docs/rule-language.md, Tasks. Empty when the rules give no task (and for REALTIME runs)."
        ),
    )
    run_id: strawberry.Private[int | None] = None

    @strawberry.field(
        description=(
            "Per dynamic segment: customers who join it and who leave it, counted from the run's changes; "
            "only segments with a change, by key."
        )
    )
    async def segment_changes(self, info: Info) -> list[LabelChange]:
        if self.run_id is None:
            return []
        return _label_changes((await routing_loaders(info).label_changes.load(self.run_id)).segments)

    @strawberry.field(
        description=(
            "Per rule tag: customers who gain it and who lose it, counted from the run's changes; only tags "
            "with a change, sorted."
        )
    )
    async def tag_changes(self, info: Info) -> list[LabelChange]:
        if self.run_id is None:
            return []
        return _label_changes((await routing_loaders(info).label_changes.load(self.run_id)).tags)

    @classmethod
    def from_json(cls, data: dict[str, Any], run_id: int | None = None) -> RunSummary:
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
            inactive_teams=[str(key) for key in data.get("inactive_teams") or []],
            tasks=[
                RunTaskCount(kind=str(item.get("kind")), rule=str(item.get("rule")), due_days=int(item.get("due_days", 0)),
                             count=int(item.get("count", 0)))
                for item in data.get("tasks") or []
            ],
            run_id=run_id,
        )


@strawberry.type(description="What a run changes (or, for a locked customer, would have changed) for one customer.")
class EvaluationChange(TeamAndManagerMove, Node):
    id: strawberry.ID = strawberry.field(
        description=(
            "Opaque global ID (base64 of `EvaluationChange:key`); pass it back as given, e.g. to `node(id)`."
        ),
    )
    segments_added: list[str] = strawberry.field(
        description="Keys of the dynamic segments the customer joins, sorted.",
    )
    segments_removed: list[str] = strawberry.field(
        description="Keys of the dynamic segments the customer leaves, sorted.",
    )
    tags_added: list[str] = strawberry.field(description="Rule tags the customer gains, sorted.")
    tags_removed: list[str] = strawberry.field(description="Rule tags the customer loses, sorted.")
    deciding_rule: str | None = strawberry.field(
        description=(
            "The label of the team rule that decided (`line N` when unlabelled); null when no team rule matched."
        ),
    )
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
class EvaluationRun(Node):
    id: strawberry.ID = strawberry.field(
        description=(
            "Opaque global ID (base64 of `EvaluationRun:key`); pass it to `evaluationRun(id)` or "
            "`evaluationRunProgress(runId)`."
        ),
    )
    mode: RunMode | None = strawberry.field(description="PREVIEW, APPLY or REALTIME.")
    status: RunStatus | None = strawberry.field(description="RUNNING, SUCCEEDED or FAILED.")
    as_of: datetime | None = strawberry.field(description="The instant day-based metrics were measured at.")
    started_at: datetime | None = strawberry.field(description="When the run started, UTC.")
    finished_at: datetime | None = strawberry.field(description="When the run ended, UTC; null while RUNNING.")
    error: str | None = strawberry.field(
        description="Why the run FAILED (`interrupted: …` when its process died); null otherwise.",
    )
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
            return RunSummary.from_json(await routing_loaders(info).realtime_summary.load(self.row.id), self.row.id)
        return RunSummary.from_json(self.row.summary or {}, self.row.id)

    @strawberry.field(description="The ruleset evaluated; null for a preview of unsaved source.")
    async def ruleset(self, info: Info) -> RulesetType | None:
        if self.row.ruleset_id is None:
            return None
        row = await routing_loaders(info).ruleset.load(self.row.ruleset_id)
        return RulesetType.from_row(row) if row is not None else None

    @strawberry.field(
        description=(
            "The customers this run changes, in customer order of the run (an agent: only their customers); "
            "`move` keeps those of one cell of `summary.moves`. `first` ≤ 100."
        )
    )
    async def changes(
        self,
        info: Info,
        first: FirstArgument = None,
        after: AfterArgument = None,
        move: Annotated[
            TeamMoveFilter | None,
            strawberry.argument(
                description="Only the customers that made this move between teams (as `summary.moves` counts them)."
            ),
        ] = None,
    ) -> Connection[EvaluationChange]:
        size = page_size(first)
        statement = restricted(
            select(models.EvaluationChange).where(models.EvaluationChange.run_id == self.row.id),
            scope(info).owned_by_visible(models.EvaluationChange.customer_id),
        )
        if move is not None:
            statement = statement.where(run_changes.one_move(move.from_key, move.to_key))
        db = info.context.db
        page = await fetch_page(db, statement, CHANGE_ORDER, size, after)
        return to_connection(page, CHANGE_ORDER, EvaluationChange.from_row, counter(db, statement))
