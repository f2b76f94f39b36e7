"""The one statement behind the performance figures (docs/performance.md).

`performance_statement` computes the figures of a page of owners (employees or teams) for a list of
periods in ONE statement: a `periods` row per period (one month, a range of months, or the twelve
months of a series) and one part per group of figures, joined on (owner, period).  A caller names
the groups it needs (GROUPS; the API derives them from the fields a query selects), and the
statement holds only their parts: revenue and attainment alone never pay for retention.

Who owned a customer when: an event (a purchase, a survey, a complaint or its resolution, an
interaction) belongs to the owner at its instant, looked up per event in the assignment history
(`owned`); the customer counts (at the start, at the end, won, lost, retained) walk each owner's
`spans` of ownership.  The statement is SQL text, one named part per group, because
docs/performance.md shows each part as it runs: tests/domain/test_performance_docs.py checks that
every part printed there is the text `documented_parts` renders here.

Bound parameters only: the owners' ids (an expanding IN list), each period's bounds, the time of
the reading.  The only text put into the statement is chosen here (a column name per kind of owner,
a dialect's duration expression, the parts of the groups asked for), never anything a caller sent.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, TextClause, bindparam, text

EMPLOYEE = "employee"
TEAM = "team"

# Groups of figures, each computed by its own parts of the statement (the target always is).
SALES = "sales"  # revenue, purchases
CUSTOMERS = "customers"  # at start, at end, won, lost, retained
FEEDBACK = "feedback"  # surveys, NPS, complaints received
RESOLUTIONS = "resolutions"  # complaints resolved, median resolution time
INTERACTIONS = "interactions"
TASKS = "tasks"  # due, done on time, overdue
GROUPS = (SALES, CUSTOMERS, FEEDBACK, RESOLUTIONS, INTERACTIONS, TASKS)
# The groups whose figures count events, each event belonging to the owner at its instant.
EVENT_GROUPS = (SALES, FEEDBACK, RESOLUTIONS, INTERACTIONS)


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


def _targets_part(kind: OwnerKind) -> str:
    return f"""targets AS (
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
)"""


# The events of each group: (period, customer_id, at, what, amount, score, seconds).
_EVENTS = {
    SALES: """  SELECT pe.period, p.customer_id, p.purchased_at, 'purchase', p.amount, CAST(NULL AS FLOAT), CAST(NULL AS FLOAT)
  FROM periods pe
  JOIN purchases p ON p.purchased_at >= pe.start_at AND p.purchased_at < pe.end_at""",
    FEEDBACK: """  SELECT pe.period, f.customer_id, f.created_at, f.kind, CAST(NULL AS BIGINT), f.score, CAST(NULL AS FLOAT)
  FROM periods pe
  JOIN feedback f ON f.created_at >= pe.start_at AND f.created_at < pe.end_at
    AND f.kind IN ('survey', 'nps', 'complaint')""",
    RESOLUTIONS: """  SELECT pe.period, f.customer_id, f.resolved_at, 'resolution', CAST(NULL AS BIGINT), CAST(NULL AS FLOAT), {seconds}
  FROM periods pe
  JOIN feedback f ON f.kind = 'complaint' AND f.resolved_at >= pe.start_at AND f.resolved_at < pe.end_at""",
    INTERACTIONS: """  SELECT pe.period, i.customer_id, i.occurred_at, 'interaction', CAST(NULL AS BIGINT), CAST(NULL AS FLOAT), CAST(NULL AS FLOAT)
  FROM periods pe
  JOIN interactions i ON i.occurred_at >= pe.start_at AND i.occurred_at < pe.end_at""",
}


def _events_part(groups: Sequence[str], dialect: str) -> str:
    branches = "\n  UNION ALL\n".join(_EVENTS[group].format(seconds=SECONDS[dialect]) for group in groups)
    return f"events (period, customer_id, at, what, amount, score, seconds) AS (\n{branches}\n)"


def _owned_part(kind: OwnerKind) -> str:
    # Not filtered by :owners here or after: PostgreSQL would evaluate the lookups twice (in the filter and
    # in the output); the final join on `targets` keeps the owners asked for.  The owner at instant `at`: the "before" of the customer's first change after it, else (no change
    # since) the owner on the customer's row.  0 stands for "nobody" (ids start at 1), so that COALESCE
    # moves on only when no change was found.
    return f"""owned (owner_id, period, what, amount, score, seconds) AS (
  SELECT COALESCE(
           (SELECT COALESCE(h.{kind.history_before}, 0) FROM assignment_history h
            WHERE h.customer_id = e.customer_id AND h.changed_at > e.at
            ORDER BY h.changed_at, h.id LIMIT 1),
           (SELECT COALESCE(c.{kind.customer_column}, 0) FROM customers c WHERE c.id = e.customer_id)),
         e.period, e.what, e.amount, e.score, e.seconds
  FROM events e
)"""


_ACTIVITY_COLUMNS = {
    SALES: """         SUM(CASE WHEN what = 'purchase' THEN amount END) AS revenue,
         COUNT(CASE WHEN what = 'purchase' THEN 1 END) AS purchases""",
    FEEDBACK: """         COUNT(CASE WHEN what = 'survey' THEN score END) AS survey_count,
         SUM(CASE WHEN what = 'survey' THEN score END) AS survey_sum,
         COUNT(CASE WHEN what = 'nps' THEN score END) AS nps_count,
         COUNT(CASE WHEN what = 'nps' AND score >= 9 THEN 1 END) AS nps_promoters,
         COUNT(CASE WHEN what = 'nps' AND score <= 6 THEN 1 END) AS nps_detractors,
         COUNT(CASE WHEN what = 'complaint' THEN 1 END) AS complaints_received""",
    INTERACTIONS: """         COUNT(CASE WHEN what = 'interaction' THEN 1 END) AS interactions""",
}


def _activity_part(groups: Sequence[str]) -> str:
    columns = ",\n".join(_ACTIVITY_COLUMNS[group] for group in groups if group in _ACTIVITY_COLUMNS)
    return f"""activity AS (
  SELECT owner_id, period,
{columns}
  FROM owned
  GROUP BY owner_id, period
)"""


_RESOLVED_PART = """ranked_resolutions AS (
  SELECT owner_id, period, seconds,
         ROW_NUMBER() OVER (PARTITION BY owner_id, period ORDER BY seconds) AS position,
         COUNT(*) OVER (PARTITION BY owner_id, period) AS total
  FROM owned
  WHERE what = 'resolution'
),
resolved AS (
  SELECT owner_id, period, MAX(total) AS complaints_resolved, AVG(seconds) AS median_resolution_seconds
  FROM ranked_resolutions
  WHERE position IN ((total + 1) / 2, (total + 2) / 2)
  GROUP BY owner_id, period
)"""


def _customer_parts(kind: OwnerKind) -> list[tuple[str, str]]:
    column = kind.customer_column
    return [
        (
            "moved",
            """moved AS (
  SELECT h.customer_id, MAX(h.changed_at) AS last_at FROM assignment_history h
  WHERE h.changed_at >= :moved_since
  GROUP BY h.customer_id
)""",
        ),
        (
            "moves",
            f"""moves AS (
  SELECT pe.period, c.id AS customer_id, c.created_at, c.last_purchase_at, pe.start_at, pe.end_at, pe.trailing_start,
         COALESCE(
           (SELECT COALESCE(h.{kind.history_before}, 0) FROM assignment_history h
            WHERE h.customer_id = c.id AND h.changed_at >= pe.start_at ORDER BY h.changed_at, h.id LIMIT 1),
           COALESCE(c.{column}, 0)) AS owner_at_start,
         COALESCE(
           (SELECT COALESCE(h.{kind.history_before}, 0) FROM assignment_history h
            WHERE h.customer_id = c.id AND h.changed_at >= pe.end_at ORDER BY h.changed_at, h.id LIMIT 1),
           COALESCE(c.{column}, 0)) AS owner_at_end
  FROM periods pe
  JOIN moved m ON m.last_at >= pe.start_at
  JOIN customers c ON c.id = m.customer_id AND c.created_at < pe.end_at
)""",
        ),
        (
            "ends",
            f"""ends (owner_id, period, customer_id, last_purchase_at, end_at, trailing_start, at_start, at_end) AS (
  SELECT c.{column}, pe.period, c.id, c.last_purchase_at, pe.end_at, pe.trailing_start,
         CASE WHEN c.created_at < pe.start_at THEN 1 ELSE 0 END, 1
  FROM periods pe
  JOIN customers c ON c.{column} IN :owners AND c.created_at < pe.end_at
  LEFT JOIN moved m ON m.customer_id = c.id
  WHERE m.last_at IS NULL OR m.last_at < pe.start_at
  UNION ALL
  SELECT owner_at_start, period, customer_id, last_purchase_at, end_at, trailing_start,
         CASE WHEN created_at < start_at THEN 1 ELSE 0 END,
         CASE WHEN owner_at_end = owner_at_start THEN 1 ELSE 0 END
  FROM moves WHERE owner_at_start IN :owners AND created_at < start_at
  UNION ALL
  SELECT owner_at_end, period, customer_id, last_purchase_at, end_at, trailing_start, 0, 1
  FROM moves WHERE owner_at_end IN :owners AND (owner_at_end <> owner_at_start OR created_at >= start_at)
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
         SUM(CASE WHEN at_start = 1 AND at_end = 1
                   AND last_purchase_at >= trailing_start
                   AND (last_purchase_at < end_at
                        OR EXISTS (SELECT 1 FROM purchases p WHERE p.customer_id = ends.customer_id
                                     AND p.purchased_at >= trailing_start AND p.purchased_at < end_at))
                  THEN 1 ELSE 0 END) AS customers_retained
  FROM ends
  GROUP BY owner_id, period
)""",
        ),
    ]


def _tasks_part(kind: OwnerKind) -> str:
    return (
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
)"""
    )


def _parts(kind: OwnerKind, dialect: str, period_count: int, groups: Collection[str]) -> list[tuple[str, str]]:
    """(name, SQL) of every common table expression of the statement for `groups`, in order."""
    chosen = [group for group in GROUPS if group in groups]
    events = [group for group in EVENT_GROUPS if group in chosen]
    parts = [("periods", _periods_part(period_count, dialect)), ("targets", _targets_part(kind))]
    if events:
        parts += [("events", _events_part(events, dialect)), ("owned", _owned_part(kind))]
        if any(group in _ACTIVITY_COLUMNS for group in events):
            parts.append(("activity", _activity_part(events)))
        if RESOLUTIONS in events:
            parts.append(("resolutions", _RESOLVED_PART))
    if CUSTOMERS in chosen:
        parts += _customer_parts(kind)
    if TASKS in chosen:
        parts.append(("tasks", _tasks_part(kind)))
    return parts


# Each result column: (group, the expression reading it, its value when the group is not computed).
_COLUMNS = (
    ("target", None, "g.target", ""),
    ("revenue", SALES, "COALESCE(a.revenue, 0)", "0"),
    ("purchases", SALES, "COALESCE(a.purchases, 0)", "0"),
    ("customers_at_start", CUSTOMERS, "COALESCE(cm.customers_at_start, 0)", "0"),
    ("customers_at_end", CUSTOMERS, "COALESCE(cm.customers_at_end, 0)", "0"),
    ("customers_won", CUSTOMERS, "COALESCE(cm.customers_won, 0)", "0"),
    ("customers_lost", CUSTOMERS, "COALESCE(cm.customers_lost, 0)", "0"),
    ("customers_retained", CUSTOMERS, "COALESCE(cm.customers_retained, 0)", "0"),
    ("survey_count", FEEDBACK, "COALESCE(a.survey_count, 0)", "0"),
    ("survey_sum", FEEDBACK, "a.survey_sum", "NULL"),
    ("nps_count", FEEDBACK, "COALESCE(a.nps_count, 0)", "0"),
    ("nps_promoters", FEEDBACK, "COALESCE(a.nps_promoters, 0)", "0"),
    ("nps_detractors", FEEDBACK, "COALESCE(a.nps_detractors, 0)", "0"),
    ("complaints_received", FEEDBACK, "COALESCE(a.complaints_received, 0)", "0"),
    ("complaints_resolved", RESOLUTIONS, "COALESCE(r.complaints_resolved, 0)", "0"),
    ("median_resolution_seconds", RESOLUTIONS, "r.median_resolution_seconds", "NULL"),
    ("interactions", INTERACTIONS, "COALESCE(a.interactions, 0)", "0"),
    ("tasks_due", TASKS, "COALESCE(fu.tasks_due, 0)", "0"),
    ("tasks_done_on_time", TASKS, "COALESCE(fu.tasks_done_on_time, 0)", "0"),
    ("tasks_overdue", TASKS, "COALESCE(fu.tasks_overdue, 0)", "0"),
)
RESULT_COLUMNS = tuple(name for name, *_ in _COLUMNS)


def _final(groups: Collection[str]) -> str:
    columns = ",\n       ".join(
        (expression if group is None or group in groups else absent) + ("" if group is None else f" AS {name}")
        for name, group, expression, absent in _COLUMNS
    )
    joins = []
    if any(group in groups for group in (SALES, FEEDBACK, INTERACTIONS)):
        joins.append("LEFT JOIN activity a ON a.owner_id = g.owner_id AND a.period = g.period")
    if CUSTOMERS in groups:
        joins.append("LEFT JOIN customers_moved cm ON cm.owner_id = g.owner_id AND cm.period = g.period")
    if RESOLUTIONS in groups:
        joins.append("LEFT JOIN resolved r ON r.owner_id = g.owner_id AND r.period = g.period")
    if TASKS in groups:
        joins.append("LEFT JOIN follow_ups fu ON fu.owner_id = g.owner_id AND fu.period = g.period")
    return "\n".join([f"SELECT g.owner_id, g.period,\n       {columns}", "FROM targets g", *joins, "ORDER BY g.owner_id, g.period"])


def statement_text(kind: str, dialect: str, period_count: int, groups: Collection[str] = GROUPS) -> str:
    """The statement's SQL text for `period_count` periods of owners of `kind` on `dialect`."""
    parts = _parts(KINDS[kind], dialect, period_count, groups)
    return "WITH " + ",\n".join(sql for _, sql in parts) + "\n" + _final(groups)


def documented_parts(kind: str = EMPLOYEE, dialect: str = "sqlite") -> dict[str, str]:
    """Each named part of the one-period statement of every group (and `final`), as docs/performance.md prints them."""
    parts = dict(_parts(KINDS[kind], dialect, 1, GROUPS))
    parts["final"] = _final(GROUPS)
    return parts


def performance_statement(
    kind: str,
    dialect: str,
    owner_ids: Sequence[int],
    periods: Sequence[PeriodBounds],
    as_of: datetime,
    groups: Collection[str] = GROUPS,
) -> TextClause:
    """The figures of `groups` of `owner_ids` for every period: one row per (owner, period), RESULT_COLUMNS
    after them (a group not asked for reads 0 or NULL)."""
    unknown = set(groups) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown groups of figures: {sorted(unknown)}")
    sql = statement_text(kind, dialect, len(periods), groups)
    binds: list[Any] = [bindparam("owners", list(owner_ids), expanding=True, type_=Integer)]
    if TASKS in groups:
        binds.append(bindparam("as_of", as_of, type_=DateTime))
    if CUSTOMERS in groups:
        # The earliest period's start, bound rather than read from `periods`: the planner then sees how
        # few changes follow it.
        binds.append(bindparam("moved_since", min(period.start for period in periods), type_=DateTime))
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
