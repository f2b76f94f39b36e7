"""Performance by period of employees and teams: what each figure means (docs/performance.md).

A period is one calendar month or a range of whole months, bounded in UTC: `2026-11` is
[2026-11-01 00:00, 2026-12-01 00:00) in naive UTC, as every time is stored (dsl.fields.naive_utc).
The figures of a page of owners over a list of periods come from one statement
(storage/performance_sql.py); this module parses periods, binds them, and derives the ratios
(attainment, retention rate, NPS, median, completion rate) from the statement's sums and counts.

Whose customer is it?  The manager (or team) at the moment of the event: a purchase, a survey, a
complaint or an interaction belongs to whoever managed the customer when it happened, read from
the assignment history (`assignment_history`; a customer with no history has had its current
manager all along).  A customer who changed manager mid-month splits that month's revenue between
the two managers at the instant of the change; a purchase at exactly that instant is the new one's.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.errors import UserError
from segmenta.dsl.money import from_cents
from segmenta.storage.performance_sql import (
    EMPLOYEE,
    GROUPS,
    RESULT_COLUMNS,
    TEAM,
    PeriodBounds,
    performance_statement,
)

OWNER_KINDS = (EMPLOYEE, TEAM)
# A range may span at most ten years; a series at most 24 months.
MAX_RANGE_MONTHS = 120
MAX_SERIES_MONTHS = 24
SERIES_MONTHS = 12
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
MIN_YEAR, MAX_YEAR = 1900, 9998
# Roles that read every employee's and team's figures; an agent reads only their own (docs/performance.md).
READING_ROLES = ("admin", "manager", "viewer")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def shifted(self, months: int) -> Month:
        index = self.year * 12 + (self.month - 1) + months
        return Month(index // 12, index % 12 + 1)

    def start(self) -> datetime:
        return datetime(self.year, self.month, 1)

    def months_to(self, last: Month) -> int:
        """How many months from this one to `last`, both included."""
        return (last.year - self.year) * 12 + (last.month - self.month) + 1

    @classmethod
    def of(cls, moment: datetime) -> Month:
        return cls(moment.year, moment.month)


def parse_month(value: Any, field: str) -> Month:
    """A month written `YYYY-MM` (UTC calendar month); anything else is a located UserError."""
    if not isinstance(value, str):
        raise UserError(f"{field} must be a month written YYYY-MM", field=field, code="invalid_month")
    found = _MONTH.fullmatch(value)
    if found is None or not 1 <= int(found.group(2)) <= 12 or not MIN_YEAR <= int(found.group(1)) <= MAX_YEAR:
        shown = value if len(value) <= 20 else value[:20] + "…"
        raise UserError(
            f"{field} must be a month written YYYY-MM (years {MIN_YEAR}–{MAX_YEAR}), got {shown!r}",
            field=field,
            code="invalid_month",
        )
    return Month(int(found.group(1)), int(found.group(2)))


@dataclass(frozen=True)
class Period:
    """Whole months `first` to `last` (both included), [first's start, the month after last's start) in UTC."""

    first: Month
    last: Month

    @property
    def start(self) -> datetime:
        return self.first.start()

    @property
    def end(self) -> datetime:
        return self.last.shifted(1).start()

    @property
    def months(self) -> int:
        return self.first.months_to(self.last)

    def bounds(self) -> PeriodBounds:
        return PeriodBounds(
            start=self.start,
            end=self.end,
            # The trailing 12 months at the period's end: [end − 12 months, end).
            trailing_start=self.last.shifted(-11).start(),
            first_month=str(self.first),
            last_month=str(self.last),
            months=self.months,
        )


def resolve_period(month: str | None, from_month: str | None, to_month: str | None, now: datetime) -> Period:
    """The period the arguments name: `month`, or `from` and `to` (both included); none: the current month."""
    if month is not None:
        if from_month is not None or to_month is not None:
            raise UserError("give either month or from and to, not both", field="month", code="invalid")
        one = parse_month(month, "month")
        return Period(one, one)
    if from_month is None and to_month is None:
        current = Month.of(now)
        return Period(current, current)
    if from_month is None or to_month is None:
        missing = "from" if from_month is None else "to"
        raise UserError(f"{missing} is required with {'to' if missing == 'from' else 'from'}", field=missing, code="required")
    first, last = parse_month(from_month, "from"), parse_month(to_month, "to")
    if last < first:
        raise UserError(f"to ({last}) is before from ({first})", field="to", code="out_of_range")
    if first.months_to(last) > MAX_RANGE_MONTHS:
        raise UserError(f"a period spans at most {MAX_RANGE_MONTHS} months", field="to", code="out_of_range")
    return Period(first, last)


def series_periods(to_month: str | None, months: int, now: datetime) -> list[Period]:
    """`months` single months ending with `to_month` (default: the current month), oldest first."""
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_SERIES_MONTHS:
        raise UserError(f"months must be a whole number from 1 to {MAX_SERIES_MONTHS}", field="months", code="out_of_range")
    last = parse_month(to_month, "to") if to_month is not None else Month.of(now)
    if last.shifted(1 - months) < Month(MIN_YEAR, 1):
        raise UserError(f"the series would start before {MIN_YEAR}", field="to", code="out_of_range")
    return [Period(month, month) for month in (last.shifted(offset) for offset in range(1 - months, 1))]


@dataclass(frozen=True)
class Performance:
    """Every figure of one owner over one period (definitions: docs/performance.md)."""

    owner_id: int
    period: Period
    target: Decimal | None
    revenue: Decimal
    purchases: int
    customers_at_start: int
    customers_at_end: int
    customers_won: int
    customers_lost: int
    customers_retained: int
    survey_count: int
    survey_sum: float
    nps_count: int
    nps_promoters: int
    nps_detractors: int
    complaints_received: int
    complaints_resolved: int
    median_resolution_seconds: float | None
    interactions: int
    tasks_due: int
    tasks_done_on_time: int
    tasks_overdue: int

    @property
    def attainment(self) -> float | None:
        """Revenue ÷ target (1.0 is 100 %); None without a target or with a zero one."""
        if self.target is None or self.target == 0:
            return None
        return float(self.revenue / self.target)

    @property
    def retention_rate(self) -> float | None:
        return self.customers_retained / self.customers_at_start if self.customers_at_start else None

    @property
    def average_satisfaction(self) -> float | None:
        return self.survey_sum / self.survey_count if self.survey_count else None

    @property
    def nps(self) -> float | None:
        """Net promoter score: % promoters (9–10) − % detractors (0–6), −100 to 100."""
        if not self.nps_count:
            return None
        return 100.0 * (self.nps_promoters - self.nps_detractors) / self.nps_count

    @property
    def median_resolution_hours(self) -> float | None:
        seconds = self.median_resolution_seconds
        return None if seconds is None else seconds / 3600.0

    @property
    def task_completion_rate(self) -> float | None:
        return self.tasks_done_on_time / self.tasks_due if self.tasks_due else None


def _performance(owner_id: int, period: Period, values: Sequence[Any]) -> Performance:
    row = dict(zip(RESULT_COLUMNS, values, strict=True))
    # Sums of cents: an int on SQLite, a Decimal (NUMERIC) on PostgreSQL.
    target = row["target"]
    return Performance(
        owner_id=owner_id,
        period=period,
        target=None if target is None else from_cents(int(target)),
        revenue=from_cents(int(row["revenue"])),
        purchases=int(row["purchases"]),
        customers_at_start=int(row["customers_at_start"]),
        customers_at_end=int(row["customers_at_end"]),
        customers_won=int(row["customers_won"]),
        customers_lost=int(row["customers_lost"]),
        customers_retained=int(row["customers_retained"]),
        survey_count=int(row["survey_count"]),
        survey_sum=float(row["survey_sum"] or 0.0),
        nps_count=int(row["nps_count"]),
        nps_promoters=int(row["nps_promoters"]),
        nps_detractors=int(row["nps_detractors"]),
        complaints_received=int(row["complaints_received"]),
        complaints_resolved=int(row["complaints_resolved"]),
        median_resolution_seconds=None
        if row["median_resolution_seconds"] is None
        else float(row["median_resolution_seconds"]),
        interactions=int(row["interactions"]),
        tasks_due=int(row["tasks_due"]),
        tasks_done_on_time=int(row["tasks_done_on_time"]),
        tasks_overdue=int(row["tasks_overdue"]),
    )


async def performance_of(
    session: AsyncSession,
    kind: str,
    owner_ids: Sequence[int],
    periods: Sequence[Period],
    as_of: datetime,
    groups: Collection[str] = GROUPS,
) -> dict[tuple[int, int], Performance]:
    """The figures of each owner (employee or team ids; unknown ids are left out) for each period,
    keyed by (owner id, index of the period): ONE statement whatever the number of owners and periods.

    `groups` (storage.performance_sql.GROUPS) says which figures to compute besides the target; the
    others read 0 (or None) — ask for every group whose figures you read."""
    if kind not in OWNER_KINDS:
        raise ValueError(f"unknown kind of owner {kind!r}")
    if not owner_ids or not periods:
        return {}
    dialect = session.get_bind().dialect.name
    statement = performance_statement(
        kind, dialect, sorted(set(owner_ids)), [p.bounds() for p in periods], as_of, groups
    )
    result = await session.execute(statement)
    return {
        (int(row[0]), int(row[1])): _performance(int(row[0]), periods[int(row[1])], row[2:]) for row in result.all()
    }


def may_read(role: str | None, caller_employee_id: int | None, kind: str, owner_id: int) -> bool:
    """Admins, managers and viewers read every owner's figures; an agent only their own as an employee."""
    if role in READING_ROLES:
        return True
    return role == "agent" and kind == EMPLOYEE and caller_employee_id == owner_id
