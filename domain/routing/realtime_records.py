"""What real-time routing writes into besides the customers: the realtime run of the day and the
dynamic segments the rules maintain (shared by re-routing and creating a customer)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime, time

from sqlalchemy import DateTime, Integer, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.storage.dml import insert_ignoring_duplicates
from segmenta.storage.models import EvaluationRun, Segment

logger = logging.getLogger(__name__)

REALTIME = "realtime"

_segments = Segment.__table__

SegmentRow = tuple[str, int, str]
"""(key, id, kind) of a stored segment."""


def day_start(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time.min)


_DAY_RUN = (
    select(EvaluationRun.id)
    .where(
        EvaluationRun.mode == REALTIME,
        EvaluationRun.ruleset_id == bindparam("run_ruleset", type_=Integer()),
        EvaluationRun.as_of == bindparam("day", type_=DateTime()),
    )
    .order_by(EvaluationRun.id)
    .limit(1)
)


async def realtime_run_id(
    session: AsyncSession, ruleset_id: int, now: datetime, *, known: int | None = None
) -> int:
    """The realtime run of `ruleset_id` for the UTC day of `now`, created on first use.

    `known` is the run id the caller already read in this transaction (it is then
    returned as is).  Two transactions that both make the day's first change at the
    same instant may each create one (there is no unique key to arbitrate); both rows
    are then valid realtime runs of that day.
    """
    if known is not None:
        return known
    day = day_start(now)
    found = await session.scalar(_DAY_RUN, {"run_ruleset": ruleset_id, "day": day})
    if found is not None:
        return found
    run = EvaluationRun(
        ruleset_id=ruleset_id, mode=REALTIME, status="succeeded", as_of=day, started_at=now, summary={}
    )
    session.add(run)
    await session.flush()
    return run.id


async def dynamic_segment_ids(
    session: AsyncSession, keys: Collection[str], now: datetime, known: Sequence[SegmentRow]
) -> dict[str, int]:
    """Ids of the dynamic segments `keys`, creating the missing ones (as apply does).

    `known` are the stored segments read earlier in this transaction for a superset
    of `keys`.  A key that names a manual segment is left out: rules never maintain
    manual segments.
    """
    if not keys:
        return {}
    rows = [row for row in known if row[0] in keys]
    ids = {key: segment_id for key, segment_id, kind in rows if kind == "dynamic"}
    manual = sorted(key for key, _, kind in rows if kind != "dynamic")
    if manual:
        logger.warning("real-time routing: %s are manual segments; the rules do not maintain them", manual)
    missing = sorted(set(keys) - {key for key, _, _ in rows})
    if not missing:
        return ids
    # Another transaction (real time, or an apply) may create the same segment at the same
    # moment: a key already taken is skipped, then every missing key is read back.
    await session.execute(
        insert_ignoring_duplicates(session.get_bind().dialect.name, _segments),
        [
            {"key": key, "name": key, "description": "maintained by the active ruleset", "kind": "dynamic", "created_at": now}
            for key in missing
        ],
    )
    created = await session.execute(select(_segments.c.key, _segments.c.id, _segments.c.kind).where(_segments.c.key.in_(missing)))
    for key, segment_id, kind in created.all():
        if kind == "dynamic":
            ids[key] = segment_id
    return ids
