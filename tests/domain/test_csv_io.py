"""CSV import/export: located errors, skip/strict, atomic rows, updates, and export→import round trips."""

from __future__ import annotations

import csv
import io
import string
from datetime import date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain import csv_io
from domain.csv_io import ImportReport, export_customers, import_customers
from domain.customers import create_customer
from domain.rulesets import activate_ruleset, save_ruleset
from domain.staff import create_team
from storage.engine import session_factory
from storage.models import Base, Customer, CustomerAttribute, CustomerTag, Employee, Team


async def run_import(engine: AsyncEngine, text: str, **options: Any) -> ImportReport:
    async with session_factory(engine)() as session:
        return await import_customers(session, io.StringIO(text), **options)


async def run_export(engine: AsyncEngine) -> str:
    out = io.StringIO()
    async with session_factory(engine)() as session:
        await export_customers(session, out, batch_size=7)
    return out.getvalue()


async def count(engine: AsyncEngine, model: type) -> int:
    async with session_factory(engine)() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def codes(engine: AsyncEngine) -> list[str]:
    async with session_factory(engine)() as session:
        return sorted((await session.execute(select(Customer.code))).scalars())


MIXED = (
    "code,name,kind,size,age,birthday,tags,attr.tier,attr.score\n"  # line 1
    "A1,Acme,company,large,,,vip;key,gold,12.5\n"  # 2
    'A2,"王小明\nsecond line",person,,35,1990-02-03,,silver,\n'  # 3-4: a quoted cell spans two lines
    "A3,,company,,,,x,,\n"  # 5: name missing
    "A4,Bad,company,huge,,,y,,\n"  # 6: size not a size
    "A5,Bad2,person,,abc,,,,\n"  # 7: age not a number
    "A1,Dup,company,,,,z,,\n"  # 8: code already taken by line 2
    "A6,Future,person,,,2999-01-01,,,\n"  # 9: birthday in the future
    "A7,Ok,person,small,,,,,7\n"  # 10
)


async def test_skip_mode_imports_good_rows_and_locates_bad_ones(engine: AsyncEngine) -> None:
    report = await run_import(engine, MIXED)
    assert report.committed and (report.imported, report.updated, report.skipped) == (3, 0, 5)
    located = [(error.line, error.column) for error in report.errors]
    assert located == [(5, "name"), (6, "size"), (7, "age"), (8, "code"), (9, "birthday")]
    assert "huge" in report.errors[1].message and "already exists" in report.errors[3].message
    assert await codes(engine) == ["A1", "A2", "A7"]
    # Bad rows left nothing behind: only the good rows' tags and attributes exist.
    assert await count(engine, CustomerTag) == 2
    assert await count(engine, CustomerAttribute) == 4
    async with session_factory(engine)() as session:
        person = (await session.execute(select(Customer).where(Customer.code == "A2"))).scalar_one()
    assert person.name == "王小明\nsecond line" and person.birthday == date(1990, 2, 3) and person.age == 35


async def test_strict_mode_imports_nothing_when_a_row_is_bad(engine: AsyncEngine) -> None:
    report = await run_import(engine, MIXED, mode="strict")
    assert not report.committed and report.imported == 0 and report.skipped == 5
    assert [error.line for error in report.errors] == [5, 6, 7, 8, 9]
    assert await count(engine, Customer) == 0
    assert await count(engine, CustomerTag) == 0


async def test_strict_mode_imports_a_clean_file(engine: AsyncEngine) -> None:
    report = await run_import(engine, "code,name\nB1,One\nB2,Two\n", mode="strict")
    assert report.committed and report.imported == 2 and report.ok
    assert await codes(engine) == ["B1", "B2"]


async def test_header_problems_import_nothing(engine: AsyncEngine) -> None:
    report = await run_import(engine, "code,name,regoin,attr.\nX,Y,east,1\n")
    assert [(e.line, e.column) for e in report.errors] == [(1, "regoin"), (1, "attr.")]
    assert "did you mean region" in report.errors[0].message
    assert (await run_import(engine, "name\nY\n")).errors[0].message == "required column code is missing"
    assert (await run_import(engine, "")).errors[0].message.startswith("the file is empty")
    assert await count(engine, Customer) == 0


async def test_ragged_rows_are_reported(engine: AsyncEngine) -> None:
    report = await run_import(engine, "code,name\nR1,One,extra\nR2,Two\n")
    assert [(e.line, e.column) for e in report.errors] == [(2, None)]
    assert "2 columns" in report.errors[0].message
    assert await codes(engine) == ["R2"]


async def test_update_mode_patches_existing_customers(engine: AsyncEngine) -> None:
    await run_import(engine, "code,name,size,tags,attr.tier,attr.source\nU1,Old,large,a;b,gold,web\n")
    report = await run_import(
        engine,
        "code,name,size,tags,attr.tier\n"
        "U1,New,,c,\n"  # size and tier cleared, tags replaced; attr.source not in the file: kept
        "U2,Fresh,small,,silver\n"
        "U2,Fresher,medium,,platinum\n",  # a repeated code updates the row created just before
        update=True,
    )
    assert report.ok and (report.imported, report.updated) == (1, 2)
    exported = list(csv.DictReader(io.StringIO(await run_export(engine))))
    first, second = exported
    assert (first["name"], first["size"], first["tags"], first["attr.tier"], first["attr.source"]) == (
        "New", "", "c", "", "web"
    )
    assert (second["name"], second["size"], second["attr.tier"]) == ("Fresher", "medium", "platinum")


async def test_without_update_an_existing_code_is_a_duplicate(engine: AsyncEngine) -> None:
    await run_import(engine, "code,name\nD1,One\n")
    report = await run_import(engine, "code,name\nD1,Again\nD2,Two\n")
    assert [(e.line, e.column) for e in report.errors] == [(2, "code")]
    assert await codes(engine) == ["D1", "D2"]


_REFUSE_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON customers WHEN NEW.name = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_boom() RETURNS trigger AS $$ BEGIN IF NEW.name = 'boom' THEN "
        "RAISE EXCEPTION 'boom refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION refuse_boom()",
    ],
}
_DROP_TRIGGER = {
    "sqlite": ["DROP TRIGGER refuse_boom"],
    "postgresql": ["DROP TRIGGER refuse_boom ON customers", "DROP FUNCTION refuse_boom()"],
}


async def test_a_row_the_database_refuses_is_reported_and_the_others_kept(engine: AsyncEngine) -> None:
    """A database rule the validation does not know (here a trigger) fails the bulk insert;
    the chunk is retried row by row, so only the offending row is lost, with its line."""
    dialect = engine.dialect.name
    async with engine.begin() as connection:
        for statement in _REFUSE_TRIGGER[dialect]:
            await connection.execute(text(statement))
    try:
        report = await run_import(engine, "code,name,tags\nK1,fine,a\nK2,boom,b\nK3,also fine,c\n")
    finally:
        async with engine.begin() as connection:
            for statement in _DROP_TRIGGER[dialect]:
                await connection.execute(text(statement))
    assert report.committed and report.imported == 2
    assert [error.line for error in report.errors] == [3]
    assert await codes(engine) == ["K1", "K3"]
    assert await count(engine, CustomerTag) == 2


async def test_imported_customers_are_routed_by_the_active_ruleset(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        await create_team(session, {"key": "east_desk", "name": "East desk"})
        ruleset = await save_ruleset(session, "import-routing", "east: region = east -> team east_desk, tag eastern\n")
        await activate_ruleset(session, ruleset.id)
        await session.commit()
    report = await run_import(
        engine, "code,name,region\nW1,West,west\nE1,East,east\nE2,East two,east\nE1,Again,east\n", update=True
    )
    assert report.ok and (report.imported, report.updated) == (3, 1)
    async with session_factory(engine)() as session:
        rows = (
            await session.execute(
                select(Customer.code, Team.key, Customer.deciding_rule)
                .outerjoin(Team, Team.id == Customer.team_id)
                .order_by(Customer.code)
            )
        ).all()
        rule_tags = (
            await session.execute(select(CustomerTag.tag).where(CustomerTag.source == "rule"))
        ).scalars().all()
    assert [tuple(row) for row in rows] == [("E1", "east_desk", "east"), ("E2", "east_desk", "east"), ("W1", None, None)]
    assert rule_tags == ["eastern", "eastern"]


async def test_export_lists_fields_tags_attributes_and_assignment(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        team = Team(key="east_team", name="East")
        manager = Employee(name="Mia", email="mia@example.com")
        session.add_all([team, manager])
        await session.flush()
        customer = await create_customer(
            session,
            {"code": "E1", "name": "Eve", "tags": ["b", "a"], "attributes": {"tier": "gold", "score": 3.5},
             "created_at": datetime(2024, 5, 6, 7, 8, 9), "income": 1200.0},
        )
        customer.team_id, customer.manager_id, customer.assignment_locked = team.id, manager.id, True
        await session.commit()
    rows = list(csv.reader(io.StringIO(await run_export(engine))))
    header, row = rows
    assert header == [*csv_io.FIELD_COLUMNS, "tags", "team", "manager", "assignment_locked", "attr.score", "attr.tier"]
    record = dict(zip(header, row))
    assert record["tags"] == "a;b" and record["attr.score"] == "3.5" and record["attr.tier"] == "gold"
    assert record["income"] == "1200" and record["created_at"] == "2024-05-06T07:08:09"
    assert (record["team"], record["manager"], record["assignment_locked"]) == ("east_team", "mia@example.com", "true")


async def test_the_assignment_columns_are_accepted_and_ignored_on_import(engine: AsyncEngine) -> None:
    report = await run_import(engine, "code,name,team,manager,assignment_locked\nT1,One,nope,who@x.com,true\n")
    assert report.ok
    async with session_factory(engine)() as session:
        customer = (await session.execute(select(Customer))).scalar_one()
    assert customer.team_id is None and customer.manager_id is None and customer.assignment_locked is False


def test_attribute_cells_that_are_plain_numbers_become_numbers() -> None:
    assert csv_io.attribute_value("12") == 12.0
    assert csv_io.attribute_value("-1.5e3") == -1500.0
    assert csv_io.attribute_value("nan") == "nan"
    assert csv_io.attribute_value("1_000") == "1_000"
    assert csv_io.attribute_value("gold") == "gold"


# -- round trip --------------------------------------------------------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), min_size=1, max_size=12
).map(str.strip).filter(bool)
_word = st.text(alphabet=string.ascii_lowercase + "_华东", min_size=1, max_size=8).filter(lambda w: not w[0].isdigit())
_attribute_text = _text.filter(lambda value: not csv_io._NUMBER.fullmatch(value.strip()) and value == value.strip())
_customer = st.fixed_dictionaries(
    {"name": _text},
    optional={
        "kind": st.sampled_from(["company", "person"]),
        "size": st.sampled_from(["small", "medium", "large", "enterprise"]),
        "region": _text,
        "city": _text,
        "lifecycle": st.sampled_from(["prospect", "new", "active", "loyal", "at_risk", "churned"]),
        "purchasing_power": st.sampled_from(["low", "medium", "high"]),
        "address": _text,
        "age": st.integers(0, 150).map(float),
        "income": st.floats(0, 1e9, allow_nan=False).map(lambda x: round(x, 2)),
        "birthday": st.dates(date(1900, 1, 1), date(2020, 12, 31)),
        "created_at": st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1)),
        "tags": st.lists(_word, max_size=3),
        "attributes": st.dictionaries(
            _word, st.one_of(_attribute_text, st.floats(-1e6, 1e6, allow_nan=False).map(lambda x: round(x, 3))), max_size=3
        ),
    },
)


async def _wipe(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(customers=st.lists(_customer, min_size=1, max_size=5))
async def test_export_then_import_round_trips(engine: AsyncEngine, customers: list[dict[str, Any]]) -> None:
    await _wipe(engine)
    async with session_factory(engine)() as session:
        for index, data in enumerate(customers):
            await create_customer(session, {"code": f"P{index}", **data})
        await session.commit()
    first = await run_export(engine)
    await _wipe(engine)
    report = await run_import(engine, first, mode="strict")
    assert report.ok, report.errors
    assert report.imported == len(customers)
    assert await run_export(engine) == first
