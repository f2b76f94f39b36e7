"""What re-routing existing customers in real time reads: the active ruleset with the customer in one
statement, the customers' rule values and current rule outputs (dynamic segments, rule tags), and
the teams and segments the decisions name.

Statements are built once per process, with bound parameters (IN lists as expanding ones):
building them and computing their cache keys per call cost more than running them.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import DateTime, Integer, Row, bindparam, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.metrics import rule_values
from segmenta.domain.customers.records import (
    MANUAL,
    RULE,
    chunked,
    get_customer_attributes,
    get_customer_categories,
    get_customer_tags,
)
from segmenta.domain.routing.realtime_records import REALTIME, SegmentRow, day_start
from segmenta.domain.routing.realtime_rules import CompiledRulesetVersion, compiled_rules
from segmenta.domain.staff.vocabulary import AUTOMATIC_STRATEGIES, EVERY_LOAD_STRATEGIES
from segmenta.storage.models import Customer, CustomerTag, EvaluationRun, RulesetVersion, Segment, SegmentMember, Team
from segmenta.storage.new_customer_read import ExistingCustomer, NewCustomerRead, read_new_customer

_customers = Customer.__table__


@dataclass(frozen=True)
class SingleCustomerRead:
    """What the first statement of a single-customer re-evaluation reads, besides the ruleset."""

    row: Mapping[str, Any] | None
    has_labels: bool
    day_run_id: int | None


@functools.cache
def _active_rules_and_customer_statement() -> Any:
    """Built once: constructing it (and its cache key) per call cost more than running it."""
    customer_id = bindparam("customer_id", type_=Integer())
    dynamic_memberships = (
        select(func.count())
        .select_from(SegmentMember)
        .join(Segment, Segment.id == SegmentMember.segment_id)
        .where(Segment.kind == "dynamic", SegmentMember.customer_id == _customers.c.id)
        .scalar_subquery()
    )
    rule_tags = (
        select(func.count())
        .select_from(CustomerTag)
        .where(CustomerTag.source == RULE, CustomerTag.customer_id == _customers.c.id)
        .scalar_subquery()
    )
    day_run = (
        select(EvaluationRun.id)
        .where(
            EvaluationRun.mode == REALTIME,
            EvaluationRun.ruleset_id == RulesetVersion.id,
            EvaluationRun.as_of == bindparam("day", type_=DateTime()),
        )
        .order_by(EvaluationRun.id)
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            RulesetVersion.id.label("active_ruleset_id"),
            RulesetVersion.version.label("active_ruleset_version"),
            RulesetVersion.source.label("active_ruleset_source"),
            day_run.label("day_run_id"),
            (dynamic_memberships + rule_tags).label("label_count"),
            _customers,
        )
        .select_from(RulesetVersion)
        .outerjoin(_customers, _customers.c.id == customer_id)
        .where(RulesetVersion.status == "active")
        .order_by(RulesetVersion.id)
        .limit(1)
    )


async def active_rules_and_customer(
    session: AsyncSession, customer_id: int, now: datetime
) -> tuple[CompiledRulesetVersion, SingleCustomerRead] | None:
    """The active ruleset, the customer's row, whether it has rule outputs, and the day's realtime run.

    One statement, so that routing one customer costs no more round trips for these
    than the "is a ruleset active?" check does; None (and nothing else read) when no
    ruleset is active.
    """
    found: Row[Any] | None = (
        await session.execute(
            _active_rules_and_customer_statement(), {"customer_id": customer_id, "day": day_start(now)}
        )
    ).first()
    if found is None:
        return None
    mapping = found._mapping
    rules = compiled_rules(
        mapping["active_ruleset_id"], mapping["active_ruleset_version"], mapping["active_ruleset_source"]
    )
    if mapping[_customers.c.id] is None:
        return rules, SingleCustomerRead(row=None, has_labels=False, day_run_id=mapping["day_run_id"])
    row = {column.name: mapping[column] for column in _customers.c}
    return rules, SingleCustomerRead(
        row=row, has_labels=bool(mapping["label_count"]), day_run_id=mapping["day_run_id"]
    )


_CUSTOMERS_BY_ID = select(_customers).where(_customers.c.id.in_(bindparam("customer_ids", expanding=True)))


@functools.cache
def _labels_statement() -> Any:
    customer_ids: Any = bindparam("customer_ids", expanding=True)
    segments = (
        select(SegmentMember.customer_id, literal("segment").label("kind"), Segment.key.label("key"))
        .join(Segment, Segment.id == SegmentMember.segment_id)
        .where(Segment.kind == "dynamic", SegmentMember.customer_id.in_(customer_ids))
    )
    tags = select(CustomerTag.customer_id, literal("tag").label("kind"), CustomerTag.tag.label("key")).where(
        CustomerTag.source == RULE, CustomerTag.customer_id.in_(customer_ids)
    )
    return union_all(segments, tags)


async def load_values(
    session: AsyncSession,
    customer_ids: Sequence[int],
    rules: CompiledRulesetVersion,
    rows: dict[int, Mapping[str, Any]] | None = None,
) -> tuple[dict[int, Mapping[str, Any]], dict[int, dict[str, Any]]]:
    """The customers' rows (read unless given) and rule values; tags, attributes and categories only when the rules read them."""
    if rows is None:
        rows = {}
        for chunk in chunked(list(customer_ids)):
            for row in await session.execute(_CUSTOMERS_BY_ID, {"customer_ids": list(chunk)}):
                rows[row.id] = cast(Mapping[str, Any], row._mapping)  # RowMapping's key type also admits columns
    found = list(rows)
    tags = await get_customer_tags(session, found, source=MANUAL) if rules.reads_tags else {}
    attributes = await get_customer_attributes(session, found) if rules.reads_attributes else {}
    categories = await get_customer_categories(session, found) if rules.reads_categories else {}
    values = {
        customer_id: rule_values(
            row, tags.get(customer_id, ()), attributes.get(customer_id, {}), categories.get(customer_id, ())
        )
        for customer_id, row in rows.items()
    }
    return rows, values


_LOCK_CUSTOMERS = (
    select(_customers)
    .where(_customers.c.id.in_(bindparam("customer_ids", expanding=True)))
    .order_by(_customers.c.id)
    .with_for_update(key_share=True)  # as an UPDATE locks; inserts referring to the customer pass
)


async def lock_customers(session: AsyncSession, customer_ids: Sequence[int]) -> dict[int, Mapping[str, Any]]:
    """PostgreSQL: lock the customers' rows (in id order) before their labels are read; their current rows.

    An apply writing the same customers holds these locks until it commits, so what is
    read after this is what it wrote (docs/routing.md, "Applies and real-time writes").
    The change that triggered the re-evaluation may have written the row already (then
    the lock is this transaction's own), or not (an edit of tags or attributes only).
    """
    rows: dict[int, Mapping[str, Any]] = {}
    for chunk in chunked(sorted(customer_ids)):
        for row in await session.execute(_LOCK_CUSTOMERS, {"customer_ids": list(chunk)}):
            rows[row.id] = {column.name: row._mapping[column] for column in _customers.c}
    return rows


async def current_labels(
    session: AsyncSession, customer_ids: Sequence[int]
) -> dict[int, tuple[set[str], set[str]]]:
    """(dynamic segment keys, rule tags) per customer, as stored now; one query per chunk."""
    result: dict[int, tuple[set[str], set[str]]] = {customer_id: (set(), set()) for customer_id in customer_ids}
    for chunk in chunked(list(customer_ids)):
        for customer_id, kind, key in await session.execute(_labels_statement(), {"customer_ids": list(chunk)}):
            result[customer_id][0 if kind == "segment" else 1].add(key)
    return result


@functools.cache
def _teams_and_segments_statement(teams: bool, segments: bool) -> Any:
    parts = []
    if teams:
        parts.append(
            select(literal("team").label("what"), Team.key, Team.id, Team.strategy.label("detail")).where(
                Team.key.in_(bindparam("team_keys", expanding=True)), Team.active.is_(True)
            )
        )
    if segments:
        parts.append(
            select(literal("segment").label("what"), Segment.key, Segment.id, Segment.kind.label("detail")).where(
                Segment.key.in_(bindparam("segment_keys", expanding=True))
            )
        )
    return parts[0] if len(parts) == 1 else union_all(*parts)


async def teams_and_segments_by_key(
    session: AsyncSession, team_keys: Iterable[str], segment_keys: Iterable[str]
) -> tuple[dict[str, tuple[int, str]], list[SegmentRow]]:
    """Teams (id, strategy) and segments (key, id, kind) by key, in one statement."""
    teams_wanted, segments_wanted = sorted(set(team_keys)), sorted(set(segment_keys))
    if not (teams_wanted or segments_wanted):
        return {}, []
    teams: dict[str, tuple[int, str]] = {}
    segments: list[SegmentRow] = []
    rows = await session.execute(
        _teams_and_segments_statement(bool(teams_wanted), bool(segments_wanted)),
        {"team_keys": teams_wanted, "segment_keys": segments_wanted},
    )
    for what, key, found_id, detail in rows:
        if what == "team":
            teams[key] = (found_id, detail)
        else:
            segments.append((key, found_id, detail))
    return teams, segments


async def read_team(
    session: AsyncSession,
    team_key: str | None,
    segment_keys: Collection[str],
    *,
    with_loads: bool,
    existing: ExistingCustomer | None = None,
) -> NewCustomerRead:
    """The team `team_key` with its active members — locked on PostgreSQL, the team row first, then
    the members' employee rows in id order (domain/routing/assignment.py's order); for an `existing`
    customer only when it needs a manager — and the segments `segment_keys`, in one statement
    (storage/new_customer_read.py); with the members' loads that can matter when `with_loads`
    (only where no lock is taken: a locked row's load must be counted by a later statement, which
    sees what committed while waiting)."""
    return await read_new_customer(
        session,
        head=None,
        team_key=team_key,
        segment_keys=sorted(segment_keys),
        guess=None,
        with_loads=with_loads,
        realtime_mode=REALTIME,
        automatic_strategies=AUTOMATIC_STRATEGIES,
        every_load_strategies=EVERY_LOAD_STRATEGIES,
        existing=existing,
    )
