"""Real-time routing (docs/routing.md, 'Real-time routing'): re-evaluate customers against the active ruleset
inside the transaction that changed them.

Creating or changing a customer, or recording a purchase, interaction or feedback,
calls :func:`reevaluate_customer` at the end of the domain service (domain/customers/profiles.py,
domain/customers/activity.py), so the GraphQL API, the CSV import and scripts all get it.

What happens, with the same semantics as an apply run (domain/routing/runs.py):

* no active ruleset → nothing (one cheap SELECT);
* the rules are evaluated with the Python compiler on the customer's rule values,
  read in the same transaction (domain.customers.metrics.rule_values), at ``as_of`` = now;
* team: the first matching team rule's team (no team rule matches → no team);
  a new team gets a manager by its strategy (domain.routing.assignment); staying in the
  same team keeps the manager;
* ``assignment_locked`` customers keep team and manager; their dynamic segments
  and rule tags still follow the rules (as in apply);
* dynamic-segment memberships and rule tags (``customer_tags.source = 'rule'``)
  become exactly what the rules give;
* a team or manager change writes an ``assignment_history`` row (cause
  ``realtime``, the deciding rule, the run);
* every change (team, manager, segments, tags) writes an ``evaluation_changes``
  row under the *realtime run of the day*: one ``evaluation_runs`` row with mode
  ``realtime`` per active ruleset and UTC day (``as_of`` = midnight), created by
  the first change of that day.  One run row per event would bury the apply runs
  in the run list; one per day keeps "what moved in real time today" one query
  away.  The run row is never updated afterwards (a counter on it would make
  every concurrent real-time write queue on that one row); its changes are the
  record.

The parts, one module each: the compiled ruleset, cached per process
(domain/routing/realtime_rules.py); the reads (realtime_reads.py); the decisions and
managers (realtime_decide.py); the day's realtime run and the dynamic segments
(realtime_records.py, shared with creating a customer, realtime_create.py).  This
module turns the decisions into changes and hands the writes to the one write path,
storage.routing_writes; the history rows it wrote are announced after the commit
(domain/events.py).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain import events
from segmenta.domain.routing import assignment
from segmenta.domain.routing.realtime_decide import RoutingDecision, decide
from segmenta.domain.routing.realtime_reads import (
    active_rules_and_customer,
    current_labels,
    lock_customers,
)
from segmenta.domain.routing.realtime_records import REALTIME, SegmentRow, dynamic_segment_ids, realtime_run_id
from segmenta.domain.routing.realtime_rules import active_rules
from segmenta.domain.routing.vocabulary import ASSIGNMENT_CAUSES
from segmenta.storage.models import utcnow
from segmenta.storage.routing_writes import CustomerAssignment, RoutingWrites, write_routing
from segmenta.storage.rule_tasks import EvaluatedTasks, write_realtime_tasks


@dataclass
class RealtimeChange:
    """What one real-time evaluation changed for one customer."""

    customer_id: int
    rule: str | None
    locked: bool
    team_before: int | None
    team_after: int | None
    manager_before: int | None
    manager_after: int | None
    segments_added: list[str] = field(default_factory=list)
    segments_removed: list[str] = field(default_factory=list)
    tags_added: list[str] = field(default_factory=list)
    tags_removed: list[str] = field(default_factory=list)
    rule_team: int | None = None
    """The team the rules chose (differs from team_after only for a locked customer)."""
    run_id: int | None = None

    @property
    def assignment_changed(self) -> bool:
        return self.team_before != self.team_after or self.manager_before != self.manager_after

    @property
    def labels_changed(self) -> bool:
        return bool(self.segments_added or self.segments_removed or self.tags_added or self.tags_removed)


def _assignment_moves(decisions: Sequence[RoutingDecision]) -> set[int]:
    """The unlocked customers whose team, manager or deciding rule differ from the stored ones."""
    moved = set()
    for decision in decisions:
        row = decision.row
        if row["assignment_locked"] or not decision.team_known:
            continue
        if (row["team_id"], row["manager_id"], row["deciding_rule"]) != (
            decision.rule_team,
            decision.manager_after,
            decision.rule,
        ):
            moved.add(decision.customer_id)
    return moved


async def _add_label_writes(
    session: AsyncSession,
    writes: RoutingWrites,
    changes: Sequence[RealtimeChange],
    known_segments: Sequence[SegmentRow],
) -> None:
    removed_segments = [(c.customer_id, key) for c in changes for key in c.segments_removed]
    added_segments = [(c.customer_id, key) for c in changes for key in c.segments_added]
    segment_ids = await dynamic_segment_ids(
        session, {key for _, key in removed_segments + added_segments}, writes.now, known_segments
    )
    writes.segments_left = [(customer, segment_ids[key]) for customer, key in removed_segments if key in segment_ids]
    writes.segments_joined = [(customer, segment_ids[key]) for customer, key in added_segments if key in segment_ids]
    writes.tags_removed = [(c.customer_id, tag) for c in changes for tag in c.tags_removed]
    writes.tags_added = [(c.customer_id, tag) for c in changes for tag in c.tags_added]


def _change_rows(changes: Sequence[RealtimeChange], run_id: int) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "customer_id": c.customer_id,
            "team_before_id": c.team_before,
            # As in apply runs: for a locked customer, the team the rules would have chosen.
            "team_after_id": c.rule_team if c.locked else c.team_after,
            "manager_before_id": c.manager_before,
            "manager_after_id": c.manager_after,
            "segments_added": c.segments_added,
            "segments_removed": c.segments_removed,
            "tags_added": c.tags_added,
            "tags_removed": c.tags_removed,
            "deciding_rule": c.rule,
            "locked": c.locked,
        }
        for c in changes
    ]


def _history_rows(changes: Sequence[RealtimeChange], run_id: int, cause: str, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": c.customer_id,
            "team_before_id": c.team_before,
            "team_after_id": c.team_after,
            "manager_before_id": c.manager_before,
            "manager_after_id": c.manager_after,
            "cause": cause,
            "run_id": run_id,
            "rule": c.rule,
            "changed_at": now,
        }
        for c in changes
        if c.assignment_changed
    ]


async def _write(
    session: AsyncSession,
    decisions: Sequence[RoutingDecision],
    changes: Sequence[RealtimeChange],
    assigners: Sequence[assignment.TeamAssigner],
    *,
    ruleset_id: int,
    cause: str,
    now: datetime,
    known_segments: Sequence[SegmentRow],
    known_run_id: int | None,
) -> None:
    """The new assignments, memberships, rule tags, change and history rows and round-robin positions,
    through the one write path (storage.routing_writes); the history announced after the commit."""
    moved = _assignment_moves(decisions)
    writes = RoutingWrites(
        now=now,
        customers=[
            CustomerAssignment(d.customer_id, d.customer_id in moved, d.rule_team, d.manager_after, d.rule)
            for d in decisions
        ],
        # What domain.routing.assignment.save_positions writes.
        positions=[(a.team_id, a.position_to_store) for a in assigners if a.position_to_store is not None],
    )
    if changes:
        # Rarely anything to create (the day's first change, a segment the rules name for
        # the first time): done first, since the writes refer to them.
        await _add_label_writes(session, writes, changes, known_segments)
        run_id = await realtime_run_id(session, ruleset_id, now, known=known_run_id)
        for change in changes:
            change.run_id = run_id
        writes.changes = _change_rows(changes, run_id)
        writes.history = _history_rows(changes, run_id, cause, now)
    await write_routing(session, writes)
    events.record_assignment_changes(session, writes.history)


async def reevaluate_customers(
    session: AsyncSession, customer_ids: Collection[int], *, cause: str = REALTIME
) -> list[RealtimeChange]:
    """Re-route the given customers with the active ruleset, in the caller's transaction.

    Returns what changed (customers with nothing to change are left out).  Unknown
    ids are ignored.  Does nothing, apart from one SELECT, when no ruleset is active.
    """
    if cause not in ASSIGNMENT_CAUSES:
        raise ValueError(f"unknown assignment cause {cause!r}")
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return []
    now = utcnow()
    known_run_id: int | None = None
    locked: dict[int, Mapping[str, Any]] | None
    if len(ids) == 1:
        found = await active_rules_and_customer(session, ids[0], now)
        if found is None:
            return []
        rules, single = found
        if single.row is None:
            return []
        known_run_id = single.day_run_id
        if assignment.has_row_locks(session):
            locked = await lock_customers(session, ids)
            labels = await current_labels(session, ids)
            decisions, segments, assigners = await decide(session, rules, ids, now, labels, locked)
        else:
            if single.has_labels:
                labels = await current_labels(session, ids)
            else:
                labels = {ids[0]: (set(), set())}
            decisions, segments, assigners = await decide(session, rules, ids, now, labels, {ids[0]: single.row})
    else:
        active = await active_rules(session)
        if active is None:
            return []
        rules = active
        locked = await lock_customers(session, ids) if assignment.has_row_locks(session) else None
        labels = await current_labels(session, ids)
        decisions, segments, assigners = await decide(session, rules, ids, now, labels, locked)
    changes: list[RealtimeChange] = []
    for decision in decisions:
        row = decision.row
        assignment_locked = bool(row["assignment_locked"])
        stored_segments, stored_tags = labels[decision.customer_id]
        wanted_segments, wanted_tags = set(decision.segments), set(decision.tags)
        change = RealtimeChange(
            customer_id=decision.customer_id,
            rule=decision.rule,
            locked=assignment_locked,
            team_before=row["team_id"],
            team_after=row["team_id"] if assignment_locked else decision.rule_team,
            manager_before=row["manager_id"],
            manager_after=decision.manager_after,
            segments_added=sorted(wanted_segments - stored_segments),
            segments_removed=sorted(stored_segments - wanted_segments),
            tags_added=sorted(wanted_tags - stored_tags),
            tags_removed=sorted(stored_tags - wanted_tags),
            rule_team=decision.rule_team,
        )
        if change.assignment_changed or change.labels_changed:
            changes.append(change)
    await _write(
        session,
        decisions,
        changes,
        assigners,
        ruleset_id=rules.ruleset_id,
        cause=cause,
        now=now,
        known_segments=segments,
        known_run_id=known_run_id,
    )
    if rules.rules.task_kinds:
        await write_realtime_tasks(
            session,
            [
                EvaluatedTasks(
                    d.customer_id,
                    d.tasks,
                    d.manager_after,
                    d.row["team_id"] if d.row["assignment_locked"] else d.rule_team,
                )
                for d in decisions
            ],
            rules.rules.task_kinds,
            ruleset_id=rules.ruleset_id,
            now=now,
        )
    await session.flush()
    return changes


async def reevaluate_customer(
    session: AsyncSession, customer_id: int, *, cause: str = REALTIME
) -> RealtimeChange | None:
    """Re-route one customer with the active ruleset (see the module docstring); None when nothing changed."""
    changes = await reevaluate_customers(session, [customer_id], cause=cause)
    return changes[0] if changes else None
