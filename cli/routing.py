"""Routing commands: `segmenta preview FILE` and `segmenta apply FILE`.

Both check the file against the database (exit 1 with the rendered diagnostics
when it has errors), store it as a ruleset named after the file stem (a new
version only when the text changed), run, show progress on stderr and print a
summary with the team moves on stdout.  `apply` also activates the ruleset.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.cli.app import main
from segmenta.cli.rules import EXIT_ERRORS, EXIT_OK, EXIT_UNUSABLE, read_rules
from segmenta.domain.errors import UserError
from segmenta.domain.event_relay import EventRelay
from segmenta.domain.routing import rulesets
from segmenta.domain.routing.run_plan import RunProgress
from segmenta.domain.routing.run_tasks import run_owned
from segmenta.dsl.render import render
from segmenta.storage.engine import begin_writer, create_engine, is_private_memory, session_factory
from segmenta.storage.migrate import upgrade
from segmenta.storage.models import EvaluationRun, RulesetVersion

STEP_TITLES = {
    "evaluate": "evaluating customers",
    "compare": "comparing with stored state",
    "assign": "assigning managers",
    "write": "writing changes",
}

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class RunProgressBar:
    """A rich progress bar with one line per run step, fed by domain.routing.runs' progress callback."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, update: RunProgress) -> None:
        if update.step not in STEP_TITLES:
            return
        task = self.tasks.get(update.step)
        if task is None:
            task = self.progress.add_task(STEP_TITLES[update.step], total=max(update.total, 1))
            self.tasks[update.step] = task
        self.progress.update(task, completed=update.done, total=max(update.total, 1))


async def _ruleset_for(session: AsyncSession, name: str, source: str) -> RulesetVersion:
    """The newest version of `name` when its text is `source`, else a new version."""
    versions = await rulesets.list_rulesets(session, name=name)
    newest = max(versions, key=lambda ruleset: ruleset.version, default=None)
    if newest is not None and newest.source == source:
        await rulesets.refresh_diagnostics(session, newest)
        return newest
    return await rulesets.save_ruleset(session, name, source)


async def _run(
    file: str, source: str, database_url: str | None, mode: str, as_of: datetime | None
) -> tuple[EvaluationRun | None, int]:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        async with session_factory(engine)() as session:
            result = await rulesets.check_rules(session, source)
            await session.commit()
            if result.diagnostics:
                err.print(render(result.diagnostics, source, file, color=err.is_terminal), end="", markup=False)
            if not result.ok:
                return None, EXIT_ERRORS
            # Reads, then saves and activates: a writer from the start, so a server writing on the same
            # SQLite file meanwhile makes it wait rather than fail with "database is locked".
            await begin_writer(session)
            ruleset = await _ruleset_for(session, Path(file).stem, source)
            if mode == "apply":
                await rulesets.activate_ruleset(session, ruleset.id)
            await session.commit()
            err.print(f"ruleset {ruleset.name} v{ruleset.version} ({ruleset.status})", markup=False)
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as progress:
                bar = RunProgressBar(progress)
                # The servers on this database tell their subscribers of the run, as if one of them ran it.
                relay = None if is_private_memory(engine.url) else EventRelay(engine)
                if relay is not None:
                    await relay.start()
                try:
                    # Heartbeating as this process: a server does not take a long run for a dead one's.
                    run = await run_owned(session, mode, ruleset.id, as_of=as_of, progress=bar)
                finally:
                    if relay is not None:
                        await relay.stop()  # sends what is still waiting, the run's last event included
            return run, EXIT_OK if run.status == "succeeded" else EXIT_ERRORS
    finally:
        await engine.dispose()


def print_summary(run: EvaluationRun) -> None:
    summary = run.summary or {}
    verb = "would change" if run.mode == "preview" else "changed"
    out.print(
        f"run {run.id} ({run.mode}, as of {run.as_of:%Y-%m-%d %H:%M}): {summary.get('evaluated', 0)} evaluated, "
        f"{summary.get('changed', 0)} {verb}, {summary.get('unmatched', 0)} unmatched, "
        f"{summary.get('locked', 0)} locked",
        markup=False,
    )
    moves = summary.get("moves") or []
    if moves:
        table = Table(title="team moves", title_justify="left")
        table.add_column("from")
        table.add_column("to")
        table.add_column("customers", justify="right")
        for move in moves:
            table.add_row(move["from"] or "(none)", move["to"] or "(none)", str(move["count"]))
        out.print(table)
    else:
        out.print("no customer changes team", markup=False)
    hits = summary.get("rule_hits") or {}
    if hits:
        table = Table(title="deciding rules", title_justify="left")
        table.add_column("rule")
        table.add_column("customers", justify="right")
        for label, count in hits.items():
            table.add_row(label, str(count))
        out.print(table)
    for team, count in (summary.get("unassigned_by_team") or {}).items():
        out.print(f"warning: {count} customer(s) of team {team} have no manager (no member with capacity)", markup=False)


def _execute(file: str, database_url: str | None, mode: str, as_of: datetime | None) -> None:
    source = read_rules(file)
    try:
        run, status = asyncio.run(_run(file, source, database_url, mode, as_of))
    except UserError as error:
        err.print(f"error: {error.message}", markup=False)
        sys.exit(EXIT_ERRORS)
    except Exception as error:  # the database cannot be reached or used
        err.print(f"error: {type(error).__name__}: {error}", markup=False)
        sys.exit(EXIT_UNUSABLE)
    if run is not None:
        if run.status == "failed":
            err.print(f"error: run {run.id} failed and changed nothing: {run.error}", markup=False)
        else:
            print_summary(run)
    sys.exit(status)


file_argument = click.argument("file", type=click.Path(dir_okay=False))
database_option = click.option(
    "--database-url", default=None, help="Database to use (default: SEGMENTA_DATABASE_URL, else ./segmenta.db)."
)
as_of_option = click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    default=None,
    help="Measure day-based metrics at this UTC instant (default: now).",
)


@main.command()
@file_argument
@database_option
@as_of_option
def preview(file: str, database_url: str | None, as_of: datetime | None) -> None:
    """Evaluate a rule file against every customer and show what would change; changes nothing."""
    _execute(file, database_url, "preview", as_of)


@main.command()
@file_argument
@database_option
@as_of_option
def apply(file: str, database_url: str | None, as_of: datetime | None) -> None:
    """Save and activate a rule file, then route every customer with it (one transaction)."""
    _execute(file, database_url, "apply", as_of)
