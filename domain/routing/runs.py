"""Evaluation runs: preview and apply a ruleset to every customer (docs/routing.md, 'Runs').

A run is evaluated set-based inside the database (storage.run_work_tables, run_evaluation and routing_queries): the
SQL compiler's expressions fill a temporary work table with one row per customer,
and every difference — team, manager, dynamic segments, rule tags — is derived
from it with INSERT … SELECT / UPDATE / DELETE statements.  Only the customers
who need a new manager pass through Python, in chunks, per team
(domain.routing.assignment).

Transactions (these functions own them, unlike the other domain services):

1. *prepare* — validate the input (UserError, nothing written), then insert the
   run row as ``running`` and commit, so it can be polled by id at once;
2. *evaluate* — on a connection of the run's own (its temporary work tables live
   there), in one read-only snapshot: evaluate, compare, assign managers, compute
   the summary; commit.  No lock is held, so writes go on meanwhile (on SQLite a
   read transaction never blocks the writer);
3. *write* — one short write transaction: (apply only) check that the ruleset is
   still active, lock the subjects' customer rows (PostgreSQL) and leave out those
   re-routed in real time since the snapshot (``customers.routing_version`` moved:
   their routing was decided with the same rules on newer data), create missing
   segments; write the change rows, (apply only) history, customers, segments,
   tags and round-robin positions, and mark the run ``succeeded``; commit;
4. on any failure in 2 or 3 — roll back, then mark the run ``failed`` with the
   error in a new transaction.  Nothing is half-applied: readers see the run's
   writes and its success at one commit.

Applies take turns across processes (storage.locks.held_across_transactions), so
a second apply evaluates what the first wrote.  Preview runs through the same
steps but writes only its change rows and the run itself.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from segmenta.domain import events
from segmenta.domain.errors import UserError
from segmenta.domain.routing import assignment
from segmenta.domain.routing.inactive_teams import inactive_team_keys, passing_over
from segmenta.domain.routing.rulesets import check_rules, get_ruleset
from segmenta.domain.routing.run_plan import ProgressCallback, RunPlan, RunProgress, TeamInfo
from segmenta.domain.routing.run_summary import summarise
from segmenta.dsl.ast import Rule, RuleFile, SegmentDef
from segmenta.dsl.diagnostics import RuleError
from segmenta.dsl.fields import naive_utc
from segmenta.dsl.sql_compiler import compile_ruleset
from segmenta.storage import routing_queries as queries
from segmenta.storage import rule_tasks, run_evaluation, run_work_tables
from segmenta.storage.engine import begin_reader, begin_writer
from segmenta.storage.locks import held_across_transactions
from segmenta.storage.models import EvaluationRun, RulesetVersion, Team, utcnow
from segmenta.storage.rule_fields import CustomerFields

logger = logging.getLogger(__name__)

# Customers evaluated per INSERT … SELECT (by id range, on SQLite; see
# routing_queries.evaluates_in_chunks) and assigned per chunk: bounds statement
# size and lets the progress bar move.
EVALUATION_CHUNK = 100_000
ASSIGNMENT_CHUNK = 100_000
MAX_ERROR_LENGTH = 2_000


def normalise_as_of(as_of: datetime | None) -> datetime:
    """Naive UTC, as every timestamp is stored; now when not given (the rule language's one rule for instants)."""
    return naive_utc(as_of)


def _error_summary(diagnostics: Sequence[Any]) -> str:
    errors = [d for d in diagnostics if d.is_error]
    first = errors[0]
    return (
        f"the rules have {len(errors)} error(s); first at line {first.line}, column {first.column}: {first.message}"
    )


def _outputs(
    rule_file: RuleFile,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Segment keys, tags, team keys and (label, team) of the team rules, in file order."""
    segment_keys: dict[str, None] = {}
    tags: dict[str, None] = {}
    teams: dict[str, None] = {}
    team_rules: list[tuple[str, str]] = []
    for statement in rule_file.statements:
        if isinstance(statement, SegmentDef):
            segment_keys[statement.name] = None
            continue
        assert isinstance(statement, Rule)
        for action in statement.actions:
            if action.kind == "segment":
                segment_keys[action.target] = None
            elif action.kind == "tag":
                tags[action.target] = None
            elif action.kind == "team":
                teams[action.target] = None
        if statement.team is not None:
            team_rules.append((statement.display_name, statement.team))
    return tuple(segment_keys), tuple(tags), tuple(teams), tuple(team_rules)


async def plan_run(
    session: AsyncSession,
    mode: str,
    *,
    ruleset_id: int | None = None,
    source: str | None = None,
    as_of: datetime | None = None,
) -> RunPlan:
    """Validate a run request; raises UserError (and writes nothing) when it cannot run."""
    if mode not in ("preview", "apply"):
        raise UserError(f"unknown run mode {mode!r}", field="mode")
    if (ruleset_id is None) == (source is None):
        raise UserError("give either a ruleset id or a rule source", field="id", code="invalid")
    if ruleset_id is not None:
        ruleset = await get_ruleset(session, ruleset_id)
        if mode == "apply" and ruleset.status != "active":
            raise UserError(
                f"ruleset {ruleset.name} v{ruleset.version} is {ruleset.status}; activate it before applying",
                field="id",
                code="not_active",
            )
        source = ruleset.source
    assert source is not None
    result = await check_rules(session, source, values=False)
    if not result.ok or result.rule_file is None:
        raise UserError(_error_summary(result.diagnostics), field="source" if ruleset_id is None else "id", code="has_errors")
    # An inactive team takes no customers: its rules' team actions are passed over (inactive_teams.py).
    passed_over = await inactive_team_keys(session, _outputs(result.rule_file)[2])
    rule_file = passing_over(result.rule_file, passed_over)
    segment_keys, tag_keys, team_keys, team_rules = _outputs(rule_file)

    team_rows = (
        await session.execute(select(Team.id, Team.key, Team.strategy).where(Team.key.in_(team_keys)))
    ).all() if team_keys else []
    teams = {key: TeamInfo(team_id, key, strategy) for team_id, key, strategy in team_rows}
    missing = [key for key in team_keys if key not in teams]
    if missing:
        raise UserError(f"unknown team(s): {', '.join(missing)}", field="source", code="unknown_team")

    existing = await queries.existing_segments(session, segment_keys)
    manual = sorted(key for key, (_, kind) in existing.items() if kind != "dynamic")
    if manual:
        raise UserError(
            f"segment(s) {', '.join(manual)} are manual segments; a rule cannot maintain them (rename the rule segment)",
            field="source",
            code="manual_segment",
        )
    resolved_as_of = normalise_as_of(as_of)
    try:
        compiled = compile_ruleset(rule_file, CustomerFields(), as_of=resolved_as_of)
    except RuleError as error:
        raise UserError(_error_summary(error.diagnostics), field="source", code="has_errors") from error
    return RunPlan(
        mode=mode,
        ruleset_id=ruleset_id,
        rule_file=rule_file,
        compiled=compiled,
        as_of=resolved_as_of,
        teams=teams,
        segment_keys=segment_keys,
        tag_keys=tag_keys,
        team_rule_labels=tuple(dict.fromkeys(label for label, _ in team_rules)),
        inactive_teams=passed_over,
    )


async def start_run(session: AsyncSession, plan: RunPlan) -> EvaluationRun:
    """Insert the run as `running` and commit, so it is visible to pollers."""
    await session.commit()  # ends the implicit transaction of the plan's reads
    run = EvaluationRun(ruleset_id=plan.ruleset_id, mode=plan.mode, status="running", as_of=plan.as_of, summary={})
    session.add(run)
    await session.commit()
    return run


async def _report(
    progress: ProgressCallback | None, run_id: int, step: str, done: int, total: int, status: str = "running"
) -> None:
    events.publish_run_progress(run_id, step, done, total, status)  # subscribers (schema/subscriptions.py)
    if progress is None:
        return
    outcome = progress(RunProgress(run_id, step, done, total))
    if inspect.isawaitable(outcome):
        await outcome


async def _assign_managers(
    session: AsyncSession,
    tables: run_work_tables.WorkTables,
    plan: RunPlan,
    run_id: int,
    progress: ProgressCallback | None,
) -> list[assignment.TeamAssigner]:
    automatic = plan.automatic_team_ids
    needing = await queries.needing_managers_by_team(session, tables, automatic)
    if not needing:
        return []
    team_ids = sorted(needing)
    total = sum(needing.values())
    loads = await queries.loads_after_departures(session, tables, team_ids)
    assigners = await assignment.load_team_assigners(session, team_ids, loads=loads)
    done = 0
    last_customer = 0
    while True:
        chunk = await queries.candidates_chunk(session, tables, automatic, last_customer, ASSIGNMENT_CHUNK)
        if not chunk:
            break
        assigned: list[tuple[int, int]] = []
        for customer_id, team_id, industry, region in chunk:
            manager_id = assigners[team_id].pick(industry, region)
            if manager_id is not None:
                assigned.append((customer_id, manager_id))
        # Keyset paging only moves forward, so rows written here are never read again.
        await queries.store_assigned_managers(session, tables, assigned)
        last_customer = chunk[-1][0]
        done += len(chunk)
        await _report(progress, run_id, "assign", done, total)
    return list(assigners.values())


# Names the lock that lets one apply at a time run on a database (storage.locks).
_APPLY_LOCK_KEY = 0x5E6_A991


async def _check_segments(session: AsyncSession, plan: RunPlan) -> dict[str, int]:
    """The ids of the rules' segments that exist; UserError when one of them is (now) a manual segment."""
    existing = await queries.existing_segments(session, plan.segment_keys)
    manual = sorted(key for key, (_, kind) in existing.items() if kind != "dynamic")
    if manual:
        raise UserError(f"segment(s) {', '.join(manual)} became manual segments", field="source", code="manual_segment")
    return {key: segment_id for key, (segment_id, _) in existing.items()}


async def _check_still_active(session: AsyncSession, plan: RunPlan) -> None:
    status = await session.scalar(select(RulesetVersion.status).where(RulesetVersion.id == plan.ruleset_id))
    if status != "active":
        raise UserError(
            "the ruleset was deactivated while the apply ran; nothing was applied", field="id", code="not_active"
        )


@dataclass
class _Evaluated:
    tables: run_work_tables.WorkTables
    census: run_evaluation.Census
    labelled: bool

    @property
    def unsettled(self) -> bool:
        return self.census.unsettled > 0

    @property
    def reported(self) -> bool:
        return self.unsettled or self.labelled


async def _evaluate(
    session: AsyncSession, plan: RunPlan, run_id: int, tables: run_work_tables.WorkTables, progress: ProgressCallback | None
) -> _Evaluated:
    """Everything but the writes, in one read-only snapshot: no lock is held (the work tables are temporary)."""
    await begin_reader(session)
    await run_work_tables.begin_snapshot(session)
    await run_work_tables.tune_for_run(session)
    await run_work_tables.create_work_tables(session, tables)
    # Read again inside the snapshot: the plan may be stale.  A segment the rules name that
    # does not exist yet has no members; the writes create it.
    segment_ids = await _check_segments(session, plan)

    id_range = await run_evaluation.customer_id_range(session)
    if id_range is not None:
        low, high = id_range
        total = high - low + 1
        chunk = EVALUATION_CHUNK if run_evaluation.evaluates_in_chunks(session) else total
        for start in range(low, high + 1, chunk):
            await run_evaluation.evaluate_chunk(session, tables, start, start + chunk)
            await _report(progress, run_id, "evaluate", min(start + chunk, high + 1) - low, total)

    await _report(progress, run_id, "compare", 0, 1)
    census = await run_evaluation.census(session, tables)
    labelled = await run_evaluation.compute_labels(session, tables, segment_ids, census.wanted)
    # Steady state (nothing unsettled, no label changes): the subjects stay empty and
    # the statements below are skipped or read an empty table.
    await run_evaluation.collect_subjects(session, tables, unsettled=census.unsettled > 0, labelled=labelled > 0)
    if census.unsettled or labelled:
        await run_work_tables.analyze(session, tables.subjects)
    await _report(progress, run_id, "compare", 1, 1)
    await session.commit()  # ends the snapshot; the temporary tables stay with the connection
    return _Evaluated(tables, census, labelled > 0)


async def _write(
    session: AsyncSession, plan: RunPlan, run_id: int, evaluated: _Evaluated, progress: ProgressCallback | None
) -> dict[str, Any]:
    """Manager assignment, the run's writes and its success, in one write transaction (the caller commits).

    Managers are picked here, not in the snapshot: the teams and members are locked
    and the loads read now, so real-time assignments made meanwhile are counted.
    """
    await begin_writer(session)
    await run_work_tables.tune_for_run(session)
    tables = evaluated.tables
    superseded = 0
    if plan.mode == "apply":
        await _check_still_active(session, plan)
        if evaluated.reported:
            await queries.lock_subjects(session, tables)
            superseded = await queries.drop_superseded(session, tables)
    assigners = await _assign_managers(session, tables, plan, run_id, progress) if evaluated.unsettled else []
    if plan.mode == "apply":
        # After the customers and teams are locked, as real-time routing takes them (customer,
        # team, then a new segment's key): in another order the two could wait for each other.
        segment_ids = await _check_segments(session, plan)
        await queries.create_dynamic_segments(session, [k for k in plan.segment_keys if k not in segment_ids], utcnow())
    summary = await summarise(session, tables, plan, evaluated.census)
    if plan.inactive_teams:
        summary["inactive_teams"] = list(plan.inactive_teams)
    if superseded:
        summary["superseded"] = superseded
    await _report(progress, run_id, "write", 0, 1)
    if evaluated.reported:
        await queries.insert_change_rows(session, tables, run_id)
    if plan.mode == "apply":
        now = utcnow()
        if evaluated.unsettled:
            await queries.insert_history(session, tables, run_id, now)
            await queries.update_customers(session, tables, now)
        if evaluated.labelled:
            await queries.apply_label_changes(session, tables, now)
        await assignment.save_positions(session, assigners)
    if tables.packed.tasks or plan.mode == "apply":
        # After the customers' writes: a task goes to the manager the customer has after the run.
        summary["tasks"] = [asdict(count) for count in await rule_tasks.run_tasks(
            session, tables, apply=plan.mode == "apply", ruleset_id=plan.ruleset_id, run_id=run_id, now=utcnow()
        )]
    await session.execute(
        update(EvaluationRun)
        .where(EvaluationRun.id == run_id)
        .values(status="succeeded", summary=summary, finished_at=utcnow())
    )
    await _report(progress, run_id, "write", 1, 1)
    return summary


async def _execute(
    session: AsyncSession, plan: RunPlan, run_id: int, progress: ProgressCallback | None
) -> dict[str, Any]:
    """The whole run on `session`, bound to one connection: evaluate in a snapshot, write, commit."""
    team_ids = {key: team.id for key, team in plan.teams.items()}
    tables = run_work_tables.build_work_tables(session, plan.rule_file, plan.as_of, team_ids, plan.automatic_team_ids)
    dropped = False
    try:
        evaluated = await _evaluate(session, plan, run_id, tables, progress)
        summary = await _write(session, plan, run_id, evaluated, progress)
        await run_work_tables.drop_work_tables(session, tables)  # in the write transaction: no extra one
        await session.commit()
        dropped = True
        return summary
    finally:
        if not dropped:
            await session.rollback()
            await _drop_work_tables(session, tables)


async def _drop_work_tables(session: AsyncSession, tables: run_work_tables.WorkTables) -> None:
    """The connection goes back to the pool: its temporary tables must not outlive the run."""
    try:
        await begin_reader(session)  # temporary tables: no need to wait for the write lock
        await run_work_tables.drop_work_tables(session, tables)
        await session.commit()
    except Exception:  # noqa: BLE001 — the run's own outcome matters more; a broken connection is discarded anyway
        logger.warning("dropping a run's work tables failed", exc_info=True)
        await session.rollback()


@asynccontextmanager
async def _one_connection(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A session of its own on one connection, kept for the whole run (temporary tables, the apply lock)."""
    bind = session.bind
    if isinstance(bind, AsyncConnection):
        yield session
        return
    assert isinstance(bind, AsyncEngine), "a run needs a session bound to an engine or a connection"
    async with bind.connect() as connection, AsyncSession(bind=connection, expire_on_commit=False) as own:
        yield own


# Share of customers an apply must change before it refreshes the planner statistics:
# PostgreSQL's own default for autovacuum's analyse (autovacuum_analyze_scale_factor).
STATISTICS_REFRESH_SHARE = 0.1


def _rewrote_much(summary: dict[str, Any]) -> bool:
    evaluated = int(summary.get("evaluated", 0))
    return evaluated > 0 and int(summary.get("changed", 0)) >= STATISTICS_REFRESH_SHARE * evaluated


async def _refresh_statistics(session: AsyncSession) -> None:
    """After the commit: the run has succeeded whatever happens here."""
    try:
        await queries.refresh_statistics(session)
        await session.commit()
    except Exception:  # noqa: BLE001 — stale statistics slow later runs down; they never make one wrong
        logger.warning("refreshing the planner statistics after an apply failed", exc_info=True)
        await session.rollback()


async def execute_run(
    session: AsyncSession, plan: RunPlan, run_id: int, progress: ProgressCallback | None = None
) -> EvaluationRun:
    """Run a started run to completion; a failure rolls back and marks the run failed."""
    try:
        await session.commit()  # the caller's reads end here; the run works on a connection of its own
        async with _one_connection(session) as own:
            if plan.mode == "apply":
                async with held_across_transactions(own, _APPLY_LOCK_KEY, name="apply"):
                    summary = await _execute(own, plan, run_id, progress)
            else:
                summary = await _execute(own, plan, run_id, progress)
        run = await session.get(EvaluationRun, run_id, populate_existing=True)
        assert run is not None
        await session.commit()
        if plan.mode == "apply" and _rewrote_much(summary):
            await _refresh_statistics(session)
    except Exception as error:  # noqa: BLE001 — any failure must leave a failed run, not a half-applied one
        logger.exception("evaluation run %s failed", run_id)
        await session.rollback()
        run = await session.get(EvaluationRun, run_id, populate_existing=True)
        assert run is not None
        run.status = "failed"
        # Database errors carry the whole statement; the start says what went wrong.
        run.error = f"{type(error).__name__}: {error}"[:MAX_ERROR_LENGTH]
        run.finished_at = utcnow()
        await session.commit()
    await _report(progress, run_id, "done", 1, 1, run.status)
    return run


async def preview_ruleset(
    session: AsyncSession,
    ruleset_id: int | None = None,
    source: str | None = None,
    *,
    as_of: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> EvaluationRun:
    """Evaluate a saved ruleset (or a source text) for every customer and record what would change."""
    plan = await plan_run(session, "preview", ruleset_id=ruleset_id, source=source, as_of=as_of)
    run = await start_run(session, plan)
    return await execute_run(session, plan, run.id, progress)


async def apply_ruleset(
    session: AsyncSession,
    ruleset_id: int,
    *,
    as_of: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> EvaluationRun:
    """Route every customer with the (active) ruleset, in one transaction with the run."""
    plan = await plan_run(session, "apply", ruleset_id=ruleset_id, as_of=as_of)
    run = await start_run(session, plan)
    return await execute_run(session, plan, run.id, progress)
