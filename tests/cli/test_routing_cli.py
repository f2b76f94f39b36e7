"""`segmenta preview FILE` and `segmenta apply FILE` on a SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from segmenta.cli import main
from segmenta.storage.engine import create_engine, session_factory
from segmenta.storage.migrate import upgrade
from segmenta.storage.models import Customer, EvaluationRun, RulesetVersion, Team

RULES = "big: total_spent >= 1000 -> team senior\notherwise -> team general\n"


async def _prepare(url: str) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    async with session_factory(engine)() as session:
        general = Team(key="general", name="General")
        session.add_all([Team(key="senior", name="Senior", strategy="manual"), general])
        await session.flush()
        for index in range(4):
            session.add(Customer(code=f"c{index}", name=f"C{index}", total_spent=index * 600.0, team_id=general.id))
        await session.commit()
    await engine.dispose()


async def _query(url: str, statement: object) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    async with session_factory(engine)() as session:
        rows = [tuple(row) for row in (await session.execute(statement)).all()]  # type: ignore[arg-type]
    await engine.dispose()
    return rows


def _setup(tmp_path: Path, source: str = RULES) -> tuple[str, Path]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    asyncio.run(_prepare(url))
    rules = tmp_path / "policy.seg"
    rules.write_text(source, encoding="utf-8")
    return url, rules


def test_preview_prints_moves_and_changes_nothing(tmp_path: Path) -> None:
    url, rules = _setup(tmp_path)
    result = CliRunner().invoke(main, ["preview", str(rules), "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "4 evaluated, 2 would change" in result.output
    assert "general" in result.output and "senior" in result.output
    teams = asyncio.run(_query(url, select(Customer.code, Customer.team_id).order_by(Customer.code)))
    assert len({team for _, team in teams}) == 1  # everyone still in general
    assert asyncio.run(_query(url, select(RulesetVersion.name, RulesetVersion.status))) == [("policy", "draft")]


def test_apply_activates_routes_and_a_second_apply_reuses_the_version(tmp_path: Path) -> None:
    url, rules = _setup(tmp_path)
    runner = CliRunner()
    first = runner.invoke(main, ["apply", str(rules), "--database-url", url])
    assert first.exit_code == 0, first.output
    assert "4 evaluated, 2 changed" in first.output
    teams = dict(asyncio.run(_query(url, select(Customer.code, Team.key).join(Team, Team.id == Customer.team_id))))
    assert teams == {"c0": "general", "c1": "general", "c2": "senior", "c3": "senior"}
    second = runner.invoke(main, ["apply", str(rules), "--database-url", url])
    assert second.exit_code == 0 and "0 changed" in second.output
    assert asyncio.run(_query(url, select(RulesetVersion.version, RulesetVersion.status))) == [(1, "active")]
    assert asyncio.run(_query(url, select(func.count()).select_from(EvaluationRun))) == [(2,)]


def test_a_file_with_errors_exits_1_with_located_diagnostics_and_saves_nothing(tmp_path: Path) -> None:
    url, rules = _setup(tmp_path, "r: size > 5 -> team nowhere\n")
    result = CliRunner().invoke(main, ["apply", str(rules), "--database-url", url])
    assert result.exit_code == 1
    assert "policy.seg:1:" in result.output and "unknown-team" in result.output
    assert asyncio.run(_query(url, select(func.count()).select_from(RulesetVersion))) == [(0,)]
