"""`segmenta report performance --month YYYY-MM [--team KEY] [--format table|csv|json]`: the month's
league table per team (docs/performance.md, "Periodic review"), with the level the promotion policy
suggests for each employee.  Reads only; nobody is promoted.  The operator of the command line acts
as an admin.  Exit status: 0 printed, 1 bad month or team, 2 the database cannot be used.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from typing import Any

import click
from rich.console import Console

from segmenta.cli.app import main
from segmenta.cli.routing import database_option
from segmenta.cli.rules import EXIT_ERRORS, EXIT_OK, EXIT_UNUSABLE
from segmenta.domain.access.tokens import OPERATOR
from segmenta.domain.errors import UserError
from segmenta.domain.staff.performance import Performance
from segmenta.domain.staff.review import TeamReview, performance_review, review_policy
from segmenta.dsl.money import plain
from segmenta.storage.engine import create_engine, session_factory
from segmenta.storage.migrate import upgrade
from segmenta.storage.models import utcnow

err = Console(stderr=True, highlight=False, soft_wrap=True)

COLUMNS = (
    "team",
    "rank",
    "employee",
    "email",
    "level",
    "revenue",
    "target",
    "attainment_pct",
    "customers_won",
    "customers_lost",
    "retention_pct",
    "satisfaction",
    "nps",
    "complaints_received",
    "complaints_resolved",
    "median_resolution_hours",
    "interactions",
    "tasks_due",
    "tasks_done_on_time",
    "tasks_overdue",
    "suggested_level",
    "reason",
)


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def _rounded(value: float | None, places: int = 2) -> float | None:
    return None if value is None else round(value, places)


def _figures(performance: Performance) -> dict[str, Any]:
    return {
        "revenue": plain(performance.revenue),
        "target": None if performance.target is None else plain(performance.target),
        "attainment_pct": _percent(performance.attainment),
        "customers_won": performance.customers_won,
        "customers_lost": performance.customers_lost,
        "retention_pct": _percent(performance.retention_rate),
        "satisfaction": _rounded(performance.average_satisfaction),
        "nps": _rounded(performance.nps, 1),
        "complaints_received": performance.complaints_received,
        "complaints_resolved": performance.complaints_resolved,
        "median_resolution_hours": _rounded(performance.median_resolution_hours, 1),
        "interactions": performance.interactions,
        "tasks_due": performance.tasks_due,
        "tasks_done_on_time": performance.tasks_done_on_time,
        "tasks_overdue": performance.tasks_overdue,
    }


def rows_of(reviews: list[TeamReview]) -> list[dict[str, Any]]:
    """One flat row per (team, member), in COLUMNS order."""
    rows = []
    for review in reviews:
        for row in review.rows:
            values = {
                "team": review.team.key,
                "rank": row.rank,
                "employee": row.employee.name,
                "email": row.employee.email,
                "level": row.employee.level,
                **_figures(row.performance),
                "suggested_level": row.suggested_level,
                "reason": row.reason,
            }
            rows.append({column: values[column] for column in COLUMNS})
    return rows


def as_json(month: str, policy: str, reviews: list[TeamReview]) -> str:
    flat = rows_of(reviews)
    teams = [
        {
            "team": review.team.key,
            "name": review.team.name,
            "figures": None if review.performance is None else _figures(review.performance),
            "rows": [{k: v for k, v in row.items() if k != "team"} for row in flat if row["team"] == review.team.key],
        }
        for review in reviews
    ]
    return json.dumps({"month": month, "policy": policy, "teams": teams}, ensure_ascii=False, indent=2)


def as_csv(reviews: list[TeamReview]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows_of(reviews):
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


def as_table(month: str, policy: str, reviews: list[TeamReview]) -> str:
    shown = ("rank", "employee", "level", "revenue", "target", "attainment_pct", "customers_won", "customers_lost",
             "retention_pct", "satisfaction", "nps", "complaints_received", "tasks_overdue", "suggested_level")
    headers = ("#", "employee", "level", "revenue", "target", "attain%", "won", "lost", "retain%", "sat", "nps",
               "compl", "overdue", "suggest")
    lines = [f"Performance review {month} — policy: {policy}"]
    flat = rows_of(reviews)
    for review in reviews:
        lines.append("")
        team_line = f"{review.team.key} ({review.team.name})"
        if review.performance is not None:
            figures = _figures(review.performance)
            team_line += f": revenue {figures['revenue']}, target {_cell(figures['target'])}, attainment {_cell(figures['attainment_pct'])}%"
        lines.append(team_line)
        cells = [[_cell(row[column]) for column in shown] for row in flat if row["team"] == review.team.key]
        widths = [max([len(header), *(len(line[i]) for line in cells)]) for i, header in enumerate(headers)]
        lines.append("  ".join(header.ljust(width) for header, width in zip(headers, widths, strict=True)).rstrip())
        for line in cells:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if not cells:
            lines.append("(no members)")
    return "\n".join(lines) + "\n"


async def _review(month: str, team: str | None, database_url: str | None) -> tuple[str, list[TeamReview]]:
    policy = review_policy()
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            reviews = await performance_review(session, OPERATOR, month, utcnow(), team_key=team, policy=policy)
            return policy.describe(), reviews
    finally:
        await engine.dispose()


@main.group()
def report() -> None:
    """Reports over the data (read only)."""


@report.command()
@click.option("--month", required=True, help="The month to review, YYYY-MM (UTC).")
@click.option("--team", default=None, help="Only this team (its key).")
@click.option(
    "--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
    help="How to print the league tables.",
)
@database_option
def performance(month: str, team: str | None, output_format: str, database_url: str | None) -> None:
    """Print the month's league table of each team, with the level the promotion policy suggests."""
    try:
        policy, reviews = asyncio.run(_review(month, team, database_url))
    except UserError as error:
        err.print(f"error: {error.message}", markup=False)
        sys.exit(EXIT_ERRORS)
    except Exception as error:  # the database cannot be reached or used
        err.print(f"error: {type(error).__name__}: {error}", markup=False)
        sys.exit(EXIT_UNUSABLE)
    if output_format == "json":
        text = as_json(month, policy, reviews) + "\n"
    elif output_format == "csv":
        text = as_csv(reviews)
    else:
        text = as_table(month, policy, reviews)
    sys.stdout.write(text)
    sys.stdout.flush()
    sys.exit(EXIT_OK)
