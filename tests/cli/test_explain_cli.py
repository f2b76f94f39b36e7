"""`segmenta explain FILE --customer CODE` on a SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from segmenta.cli import main
from segmenta.storage.engine import create_engine, session_factory
from segmenta.storage.migrate import upgrade
from segmenta.storage.models import Customer, Employee, Team, TeamMember

RULES = "big: total_spent >= 1000 -> team senior, tag big\nrest: true -> team general\n"


async def _prepare(url: str) -> None:
    engine = create_engine(url)
    await upgrade(engine)
    async with session_factory(engine)() as session:
        ann = Employee(name="Ann", email="ann@example.com", capacity=0)
        senior = Team(key="senior", name="Senior")
        general = Team(key="general", name="General", strategy="manual")
        session.add_all([ann, senior, general])
        await session.flush()
        session.add(TeamMember(team_id=senior.id, employee_id=ann.id))
        session.add(Customer(code="rich", name="Rich Co", total_spent=5000.0, team_id=general.id))
        await session.commit()
    await engine.dispose()


def _setup(tmp_path: Path, source: str = RULES) -> tuple[str, Path]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    asyncio.run(_prepare(url))
    rules = tmp_path / "policy.seg"
    rules.write_text(source, encoding="utf-8")
    return url, rules


def test_explain_prints_the_explanation_with_manager_notes(tmp_path: Path) -> None:
    url, rules = _setup(tmp_path)
    result = CliRunner().invoke(main, ["explain", str(rules), "--customer", "rich", "--database-url", url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:4] == ["Customer rich (Rich Co)", "Team: senior (decided by big)", "Segments: none", "Tags: big"]
    assert "Now: team general, manager none" in lines
    assert "moves to team senior: team senior has no member with free capacity: manager left empty" in lines
    assert "  ✓ big (line 1): total_spent >= 1000 ✓ (total_spent is 5000.00); decides team senior" in lines


def test_unknown_customer_and_broken_rules_exit_1(tmp_path: Path) -> None:
    url, rules = _setup(tmp_path)
    runner = CliRunner()
    unknown = runner.invoke(main, ["explain", str(rules), "--customer", "nobody", "--database-url", url])
    assert unknown.exit_code == 1 and "no customer with code 'nobody'" in unknown.output
    rules.write_text("x: size > 5 -> team senior\n", encoding="utf-8")
    broken = runner.invoke(main, ["explain", str(rules), "--customer", "rich", "--database-url", url])
    assert broken.exit_code == 1 and "policy.seg:1:" in broken.output and "type-mismatch" in broken.output
