"""The one statement behind every performance figure (docs/performance.md).

`performance_statement` computes every figure of a page of owners (employees or teams) for a list
of periods in ONE statement: a `periods` row per period (one month, a range of months, or the twelve
months of a series), the owners' `spans` (who managed which customer when, from the assignment
history), and one aggregate per group of figures, joined on (owner, period).  The statement is
written as SQL text, one named part per group of figures, because docs/performance.md shows each
part as it runs: tests/domain/test_performance_docs.py checks that every part printed there is
the text `documented_parts` renders here.

Bound parameters only: the owners' ids (an expanding IN list), each period's bounds, the time of
the reading.  The only text put into the statement is chosen here (a column name per kind of owner,
a dialect's duration expression), never anything a caller sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, TextClause, bindparam, text

EMPLOYEE = "employee"
TEAM = "team"


@dataclass(frozen=True)
class OwnerKind:
    """What changes between an employee's figures and a team's: which column says who manages."""

    name: str
    table: str  # the owners' table (its monthly_target is the default target)
    history_before: str  # assignment_history column before a change
    history_after: str  # … and after it
    customer_column: str  # customers column holding the current owner
    target_column: str  # performance_targets column naming the owner
    assigned: str  # the owners' tasks: (task_id, owner_id) rows


KINDS = {
    EMPLOYEE: OwnerKind(
        EMPLOYEE, "employees", "manager_before_id", "manager_after_id", "manager_id", "employee_id",
        """assigned (task_id, owner_id) AS (
  SELECT t.id, t.employee_id FROM tasks t WHERE t.employee_id IN :owners
)""",
    ),
    TEAM: OwnerKind(
        TEAM, "teams", "team_before_id", "team_after_id", "team_id", "team_id",
        """assigned (task_id, owner_id) AS (
  SELECT t.id, t.team_id FROM tasks t WHERE t.team_id IN :owners
  UNION ALL
  SELECT t.id, m.team_id FROM tasks t JOIN team_members m ON m.employee_id = t.employee_id
  WHERE m.team_id IN :owners
)""",
    ),
}

# Seconds between a complaint's creation and its resolution, per dialect.
SECONDS = {
    "sqlite": "(julianday(f.resolved_at) - julianday(f.created_at)) * 86400.0",
    "postgresql": "EXTRACT(EPOCH FROM (f.resolved_at - f.created_at))",
}


@dataclass(frozen=True)
class PeriodBounds:
    """One period as the statement binds it: [start, end) in naive UTC, the start of the trailing 12
    months at its end, its first and last month ('YYYY-MM') and how many months it spans."""

    start: datetime
    end: datetime
    trailing_start: datetime
    first_month: str
    last_month: str
    months: int


# Columns of one result row, in order (after owner_id and period).
RESULT_COLUMNS = (
    "target",
    "revenue",
    "purchases",
    "customers_at_start",
    "customers_at_end",
    "customers_won",
    "customers_lost",
    "customers_retained",
    "survey_count",
    "survey_sum",
    "nps_count",
    "nps_promoters",
    "nps_detractors",
    "complaints_received",
    "complaints_resolved",
    "median_resolution_seconds",
    "interactions",
    "tasks_due",
    "tasks_done_on_time",
    "tasks_overdue",
)


_PERIOD_BINDS = ("start", "end", "trailing", "first", "last", "months")
_POSTGRES_CASTS = {
    "start": "TIMESTAMP",
    "end": "TIMESTAMP",
    "trailing": "TIMESTAMP",
    "first": "VARCHAR",
    "last": "VARCHAR",
    "months": "INTEGER",
}

def _periods_part(count: int, dialect: str) -> str:
    # PostgreSQL types a parameter from its context, and a bare SELECT list gives none: cast it there.
    casts = _POSTGRES_CASTS if dialect == "postgresql" else {}

    def bound(name: str, index: int) -> str:
        return f"CAST(:{name}_{index} AS {casts[name]})" if name in casts else f":{name}_{index}"

    rows = "\n  UNION ALL\n".join(
        f"  SELECT {index}, " + ", ".join(bound(name, index) for name in _PERIOD_BINDS)
        for index in range(count)
    )
    return f"periods (period, start_at, end_at, trailing_start, first_month, last_month, months) AS (\n{rows}\n)"


def _parts(kind: OwnerKind, dialect: str, period_count: int) -> list[tuple[str, str]]:
    """(name, SQL) of every common table expression of the statement, in order."""
    return [
        ("periods", _periods_part(period_count, dialect)),
        (
            "history",
            f"""history AS (
  SELECT h.customer_id, h.changed_at, h.{kind.history_before} AS owner_before, h.{kind.history_after} AS owner_after,
         LEAD(h.changed_at) OVER (PARTITION BY h.customer_id ORDER BY h.changed_at, h.id) AS next_at,
         ROW_NUMBER() OVER (PARTITION BY h.customer_id ORDER BY h.changed_at, h.id) AS position
  FROM assignment_history h
)""",
        ),
        (
            "spans",
            f"""spans (customer_id, owner_id, start_at, end_at) AS (
  SELECT customer_id, owner_after, changed_at, next_at FROM history WHERE owner_after IN :owners
  UNION ALL
  SELECT customer_id, owner_before, NULL, changed_at FROM history WHERE position = 1 AND owner_before IN :owners
  UNION ALL
  SELECT c.id, c.{kind.customer_column}, NULL, NULL FROM customers c
  WHERE c.{kind.customer_column} IN :owners
    AND NOT EXISTS (SELECT 1 FROM assignment_history h WHERE h.customer_id = c.id)
)""",
        ),
        (
            "targets",
            f"""targets AS (
  SELECT o.id AS owner_id, pe.period,
         CASE WHEN COUNT(t.id) = 0 AND o.monthly_target IS NULL THEN NULL
              ELSE COALESCE(SUM(t.amount), 0) + (pe.months - COUNT(t.id)) * COALESCE(o.monthly_target, 0)
         END AS target
  FROM {kind.table} o
  CROSS JOIN periods pe
  LEFT JOIN performance_targets t
    ON t.{kind.target_column} = o.id AND t.month >= pe.first_month AND t.month <= pe.last_month
  WHERE o.id IN :owners
  GROUP BY o.id, pe.period, pe.months, o.monthly_target
)""",
        ),
        (
            "sales",
            """sales AS (
  SELECT s.owner_id, pe.period, SUM(p.amount) AS revenue, COUNT(*) AS purchases
  FROM periods pe
  JOIN purchases p ON p.purchased_at >= pe.start_at AND p.purchased_at < pe.end_at
  JOIN spans s ON s.customer_id = p.customer_id
    AND (s.start_at IS NULL OR p.purchased_at >= s.start_at) AND (s.end_at IS NULL OR p.purchased_at < s.end_at)
  GROUP BY s.owner_id, pe.period
)""",
        ),
        (
            "ends",
            """ends AS (
  SELECT s.owner_id, pe.period, s.customer_id,
         MAX(CASE WHEN (s.start_at IS NULL OR s.start_at < pe.start_at)
                   AND (s.end_at IS NULL OR s.end_at >= pe.start_at) AND c.created_at < pe.start_at
                  THEN 1 ELSE 0 END) AS at_start,
         MAX(CASE WHEN (s.start_at IS NULL OR s.start_at < pe.end_at)
                   AND (s.end_at IS NULL OR s.end_at >= pe.end_at) AND c.created_at < pe.end_at
                  THEN 1 ELSE 0 END) AS at_end,
         MAX(CASE WHEN c.last_purchase_at IS NULL OR c.last_purchase_at < pe.trailing_start THEN 0
                  WHEN c.last_purchase_at < pe.end_at THEN 1
                  WHEN EXISTS (SELECT 1 FROM purchases p WHERE p.customer_id = s.customer_id
                                 AND p.purchased_at >= pe.trailing_start AND p.purchased_at < pe.end_at) THEN 1
                  ELSE 0 END) AS bought
  FROM periods pe
  JOIN spans s ON (s.start_at IS NULL OR s.start_at < pe.end_at) AND (s.end_at IS NULL OR s.end_at >= pe.start_at)
  JOIN customers c ON c.id = s.customer_id AND c.created_at < pe.end_at
  GROUP BY s.owner_id, pe.period, s.customer_id
)""",
        ),
        (
            "customers",
            """customers_moved AS (
  SELECT owner_id, period,
         SUM(at_start) AS customers_at_start,
         SUM(at_end) AS customers_at_end,
         SUM(CASE WHEN at_end = 1 AND at_start = 0 THEN 1 ELSE 0 END) AS customers_won,
         SUM(CASE WHEN at_start = 1 AND at_end = 0 THEN 1 ELSE 0 END) AS customers_lost,
         SUM(CASE WHEN at_start = 1 AND at_end = 1 AND bought = 1 THEN 1 ELSE 0 END) AS customers_retained
  FROM ends
  GROUP BY owner_id, period
)""",
        ),
        (
            "feedback",
            """voices AS (
  SELECT s.owner_id, pe.period,
         COUNT(CASE WHEN f.kind = 'survey' THEN f.score END) AS survey_count,
         SUM(CASE WHEN f.kind = 'survey' THEN f.score END) AS survey_sum,
         COUNT(CASE WHEN f.kind = 'nps' THEN f.score END) AS nps_count,
         COUNT(CASE WHEN f.kind = 'nps' AND f.score >= 9 THEN 1 END) AS nps_promoters,
         COUNT(CASE WHEN f.kind = 'nps' AND f.score <= 6 THEN 1 END) AS nps_detractors,
         COUNT(CASE WHEN f.kind = 'complaint' THEN 1 END) AS complaints_received
  FROM periods pe
  JOIN feedback f ON f.created_at >= pe.start_at AND f.created_at < pe.end_at
  JOIN spans s ON s.customer_id = f.customer_id
    AND (s.start_at IS NULL OR f.created_at >= s.start_at) AND (s.end_at IS NULL OR f.created_at < s.end_at)
  GROUP BY s.owner_id, pe.period
)""",
        ),
        (
            "resolutions",
            f"""resolutions AS (
  SELECT s.owner_id, pe.period, {SECONDS[dialect]} AS seconds
  FROM periods pe
  JOIN feedback f ON f.kind = 'complaint' AND f.resolved_at >= pe.start_at AND f.resolved_at < pe.end_at
  JOIN spans s ON s.customer_id = f.customer_id
    AND (s.start_at IS NULL OR f.resolved_at >= s.start_at) AND (s.end_at IS NULL OR f.resolved_at < s.end_at)
),
ranked_resolutions AS (
  SELECT owner_id, period, seconds,
         ROW_NUMBER() OVER (PARTITION BY owner_id, period ORDER BY seconds) AS position,
         COUNT(*) OVER (PARTITION BY owner_id, period) AS total
  FROM resolutions
),
resolved AS (
  SELECT owner_id, period, MAX(total) AS complaints_resolved, AVG(seconds) AS median_resolution_seconds
  FROM ranked_resolutions
  WHERE position IN ((total + 1) / 2, (total + 2) / 2)
  GROUP BY owner_id, period
)""",
        ),
        (
            "interactions",
            """contacts AS (
  SELECT s.owner_id, pe.period, COUNT(*) AS interactions
  FROM periods pe
  JOIN interactions i ON i.occurred_at >= pe.start_at AND i.occurred_at < pe.end_at
  JOIN spans s ON s.customer_id = i.customer_id
    AND (s.start_at IS NULL OR i.occurred_at >= s.start_at) AND (s.end_at IS NULL OR i.occurred_at < s.end_at)
  GROUP BY s.owner_id, pe.period
)""",
        ),
        (
            "tasks",
            kind.assigned
            + """,
follow_ups AS (
  SELECT a.owner_id, pe.period,
         COUNT(*) AS tasks_due,
         COUNT(CASE WHEN t.status = 'done' AND t.completed_at <= t.due_at THEN 1 END) AS tasks_done_on_time,
         COUNT(CASE WHEN t.due_at < :as_of
                     AND NOT (t.status = 'done' AND t.completed_at <= t.due_at) THEN 1 END) AS tasks_overdue
  FROM periods pe
  JOIN tasks t ON t.due_at >= pe.start_at AND t.due_at < pe.end_at AND t.status <> 'cancelled'
  JOIN assigned a ON a.task_id = t.id
  GROUP BY a.owner_id, pe.period
)""",
        ),
    ]


_FINAL = """SELECT g.owner_id, g.period, g.target,
       COALESCE(sa.revenue, 0) AS revenue, COALESCE(sa.purchases, 0) AS purchases,
       COALESCE(cm.customers_at_start, 0) AS customers_at_start, COALESCE(cm.customers_at_end, 0) AS customers_at_end,
       COALESCE(cm.customers_won, 0) AS customers_won, COALESCE(cm.customers_lost, 0) AS customers_lost,
       COALESCE(cm.customers_retained, 0) AS customers_retained,
       COALESCE(v.survey_count, 0) AS survey_count, v.survey_sum,
       COALESCE(v.nps_count, 0) AS nps_count, COALESCE(v.nps_promoters, 0) AS nps_promoters,
       COALESCE(v.nps_detractors, 0) AS nps_detractors, COALESCE(v.complaints_received, 0) AS complaints_received,
       COALESCE(r.complaints_resolved, 0) AS complaints_resolved, r.median_resolution_seconds,
       COALESCE(ct.interactions, 0) AS interactions,
       COALESCE(fu.tasks_due, 0) AS tasks_due, COALESCE(fu.tasks_done_on_time, 0) AS tasks_done_on_time,
       COALESCE(fu.tasks_overdue, 0) AS tasks_overdue
FROM targets g
LEFT JOIN sales sa ON sa.owner_id = g.owner_id AND sa.period = g.period
LEFT JOIN customers_moved cm ON cm.owner_id = g.owner_id AND cm.period = g.period
LEFT JOIN voices v ON v.owner_id = g.owner_id AND v.period = g.period
LEFT JOIN resolved r ON r.owner_id = g.owner_id AND r.period = g.period
LEFT JOIN contacts ct ON ct.owner_id = g.owner_id AND ct.period = g.period
LEFT JOIN follow_ups fu ON fu.owner_id = g.owner_id AND fu.period = g.period
ORDER BY g.owner_id, g.period"""


def statement_text(kind: str, dialect: str, period_count: int) -> str:
    """The statement's SQL text for `period_count` periods of owners of `kind` on `dialect`."""
    parts = _parts(KINDS[kind], dialect, period_count)
    return "WITH " + ",\n".join(sql for _, sql in parts) + "\n" + _FINAL


def documented_parts(kind: str = EMPLOYEE, dialect: str = "sqlite") -> dict[str, str]:
    """Each named part of the one-period statement (and `final`), as docs/performance.md prints them."""
    parts = dict(_parts(KINDS[kind], dialect, 1))
    parts["final"] = _FINAL
    return parts


def performance_statement(
    kind: str, dialect: str, owner_ids: Sequence[int], periods: Sequence[PeriodBounds], as_of: datetime
) -> TextClause:
    """Every figure of `owner_ids` for every period: one row per (owner, period), RESULT_COLUMNS after them."""
    sql = statement_text(kind, dialect, len(periods))
    binds: list[Any] = [
        bindparam("owners", list(owner_ids), expanding=True, type_=Integer),
        bindparam("as_of", as_of, type_=DateTime),
    ]
    for index, period in enumerate(periods):
        binds += [
            bindparam(f"start_{index}", period.start, type_=DateTime),
            bindparam(f"end_{index}", period.end, type_=DateTime),
            bindparam(f"trailing_{index}", period.trailing_start, type_=DateTime),
            bindparam(f"first_{index}", period.first_month, type_=String),
            bindparam(f"last_{index}", period.last_month, type_=String),
            bindparam(f"months_{index}", period.months, type_=Integer),
        ]
    return text(sql).bindparams(*binds)
