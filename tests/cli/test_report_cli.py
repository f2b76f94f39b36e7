"""`segmenta report performance` on a SQLite file holding the hand-computed dataset
(tests/domain/performance_data.py): the league table as table, CSV and JSON, and its errors."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from segmenta.cli import main
from segmenta.storage.engine import create_engine, session_factory
from segmenta.storage.migrate import upgrade
from segmenta.storage.models import TeamMember
from tests.domain import performance_data


async def _prepare(url: str) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    async with session_factory(engine)() as session:
        ids = await performance_data.build(session)
        session.add_all([TeamMember(team_id=ids["T1"], employee_id=ids["A"]), TeamMember(team_id=ids["T1"], employee_id=ids["B"])])
        await session.commit()
    await engine.dispose()


def test_the_league_table_in_three_formats(tmp_path: Path, monkeypatch: object) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'report.db'}"
    asyncio.run(_prepare(url))
    runner = CliRunner()
    base = ["report", "performance", "--month", "2026-11", "--database-url", url]

    result = runner.invoke(main, [*base, "--format", "csv", "--team", "t1"], env={"SEGMENTA_REVIEW_MONTHS": "1", "SEGMENTA_REVIEW_SATISFACTION": "3.5"})
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["rank"], row["email"], row["revenue"], row["target"], row["attainment_pct"], row["suggested_level"]) for row in rows] == [
        ("1", "a@example.com", "550.00", "500.00", "110.0", "senior"),
        ("2", "b@example.com", "110.00", "", "", ""),
    ]
    assert rows[0]["retention_pct"] == "50.0" and rows[0]["median_resolution_hours"] == "24.0"

    result = runner.invoke(main, [*base, "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["month"] == "2026-11" and "3 months" in report["policy"]
    assert [team["team"] for team in report["teams"]] == ["t1", "t2"]
    assert report["teams"][0]["figures"]["revenue"] == "550.00"
    assert [row["suggested_level"] for row in report["teams"][0]["rows"]] == [None, None]
    assert report["teams"][1]["rows"] == []

    result = runner.invoke(main, base)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Performance review 2026-11 — policy: attainment ≥ 100%")
    assert "t1 (T1): revenue 550.00, target 5000.00, attainment 11.0%" in lines
    assert any(line.startswith("1  Alice A") and "550.00" in line for line in lines)


def test_bad_month_team_or_setting(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'report.db'}"
    asyncio.run(_prepare(url))
    runner = CliRunner()
    result = runner.invoke(main, ["report", "performance", "--month", "2026-13", "--database-url", url])
    assert result.exit_code == 1 and "month must be a month written YYYY-MM" in result.stderr
    result = runner.invoke(main, ["report", "performance", "--month", "2026-11", "--team", "nope", "--database-url", url])
    assert result.exit_code == 1 and "team 'nope' does not exist" in result.stderr
    result = runner.invoke(
        main, ["report", "performance", "--month", "2026-11", "--database-url", url], env={"SEGMENTA_REVIEW_MONTHS": "13"}
    )
    assert result.exit_code == 1 and "SEGMENTA_REVIEW_MONTHS" in result.stderr
