"""`segmenta seed`, `import`, `export` and `token create` through the command line (SQLite files).

The command-line layer is the same on both back ends; the domain tests under
tests/domain cover PostgreSQL for the logic these commands call, and the `import
--update` tests at the end run the command on PostgreSQL too."""

from __future__ import annotations

import asyncio
import csv
import io
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.cli import data as cli_data
from segmenta.cli import main
from segmenta.domain.access.tokens import Principal, authenticate
from segmenta.domain.customers.profiles import create_customer
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.storage.engine import create_engine, normalize_url, session_factory
from segmenta.storage.migrate import upgrade
from segmenta.storage.models import AssignmentHistory, Customer, CustomerTag, Employee, Team, TeamMember
from tests.conftest import BACKENDS, POSTGRES_URL


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"


def invoke(*args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def query(url: str, statement: object) -> list[object]:
    async def run() -> list[object]:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                return list((await session.execute(statement)).all())  # type: ignore[arg-type]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def customer_count(url: str) -> int:
    return query(url, select(func.count()).select_from(Customer))[0][0]  # type: ignore[index]


def authenticate_token(url: str, token: str) -> Principal | None:
    async def run() -> Principal | None:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                return await authenticate(session, token)
        finally:
            await engine.dispose()

    return asyncio.run(run())


# -- seed --------------------------------------------------------------------------------------


def test_seed_is_deterministic_and_refuses_a_second_time(tmp_path: Path) -> None:
    first, second = (f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db"))
    result = invoke("seed", "--customers", "120", "--seed", "9", "--database-url", first)
    assert result.exit_code == 0, result.output
    assert "seeded 120 customers" in result.stderr
    assert invoke("seed", "--customers", "120", "--seed", "9", "--database-url", second).exit_code == 0
    assert customer_count(first) == 120
    assert invoke("export", "--database-url", first).stdout == invoke("export", "--database-url", second).stdout

    again = invoke("seed", "--customers", "50", "--database-url", first)
    assert again.exit_code == 1 and "--force" in again.stderr and again.stdout == ""
    assert customer_count(first) == 120

    forced = invoke("seed", "--customers", "50", "--force", "--database-url", first)
    assert forced.exit_code == 0 and customer_count(first) == 50


# -- import ------------------------------------------------------------------------------------

GOOD_AND_BAD = "code,name,size,tags,attr.tier\nG1,Good,small,a;b,gold\nG2,,small,,\nG3,Also good,gigantic,,\nG4,Fine,,,\n"


def test_import_skip_reports_bad_rows_with_line_and_column(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(GOOD_AND_BAD, encoding="utf-8")
    result = invoke("import", str(path), "--database-url", db_url)
    assert result.exit_code == 1
    assert result.stdout.strip() == "imported 2, updated 0, skipped 2"
    assert f"{path}:3: [name] name is required" in result.stderr
    assert f"{path}:4: [size]" in result.stderr and "gigantic" in result.stderr
    assert sorted(code for (code,) in query(db_url, select(Customer.code))) == ["G1", "G4"]  # type: ignore[misc]


def test_import_strict_writes_nothing_when_a_row_is_bad(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(GOOD_AND_BAD, encoding="utf-8")
    result = invoke("import", str(path), "--mode", "strict", "--database-url", db_url)
    assert result.exit_code == 1
    assert "nothing imported" in result.stdout and ":3: [name]" in result.stderr
    assert customer_count(db_url) == 0
    assert query(db_url, select(func.count()).select_from(CustomerTag))[0][0] == 0  # type: ignore[index]


def test_import_accepts_a_bom_and_unicode_from_stdin(db_url: str) -> None:
    text = "code,name,region,city\nZ1,上海华信科技有限公司,华东,上海\nZ2,Zoë Müller,west,Seattle\n"
    result = invoke("import", "-", "--database-url", db_url, input=b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert result.exit_code == 0, result.stderr
    rows = query(db_url, select(Customer.code, Customer.name, Customer.region).order_by(Customer.code))
    assert [tuple(row) for row in rows] == [("Z1", "上海华信科技有限公司", "华东"), ("Z2", "Zoë Müller", "west")]  # type: ignore[arg-type]


def test_import_rejects_a_file_that_is_not_utf8(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("code,name\nL1,Zoë\n".encode("latin-1"))
    result = invoke("import", str(path), "--database-url", db_url)
    assert result.exit_code == 1 and "not UTF-8" in result.stderr
    assert customer_count(db_url) == 0


def test_import_update_flag(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("code,name\nU1,First\n", encoding="utf-8")
    assert invoke("import", str(path), "--database-url", db_url).exit_code == 0
    path.write_text("code,name\nU1,Renamed\n", encoding="utf-8")
    duplicate = invoke("import", str(path), "--database-url", db_url)
    assert duplicate.exit_code == 1 and "already exists" in duplicate.stderr
    updated = invoke("import", str(path), "--update", "--database-url", db_url)
    assert updated.exit_code == 0 and updated.stdout.strip() == "imported 0, updated 1, skipped 0"
    assert query(db_url, select(Customer.name))[0][0] == "Renamed"  # type: ignore[index]


def test_import_of_a_missing_file_fails_cleanly(tmp_path: Path, db_url: str) -> None:
    result = invoke("import", str(tmp_path / "nope.csv"), "--database-url", db_url)
    assert result.exit_code == 1 and "cannot read" in result.stderr


# -- export ------------------------------------------------------------------------------------


def test_export_to_file_and_stdout_round_trips_through_import(tmp_path: Path, db_url: str) -> None:
    assert invoke("seed", "--customers", "60", "--database-url", db_url).exit_code == 0
    target = tmp_path / "out.csv"
    to_file = invoke("export", str(target), "--database-url", db_url)
    assert to_file.exit_code == 0 and "exported 60 customers" in to_file.stderr
    exported = target.read_text(encoding="utf-8")
    to_stdout = invoke("export", "-", "--database-url", db_url)
    assert to_stdout.stdout == exported
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert len(rows) == 60 and {"attr.tier", "team", "manager"} <= set(rows[0])

    other = f"sqlite:///{tmp_path / 'copy.db'}"
    assert invoke("import", str(target), "--database-url", other).exit_code == 0
    assert invoke("export", "--database-url", other).stdout == exported


# -- token -------------------------------------------------------------------------------------


def test_token_create_prints_only_a_working_token(db_url: str) -> None:
    result = invoke("token", "create", "--role", "manager", "--label", "ci", "--database-url", db_url)
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.startswith("sgm_")
    principal = authenticate_token(db_url, token)
    assert principal is not None and principal.role == "manager" and principal.employee_id is None


def test_agent_token_is_bound_to_its_employee(db_url: str) -> None:
    assert invoke("seed", "--customers", "5", "--database-url", db_url).exit_code == 0
    email = query(db_url, select(Employee.email).where(Employee.active.is_(True)).order_by(Employee.id).limit(1))[0][0]
    result = invoke("token", "create", "--role", "agent", "--employee", str(email), "--database-url", db_url)
    assert result.exit_code == 0, result.stderr
    principal = authenticate_token(db_url, result.stdout.strip())
    employee_id = query(db_url, select(Employee.id).where(Employee.email == email))[0][0]
    assert principal is not None and principal.role == "agent" and principal.employee_id == employee_id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "agent"], "must be bound to an employee"),
        (["--role", "viewer", "--employee", "ghost@example.com"], "does not exist"),
        (["--role", "emperor"], "'emperor' is not one of"),
    ],
)
def test_token_create_errors_go_to_stderr_with_exit_code_2(db_url: str, args: list[str], message: str) -> None:
    result = invoke("token", "create", *args, "--database-url", db_url)
    assert result.exit_code == 2 and result.stdout == "" and message in result.stderr


# -- import --update, on both back ends ---------------------------------------------------------
#
# The command as users run it, on SQLite and (with SEGMENTA_TEST_POSTGRES_URL) on PostgreSQL,
# in a schema of its own that the command's engine reaches through search_path.


def _schema_engine_factory(schema: str) -> Callable[..., AsyncEngine]:
    original = create_engine  # this module's name gets patched to the factory's result

    def in_schema(url: str | None = None, **kwargs: Any) -> AsyncEngine:
        return original(url, connect_args={"server_settings": {"search_path": schema}}, **kwargs)

    return in_schema


def _run_on_admin(statement: str) -> None:
    async def run() -> None:
        assert POSTGRES_URL is not None
        admin = create_engine(normalize_url(POSTGRES_URL))
        try:
            async with admin.begin() as connection:
                await connection.execute(text(statement))
        finally:
            await admin.dispose()

    asyncio.run(run())


@pytest.fixture(params=BACKENDS)
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
        return
    assert POSTGRES_URL is not None
    schema = f"segmenta_cli_{uuid.uuid4().hex[:12]}"
    _run_on_admin(f'CREATE SCHEMA "{schema}"')
    in_schema = _schema_engine_factory(schema)
    monkeypatch.setattr(cli_data, "create_engine", in_schema)
    monkeypatch.setattr(sys.modules[__name__], "create_engine", in_schema)  # query() and _set_up_routing()
    try:
        yield normalize_url(POSTGRES_URL)
    finally:
        monkeypatch.undo()
        _run_on_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _set_up_routing(url: str) -> None:
    """Team east_desk (Ann) for region east, active; customers U1..U4 in the west (unassigned)."""

    async def run() -> None:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            async with session_factory(engine)() as session:
                ann = Employee(name="Ann", email="ann@example.com")
                team = Team(key="east_desk", name="East desk")
                session.add_all([ann, team])
                await session.flush()
                session.add(TeamMember(team_id=team.id, employee_id=ann.id))
                ruleset = await save_ruleset(session, "cli", "east: region = east -> team east_desk\n")
                await activate_ruleset(session, ruleset.id)
                for index in range(1, 5):
                    await create_customer(session, {"code": f"U{index}", "name": "Old", "region": "west"})
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())


UPDATE_WITH_A_BAD_ROW = "code,name,region,age\nU1,New,east,30\nU2,New,east,30\nU3,New,east,old\nU4,New,east,\n"


def _assignments(url: str) -> list[tuple[object, ...]]:
    rows = query(
        url,
        select(Customer.code, Customer.name, Team.key, Employee.name)
        .outerjoin(Team, Team.id == Customer.team_id)
        .outerjoin(Employee, Employee.id == Customer.manager_id)
        .order_by(Customer.code),
    )
    return [tuple(row) for row in rows]  # type: ignore[arg-type]


def test_import_update_reports_a_bad_row_of_a_batch_and_updates_the_rest(tmp_path: Path, any_db_url: str) -> None:
    _set_up_routing(any_db_url)
    path = tmp_path / "update.csv"
    path.write_text(UPDATE_WITH_A_BAD_ROW, encoding="utf-8")
    result = invoke("import", str(path), "--update", "--database-url", any_db_url)
    assert result.exit_code == 1
    assert result.stdout.strip() == "imported 0, updated 3, skipped 1"
    assert f"{path}:4: [age] age must be a number, got 'old'" in result.stderr
    assert _assignments(any_db_url) == [
        ("U1", "New", "east_desk", "Ann"),
        ("U2", "New", "east_desk", "Ann"),
        ("U3", "Old", None, None),
        ("U4", "New", "east_desk", "Ann"),
    ]
    history = query(any_db_url, select(AssignmentHistory.cause))
    assert [cause for (cause,) in history] == ["realtime"] * 3  # type: ignore[misc]


def test_import_update_strict_writes_nothing_when_a_row_of_a_batch_is_bad(tmp_path: Path, any_db_url: str) -> None:
    _set_up_routing(any_db_url)
    path = tmp_path / "update.csv"
    path.write_text(UPDATE_WITH_A_BAD_ROW, encoding="utf-8")
    result = invoke("import", str(path), "--update", "--mode", "strict", "--database-url", any_db_url)
    assert result.exit_code == 1
    assert "nothing imported, 1 bad row(s)" in result.stdout and f"{path}:4: [age]" in result.stderr
    assert _assignments(any_db_url) == [(f"U{index}", "Old", None, None) for index in range(1, 5)]
    assert query(any_db_url, select(func.count()).select_from(AssignmentHistory))[0][0] == 0  # type: ignore[index]
