"""CSV import/export: located errors, skip/strict, atomic rows, updates, and export→import round trips."""

from __future__ import annotations

import csv
import io
import string
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.customers import csv_format, csv_import
from segmenta.domain.customers.csv_export import export_customers
from segmenta.domain.customers.csv_import import ImportReport, import_customers
from segmenta.domain.customers.profiles import create_customer, update_customer
from segmenta.domain.customers.records import get_customer_attributes
from segmenta.domain.errors import UserError
from segmenta.domain.events import AssignmentChangeEvent, hub
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.domain.staff.teams import create_team
from segmenta.storage.engine import session_factory
from segmenta.storage.models import (
    AssignmentHistory,
    Base,
    Customer,
    CustomerAttribute,
    CustomerTag,
    Employee,
    EvaluationChange,
    EvaluationRun,
    Segment,
    SegmentMember,
    Team,
    utcnow,
)
from tests.domain.routing_support import add_customer, add_employee, add_team
from tests.domain.test_routing_property import INDUSTRIES, REGIONS, SIZES, rule_files


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


@asynccontextmanager
async def refusing_boom(engine: AsyncEngine, operation: str) -> AsyncIterator[None]:
    """A trigger refusing any customer named 'boom' on `operation` (INSERT or UPDATE): a database
    rule the validation cannot know about."""
    name = f"refuse_boom_{operation.lower()}"
    create, drop = {
        "sqlite": (
            [
                f"CREATE TRIGGER {name} BEFORE {operation} ON customers WHEN NEW.name = 'boom' "
                "BEGIN SELECT RAISE(ABORT, 'boom refused'); END"
            ],
            [f"DROP TRIGGER {name}"],
        ),
        "postgresql": (
            [
                f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN IF NEW.name = 'boom' THEN "
                "RAISE EXCEPTION 'boom refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                f"CREATE TRIGGER {name} BEFORE {operation} ON customers FOR EACH ROW EXECUTE FUNCTION {name}()",
            ],
            [f"DROP TRIGGER {name} ON customers", f"DROP FUNCTION {name}()"],
        ),
    }[engine.dialect.name]
    async with engine.begin() as connection:
        for statement in create:
            await connection.execute(text(statement))
    try:
        yield
    finally:
        async with engine.begin() as connection:
            for statement in drop:
                await connection.execute(text(statement))


async def test_a_row_the_database_refuses_is_reported_and_the_others_kept(engine: AsyncEngine) -> None:
    """A database rule the validation does not know (here a trigger) fails the bulk insert;
    the chunk is retried row by row, so only the offending row is lost, with its line."""
    async with refusing_boom(engine, "INSERT"):
        report = await run_import(engine, "code,name,tags\nK1,fine,a\nK2,boom,b\nK3,also fine,c\n")
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
    assert header == [*csv_format.FIELD_COLUMNS, "tags", "team", "manager", "assignment_locked", "attr.score", "attr.tier"]
    record = dict(zip(header, row, strict=True))
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
    assert csv_format.attribute_value("12") == 12.0
    assert csv_format.attribute_value("-1.5e3") == -1500.0
    assert csv_format.attribute_value("nan") == "nan"
    assert csv_format.attribute_value("1_000") == "1_000"
    assert csv_format.attribute_value("gold") == "gold"
    # Past the numbers' limit (and float's exact integers): text, neither refused nor rounded.
    assert csv_format.attribute_value("12345678901234567890") == "12345678901234567890"
    assert csv_format.attribute_value("1e400") == "1e400"


# -- round trip --------------------------------------------------------------------------------

_plain_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), min_size=1, max_size=12
)
# Texts a spreadsheet would run as formulas, or whose apostrophe it would swallow, are the
# ones the export marks and the import unmarks: they must come back unchanged.
_formula_start = st.sampled_from(["=", "+", "-", "@", "'", "''", "=cmd|' /C calc'!A0"])
_text = st.one_of(_plain_text, st.builds(str.__add__, _formula_start, _plain_text)).map(str.strip).filter(bool)
_word = st.text(alphabet=string.ascii_lowercase + "_华东", min_size=1, max_size=8).filter(lambda w: not w[0].isdigit())
# Attribute texts are kept verbatim: surrounding blanks, tabs, numbers as text, the empty text.
_attribute_text = st.one_of(
    st.builds(str.__add__, st.sampled_from(["", " ", "\t", "\r", "=", "-", "'"]), _plain_text),
    st.sampled_from(["", " ", "12", "-1.5e3", " 7 ", "nan"]),
)
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
        "created_at": st.datetimes(datetime(1900, 1, 1), datetime(2025, 12, 31)),
        "tags": st.lists(st.one_of(_word, st.builds(str.__add__, _formula_start, _word)), max_size=3),
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
    rows = list(csv.reader(io.StringIO(first)))
    header = rows[0]
    for row in rows[1:]:
        for column, cell in zip(header, row, strict=True):
            assert not cell.startswith(csv_format.FORMULA_STARTS) or csv_format.PLAIN_NUMBER.fullmatch(cell), (column, cell)
    await _wipe(engine)
    report = await run_import(engine, first, mode="strict")
    assert report.ok, report.errors
    assert report.imported == len(customers)
    assert await run_export(engine) == first


# -- spreadsheet formulas ----------------------------------------------------------------------

FORMULAS = {"name": "=HYPERLINK(\"http://x\")", "city": "+1", "address": "-2+3", "occupation": "@SUM(A1)"}


async def _formula_customer(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session:
        await create_customer(
            session,
            {
                "code": "'quoted",
                **FORMULAS,
                "income": 12.5,
                "tags": ["=cmd", "ok"],
                "attributes": {"delta": -5, "text_delta": "-5", "cr": "\rx", "tab": "\t=1", "empty": ""},
            },
        )
        await session.commit()


async def test_export_marks_formula_cells_and_raw_export_does_not(engine: AsyncEngine) -> None:
    """Regression: cells starting with = + - @ tab or CR were exported raw, run by spreadsheets as formulas."""
    await _formula_customer(engine)
    out = io.StringIO()
    async with session_factory(engine)() as session:
        await export_customers(session, out)
    header, row = list(csv.reader(io.StringIO(out.getvalue())))
    cells = dict(zip(header, row, strict=True))
    for column, value in FORMULAS.items():
        assert cells[column] == "'" + value
    assert cells["code"] == "''quoted"
    assert cells["tags"] == "'=cmd;ok"
    # Numbers are not text: a negative number stays a number.
    assert (cells["income"], cells["attr.delta"]) == ("12.5", "-5")
    assert (cells["attr.text_delta"], cells["attr.cr"], cells["attr.tab"], cells["attr.empty"]) == (
        "'-5", "'\rx", "'\t=1", "'",
    )

    raw = io.StringIO()
    async with session_factory(engine)() as session:
        await export_customers(session, raw, raw=True)
    raw_cells = dict(zip(*csv.reader(io.StringIO(raw.getvalue())), strict=True))
    assert raw_cells["name"] == FORMULAS["name"] and raw_cells["code"] == "'quoted"
    assert raw_cells["attr.text_delta"] == "-5"


async def test_marked_export_imports_back_unchanged_and_raw_import_keeps_apostrophes(engine: AsyncEngine) -> None:
    await _formula_customer(engine)
    exported = await run_export(engine)
    await _wipe(engine)
    assert (await run_import(engine, exported, mode="strict")).ok
    assert await run_export(engine) == exported
    async with session_factory(engine)() as session:
        customer = (await session.execute(select(Customer))).scalar_one()
        assert (customer.code, customer.name) == ("'quoted", FORMULAS["name"])
        assert (await get_customer_attributes(session, [customer.id]))[customer.id]["text_delta"] == "-5"

    await _wipe(engine)
    report = await run_import(engine, "code,name\n'=x,'+y\n", raw=True)
    assert report.ok, report.errors
    async with session_factory(engine)() as session:
        assert (await session.execute(select(Customer.code, Customer.name))).one() == ("'=x", "'+y")


async def test_a_hand_written_apostrophe_is_taken_off_as_a_spreadsheet_does(engine: AsyncEngine) -> None:
    report = await run_import(engine, "code,name,attr.n,attr.m\n'007,'Bond,'42,42\n")
    assert report.ok, report.errors
    async with session_factory(engine)() as session:
        customer = (await session.execute(select(Customer))).scalar_one()
        assert (customer.code, customer.name) == ("007", "Bond")
        assert (await get_customer_attributes(session, [customer.id]))[customer.id] == {"n": "42", "m": 42.0}


# -- data limits in files ----------------------------------------------------------------------


async def test_out_of_range_cells_are_located_errors_and_write_nothing(engine: AsyncEngine) -> None:
    text_ = (
        "code,name,income,birthday,created_at,attr.note,tags\n"
        "N1,has\x00nul,,,,,\n"  # 2: NUL (a driver error on PostgreSQL before)
        "N2,Rich,1e300,,,,\n"  # 3: income past the limit
        "N3,Old,,1899-12-31,,,\n"  # 4: birthday before 1900
        "N4,Late,,,9999-01-01T00:00:00,,\n"  # 5: created far in the future
        "N5,Long,,,," + "x" * 501 + ",\n"  # 6: attribute text too long
        "N6,Tags,,,,," + ";".join(f"t{n}" for n in range(51)) + "\n"  # 7: too many tags
        "N7,Fine,10,1990-01-01,2020-01-01T00:00:00,ok,a\n"  # 8
    )
    report = await run_import(engine, text_)
    located = [(error.line, error.column) for error in report.errors]
    assert located == [(2, "name"), (3, "income"), (4, "birthday"), (5, "created_at"), (6, "attr.note"), (7, "tags")]
    assert "NUL" in report.errors[0].message
    assert report.imported == 1 and await codes(engine) == ["N7"]


async def test_update_rows_may_not_grow_attributes_past_the_maximum(engine: AsyncEngine) -> None:
    from segmenta.domain.validation import MAX_ATTRIBUTES

    async with session_factory(engine)() as session:
        await create_customer(session, {"code": "FULL", "name": "Full", "attributes": {f"a{n}": n for n in range(MAX_ATTRIBUTES)}})
        await create_customer(session, {"code": "ROOM", "name": "Room"})
        await session.commit()
    report = await run_import(engine, "code,attr.extra\nROOM,1\nFULL,1\n", update=True)
    assert [(error.line, error.column, "at most" in error.message) for error in report.errors] == [(3, "attributes", True)]
    assert report.updated == 1
    async with session_factory(engine)() as session:
        extra = (await session.execute(select(func.count()).where(CustomerAttribute.key == "extra"))).scalar_one()
    assert extra == 1


# -- --update in batches -----------------------------------------------------------------------
#
# The reference is the row-by-row import: each row validated, then written with
# domain.customers.profiles.update_customer (routing included) in its own SAVEPOINT.  The batched
# import must leave the same rows, report the same errors and announce the same changes.

UPDATE_COLUMNS = ("name", "region", "size", "industry", "age", "tags", "attr.tier")

_existing_customer = st.fixed_dictionaries(
    {
        "name": st.just("Old"),
        "region": st.none() | st.sampled_from(REGIONS),
        "size": st.none() | st.sampled_from(SIZES),
        "industry": st.none() | st.sampled_from(INDUSTRIES),
        "age": st.none() | st.sampled_from([17, 40, 70]),
        "tags": st.lists(st.sampled_from(["a", "b"]), unique=True),
        "attributes": st.sampled_from([{}, {"tier": "gold"}, {"tier": "silver"}]),
    }
)
_good_cells = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["New", " Spaced "]),
        "region": st.sampled_from(["", *REGIONS]),
        "size": st.sampled_from(["", *SIZES, "LARGE"]),
        "industry": st.sampled_from(["", *INDUSTRIES]),
        "age": st.sampled_from(["", "17", "40", "70"]),
        "tags": st.sampled_from(["", "a", "b;a", "c"]),
        "attr.tier": st.sampled_from(["", "gold", "silver", "3"]),
    }
)
# A bad cell (or a ragged row) and the column the import must name.
_BAD = {
    "size": ("huge", "size"),
    "age": ("old", "age"),
    "name": ("", "name"),
    "region": ("r" * 101, "region"),
}


@st.composite
def update_files(draw: st.DrawFn, codes: int) -> tuple[list[str], list[list[str]], list[int]]:
    """(header, rows, lines of the bad rows): existing codes, repeats, bad cells and ragged rows."""
    header = ["code", *[c for c in UPDATE_COLUMNS if draw(st.booleans())]]
    rows: list[list[str]] = []
    bad: list[int] = []
    for index in range(draw(st.integers(1, 12))):
        cells = draw(_good_cells)
        row = [f"c{draw(st.integers(0, codes - 1))}", *[cells[c] for c in header[1:]]]
        trouble = draw(st.sampled_from([None, None, None, "ragged", *[c for c in _BAD if c in header]]))
        if trouble == "ragged":
            row.append("extra")
        elif trouble is not None:
            row[header.index(trouble)] = _BAD[trouble][0]
        if trouble is not None:
            bad.append(index + 2)
        rows.append(row)
    return header, rows, bad


def as_csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


async def update_world(
    engine: AsyncEngine, source: str, people: list[dict[str, Any]], loads: tuple[int, int, int], locked: set[int]
) -> None:
    """Teams t0 (round robin from position 1), t1 (least loaded), t2 (manual), t3 (no members);
    Ann, Bob (capacity 2), Dee (capacity 1) carrying `loads` other customers, Cid inactive;
    customers c0.. created (routed) by `source`, active; those in `locked` locked."""
    await _wipe(engine)
    async with session_factory(engine)() as session:
        ann = await add_employee(session, "Ann", regions=["east"])
        bob = await add_employee(session, "Bob", capacity=2, specialties=["finance"])
        cid = await add_employee(session, "Cid", active=False)
        dee = await add_employee(session, "Dee", capacity=1, regions=["west"], specialties=["retail"])
        await add_team(session, "t0", members=[ann, bob, dee], position=1)
        await add_team(session, "t1", strategy="least_loaded", members=[bob, cid, dee, ann])
        await add_team(session, "t2", strategy="manual", members=[ann])
        await add_team(session, "t3")
        for employee, load in zip((ann, bob, dee), loads, strict=True):
            for index in range(load):
                await add_customer(session, f"{employee.name}{index}", manager_id=employee.id)
        session.add(Segment(key="s_b", name="S B", kind="manual"))
        ruleset = await save_ruleset(session, "batch", source)
        assert not ruleset.has_errors, (source, ruleset.diagnostics)
        await activate_ruleset(session, ruleset.id)
        for index, person in enumerate(people):
            customer = await create_customer(session, {**person, "code": f"c{index}"})
            customer.assignment_locked = index in locked
        await session.commit()


async def import_row_by_row(engine: AsyncEngine, text: str) -> list[tuple[int, str | None, str]]:
    """The reference: every row through update_customer in its own SAVEPOINT; committed."""
    errors: list[tuple[int, str | None, str]] = []
    records = csv_format.records(io.StringIO(text))
    _, header = next(records)
    async with session_factory(engine)() as session:
        for line, cells in records:
            try:
                data = csv_format.parse_cells(header, cells, patch=True)
            except csv_format.CellError as error:
                errors.append((line, error.column or None, error.message))
                continue
            customer = (await session.execute(select(Customer).where(Customer.code == cells[0]))).scalar_one()
            try:
                async with session.begin_nested():
                    await update_customer(session, customer.id, data)
            except UserError as error:
                errors.append((line, csv_format.column_of(error, header), error.message))
        await session.commit()
    return errors


async def routing_outcome(engine: AsyncEngine, touched_since: datetime) -> dict[str, Any]:
    """Every row an update writes, by natural keys (codes, team keys, names), in write order where it matters."""
    async with session_factory(engine)() as session:
        teams = dict((await session.execute(select(Team.id, Team.key))).all())
        people = dict((await session.execute(select(Employee.id, Employee.name))).all())
        codes = dict((await session.execute(select(Customer.id, Customer.code))).all())

        def who(row: Any, *names: str) -> tuple[Any, ...]:
            mapped = {"customer_id": codes, "team_id": teams, "team_before_id": teams, "team_after_id": teams,
                      "manager_id": people, "manager_before_id": people, "manager_after_id": people}
            return tuple(mapped[name].get(row[name]) if name in mapped else row[name] for name in names)

        customers = {}
        for row in (await session.execute(select(Customer.__table__))).mappings():
            values = {k: v for k, v in row.items() if k not in ("id", "created_at", "updated_at", "team_id", "manager_id")}
            values["team"], values["manager"] = who(row, "team_id", "manager_id")
            values["touched"] = row["updated_at"] >= touched_since
            customers[row["code"]] = values
        run = EvaluationRun.__table__
        history = [
            who(row, "customer_id", "team_before_id", "team_after_id", "manager_before_id", "manager_after_id",
                "cause", "rule", "mode")
            for row in (
                await session.execute(
                    select(AssignmentHistory.__table__, run.c.mode)
                    .outerjoin(run, run.c.id == AssignmentHistory.run_id)
                    .order_by(AssignmentHistory.id)
                )
            ).mappings()
        ]
        changes = [
            who(row, "customer_id", "team_before_id", "team_after_id", "manager_before_id", "manager_after_id",
                "segments_added", "segments_removed", "tags_added", "tags_removed", "deciding_rule", "locked", "mode")
            for row in (
                await session.execute(
                    select(EvaluationChange.__table__, run.c.mode)
                    .join(run, run.c.id == EvaluationChange.run_id)
                    .order_by(EvaluationChange.id)
                )
            ).mappings()
        ]
        tags = sorted((codes[c], t, s) for c, t, s in await session.execute(
            select(CustomerTag.customer_id, CustomerTag.tag, CustomerTag.source)))
        attributes = sorted((codes[c], k, t, n) for c, k, t, n in await session.execute(
            select(CustomerAttribute.customer_id, CustomerAttribute.key, CustomerAttribute.text_value,
                   CustomerAttribute.number_value)))
        memberships = sorted((codes[c], key) for c, key in await session.execute(
            select(SegmentMember.customer_id, Segment.key).join(Segment, Segment.id == SegmentMember.segment_id)))
        return {
            "customers": customers,
            "history": history,
            "changes": changes,
            "tags": tags,
            "attributes": attributes,
            "memberships": memberships,
            "segments": sorted((await session.execute(select(Segment.key, Segment.kind))).all()),
            "positions": sorted((await session.execute(select(Team.key, Team.round_robin_position))).all()),
            "runs": sorted((await session.execute(select(run.c.mode, run.c.as_of))).all()),
        }


def announced(events: list[AssignmentChangeEvent], codes: dict[int, str]) -> list[tuple[Any, ...]]:
    return [(codes[e.customer_id], e.team_before_id is None, e.team_after_id is None, e.cause, e.rule) for e in events]


async def customer_codes(engine: AsyncEngine) -> dict[int, str]:
    async with session_factory(engine)() as session:
        return dict((await session.execute(select(Customer.id, Customer.code))).all())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    source=rule_files(),
    people=st.lists(_existing_customer, min_size=2, max_size=7),
    loads=st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 1)),
    locked=st.sets(st.integers(0, 6), max_size=2),
    data=st.data(),
    chunk=st.integers(1, 12),
    strict=st.booleans(),
)
async def test_batched_update_import_equals_update_customer_row_by_row(
    engine: AsyncEngine,
    source: str,
    people: list[dict[str, Any]],
    loads: tuple[int, int, int],
    locked: set[int],
    data: st.DataObject,
    chunk: int,
    strict: bool,
) -> None:
    header, rows, bad = data.draw(update_files(len(people)))
    text = as_csv(header, rows)

    await update_world(engine, source, people, loads, locked)
    before = utcnow()
    untouched = await routing_outcome(engine, before)
    with hub.assignments.subscribe() as subscriber:
        expected_errors = await import_row_by_row(engine, text)
        expected_events = announced(drain(subscriber), await customer_codes(engine))
    expected = await routing_outcome(engine, before)

    await update_world(engine, source, people, loads, locked)
    before = utcnow()
    original_chunk = csv_import.IMPORT_CHUNK
    csv_import.IMPORT_CHUNK = chunk  # batches split across chunks and at repeated codes
    try:
        with hub.assignments.subscribe() as subscriber:
            report = await run_import(engine, text, update=True, mode="strict" if strict else "skip")
            events = announced(drain(subscriber), await customer_codes(engine))
    finally:
        csv_import.IMPORT_CHUNK = original_chunk

    assert [(e.line, e.column, e.message) for e in report.errors] == expected_errors
    assert sorted({line for line, _, _ in expected_errors}) == bad
    if strict and bad:
        assert not report.committed and report.updated == 0
        assert await routing_outcome(engine, before) == untouched
        assert events == []
        return
    assert report.committed and report.updated == len(rows) - len(bad)
    assert await routing_outcome(engine, before) == expected, (source, text)
    assert events == expected_events


def drain(subscriber: Any) -> list[AssignmentChangeEvent]:
    items = []
    while subscriber.pending():
        items.append(subscriber._queue.get_nowait())
    return items


async def test_a_batch_hands_out_managers_in_line_order_as_row_by_row_would(engine: AsyncEngine) -> None:
    """Line 2 asks for a place with Dee (full: she has X) before line 3 moves X away from her.
    One by one, line 2 finds Dee full; a batch must not let it use the place line 3 frees later."""
    async with session_factory(engine)() as session:
        ann = await add_employee(session, "Ann")
        dee = await add_employee(session, "Dee", capacity=1)
        await add_team(session, "t0", members=[dee])
        await add_team(session, "t1", members=[ann])
        ruleset = await save_ruleset(session, "order", "east: region = east -> team t0\notherwise -> team t1\n")
        await activate_ruleset(session, ruleset.id)
        await create_customer(session, {"code": "X", "name": "X", "region": "east"})
        await create_customer(session, {"code": "Y", "name": "Y", "region": "west"})
        await session.commit()
    report = await run_import(engine, "code,region\nY,east\nX,west\n", update=True)
    assert report.ok and report.updated == 2
    async with session_factory(engine)() as session:
        rows = await session.execute(
            select(Customer.code, Team.key, Employee.name)
            .join(Team, Team.id == Customer.team_id)
            .outerjoin(Employee, Employee.id == Customer.manager_id)
            .order_by(Customer.code)
        )
        assert [tuple(row) for row in rows] == [("X", "t1", "Ann"), ("Y", "t0", None)]


async def _routed_world(engine: AsyncEngine, count: int) -> None:
    """Team east_desk (Ann) for region east; `count` customers B0.. in the west, unassigned."""
    async with session_factory(engine)() as session:
        ann = await add_employee(session, "Ann")
        await add_team(session, "east_desk", members=[ann])
        ruleset = await save_ruleset(session, "batches", "east: region = east -> team east_desk, tag eastern\n")
        await activate_ruleset(session, ruleset.id)
        for index in range(count):
            await create_customer(session, {"code": f"B{index}", "name": f"Old {index}", "region": "west"})
        await session.commit()


async def _moved(engine: AsyncEngine) -> dict[str, tuple[str | None, str | None, str | None]]:
    """(name, team key, manager name) by code, for the customers moved east."""
    async with session_factory(engine)() as session:
        rows = await session.execute(
            select(Customer.code, Customer.name, Team.key, Employee.name)
            .outerjoin(Team, Team.id == Customer.team_id)
            .outerjoin(Employee, Employee.id == Customer.manager_id)
        )
        return {code: (name, team, manager) for code, name, team, manager in rows.all()}


MOVE_EAST_WITH_A_BAD_ROW = (
    "code,name,region,size\n"
    "B0,New 0,east,small\n"
    "B1,New 1,east,small\n"
    "B2,New 2,east,gigantic\n"  # line 4: bad size, in the middle of the batch
    "B3,New 3,east,\n"
)


async def test_a_bad_update_row_in_a_batch_is_located_and_the_rest_is_updated(engine: AsyncEngine) -> None:
    await _routed_world(engine, 4)
    with hub.assignments.subscribe() as subscriber:
        report = await run_import(engine, MOVE_EAST_WITH_A_BAD_ROW, update=True)
        events = drain(subscriber)
    assert report.committed and (report.updated, report.skipped) == (3, 1)
    assert [(e.line, e.column) for e in report.errors] == [(4, "size")] and "gigantic" in report.errors[0].message
    moved = await _moved(engine)
    assert moved == {
        "B0": ("New 0", "east_desk", "Ann"),
        "B1": ("New 1", "east_desk", "Ann"),
        "B2": ("Old 2", None, None),  # nothing of the bad row was written, not even its good cells
        "B3": ("New 3", "east_desk", "Ann"),
    }
    async with session_factory(engine)() as session:
        history = (await session.execute(select(AssignmentHistory.cause).order_by(AssignmentHistory.id))).scalars().all()
        rule_tags = await session.scalar(select(func.count()).select_from(CustomerTag).where(CustomerTag.source == "rule"))
    assert history == ["realtime"] * 3 and rule_tags == 3
    assert len(events) == 3  # assignmentChanged, announced after the commit


async def test_a_bad_update_row_in_a_batch_keeps_everything_out_in_strict_mode(engine: AsyncEngine) -> None:
    await _routed_world(engine, 4)
    before = await _moved(engine)
    with hub.assignments.subscribe() as subscriber:
        report = await run_import(engine, MOVE_EAST_WITH_A_BAD_ROW, update=True, mode="strict")
        assert drain(subscriber) == []
    assert not report.committed and report.updated == 0
    assert [(e.line, e.column) for e in report.errors] == [(4, "size")]
    assert await _moved(engine) == before
    assert await count(engine, AssignmentHistory) == 0


async def test_an_update_row_the_database_refuses_fails_alone(engine: AsyncEngine) -> None:
    """The database refuses the batch (a trigger the validation cannot know): the batch is undone
    and retried row by row, so only the offending row is lost, reported with its line."""
    await _routed_world(engine, 3)
    async with refusing_boom(engine, "UPDATE"):
        report = await run_import(engine, "code,name,region\nB0,New 0,east\nB1,boom,east\nB2,New 2,east\n", update=True)
    assert report.committed and report.updated == 2
    # The message is update_customer's own for a refused flush (on SQLite a trigger's abort is an
    # IntegrityError, which it reports as a code conflict): the row-by-row retry keeps it exactly.
    assert [e.line for e in report.errors] == [3]
    assert await _moved(engine) == {
        "B0": ("New 0", "east_desk", "Ann"),
        "B1": ("Old 1", None, None),
        "B2": ("New 2", "east_desk", "Ann"),
    }
    assert await count(engine, AssignmentHistory) == 2


async def _statements_of_update(engine: AsyncEngine, rows: int) -> list[str]:
    update_file = "code,name,region,tags,attr.tier\n" + "".join(f"B{i},New {i},east,t{i % 3},gold\n" for i in range(rows))
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()[:3]))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        report = await run_import(engine, update_file, update=True)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert report.ok and report.updated == rows
    return statements


async def test_updating_a_batch_takes_the_same_statements_for_10_or_40_rows(engine: AsyncEngine) -> None:
    """No statement per row: the rows' reads, writes and routing are batched."""
    await _routed_world(engine, 10)
    few = await _statements_of_update(engine, 10)
    await _wipe(engine)
    await _routed_world(engine, 40)
    many = await _statements_of_update(engine, 40)
    assert many == few
    assert len(few) <= 25, few  # ~22 on SQLite: one SAVEPOINT, the reads, one statement per table written


async def test_import_rows_with_new_attribute_keys_past_the_limit_are_reported(engine: AsyncEngine) -> None:
    from segmenta.domain.validation import MAX_ATTRIBUTE_KEYS

    async with session_factory(engine)() as session:
        holder = await create_customer(session, {"code": "KEYS", "name": "Keys"})
        rows = [{"customer_id": holder.id, "key": f"k{n:03d}", "number_value": 1.0} for n in range(MAX_ATTRIBUTE_KEYS)]
        await session.execute(CustomerAttribute.__table__.insert(), rows)
        await session.commit()
    report = await run_import(engine, "code,name,attr.k001,attr.fresh\nA,Known,1,\nB,New,,2\n")
    assert [(error.line, error.column, error.message.startswith("attributes:")) for error in report.errors] == [
        (3, "attributes", True)
    ]
    assert await codes(engine) == ["A", "KEYS"]
    report = await run_import(engine, "code,attr.fresh\nA,2\n", update=True)
    assert [(error.line, error.column) for error in report.errors] == [(2, "attributes")]


_cell = st.one_of(
    st.text(st.characters(), max_size=12),
    st.sampled_from(["", "\x00", "a\x00b", "1e300", "-1", "12.345", "9999-12-31", "1899-01-01", "=1+2", "'", "x" * 201]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_cell, _cell, _cell, _cell, _cell, _cell), min_size=1, max_size=4))
async def test_any_cells_import_or_are_reported_never_half_written(engine: AsyncEngine, rows: list[tuple[str, ...]]) -> None:
    """Random unicode (NUL included), numbers and dates out of range: each row is imported whole or
    reported with its line, and a database refusal never replaces a located error."""
    await _wipe(engine)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["code", "name", "income", "birthday", "attr.note", "tags"])
    starts = []  # the line each record starts on: a quoted cell may hold line breaks
    for index, (name, income, birthday, note, tags, _) in enumerate(rows):
        starts.append(out.getvalue().count("\n") + 1)
        writer.writerow([f"R{index}", name, income, birthday, note, tags])
    report = await run_import(engine, out.getvalue())
    assert all(error.column is not None for error in report.errors), report.errors
    assert not any("database refused" in error.message for error in report.errors), report.errors
    assert report.imported + report.skipped == len(rows)
    assert await count(engine, Customer) == report.imported
    bad_lines = {error.line for error in report.errors}
    for index, (name, _, _, note, tags, _) in enumerate(rows):
        if "\x00" in name + note + tags:
            assert starts[index] in bad_lines
