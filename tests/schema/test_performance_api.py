"""The performance API: figures as the domain computes them, one statement per page of employees or
teams, setTarget and performanceReview by role, bad input refused with a located code."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.storage.engine import session_factory
from segmenta.storage.models import Employee, PerformanceTarget, TeamMember
from tests.domain import performance_data
from tests.schema.helpers import Api, global_id, snapshot
from tests.schema.test_statement_count import counted_statements

FIGURES = """
  from to revenue purchaseCount target attainment customersAtStart customersAtEnd customersWon customersLost
  customersRetained retentionRate surveyCount averageSatisfaction npsResponses nps complaintsReceived
  complaintsResolved medianResolutionHours interactions tasksDue tasksDoneOnTime tasksOverdue taskCompletionRate
"""


async def _world(engine: AsyncEngine) -> dict[str, int]:
    async with session_factory(engine)() as session:
        ids = await performance_data.build(session)
        await session.commit()
    return ids


def _as_api(expected: dict[str, Any]) -> dict[str, Any]:
    names = {"purchases": "purchaseCount", "nps_count": "npsResponses"}
    result = {}
    for name, value in expected.items():
        head, *rest = names.get(name, name).split("_")
        key = head + "".join(part.title() for part in rest)
        result[key] = str(value) if value is not None and name in ("revenue", "target") else value
    return result


async def test_employee_and_team_figures_are_the_hand_computed_ones(api: Api, engine: AsyncEngine) -> None:
    ids = await _world(engine)
    data = await api.data(
        f"""query($a: ID!, $b: ID!) {{
          a: employee(id: $a) {{ performance(month: "2026-11") {{ {FIGURES} }} }}
          b: employee(id: $b) {{ performance(month: "2026-11") {{ {FIGURES} }} }}
          t1: team(key: "t1") {{ performance(month: "2026-11") {{ {FIGURES} }} }}
          t2: team(key: "t2") {{ performance(from: "2026-11", to: "2026-11") {{ {FIGURES} }} }}
        }}""",
        {"a": global_id("Employee", ids["A"]), "b": global_id("Employee", ids["B"])},
    )
    for alias, owner in (("a", "A"), ("b", "B"), ("t1", "T1"), ("t2", "T2")):
        got = data[alias]["performance"]
        assert (got["from"], got["to"]) == ("2026-11", "2026-11")
        for key, value in _as_api(performance_data.NOVEMBER[owner]).items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value), (owner, key)
            else:
                assert got[key] == value, (owner, key)
    series = await api.data(
        'query($a: ID!) { employee(id: $a) { performanceSeries(to: "2026-12", months: 3) { from revenue target } } }',
        {"a": global_id("Employee", ids["A"])},
    )
    assert series["employee"]["performanceSeries"] == [
        {"from": "2026-10", "revenue": "100.00", "target": "1000.00"},
        {"from": "2026-11", "revenue": "550.00", "target": "500.00"},
        {"from": "2026-12", "revenue": "400.00", "target": "1000.00"},
    ]


async def test_one_statement_per_page_of_employees_or_teams(api: Api, engine: AsyncEngine) -> None:
    ids = await _world(engine)
    query = """{
      employees { performance(month: "2026-11") { revenue } performanceSeries(months: 12) { revenue } }
      teams { performance(month: "2026-11") { revenue } }
    }"""
    counts = {}
    for extra in (0, 30):
        if extra:
            async with session_factory(engine)() as session:
                await session.execute(
                    insert(Employee.__table__), [{"name": f"X{i}", "email": f"x{i}@example.com"} for i in range(extra)]
                )
                await session.commit()
        with counted_statements(engine) as statements:
            data = await api.data(query)
        assert len(data["employees"]) == 2 + extra
        counts[extra] = sum(1 for statement in statements if "FROM periods pe" in statement)
    # employees × (one month, the series) + teams × one month: three statements, whatever the page size.
    assert counts == {0: 3, 30: 3}
    assert {row["performance"]["revenue"] for row in data["employees"]} >= {"550.00", "110.00", "0.00"}
    assert ids


async def test_only_the_selected_groups_of_figures_are_computed(api: Api, engine: AsyncEngine) -> None:
    ids = await _world(engine)
    query = """query($a: ID!) { employee(id: $a) { performance(month: "2026-11") { %s } } }"""
    fragment = "\nfragment Moves on Performance { customersWon retentionRate }"
    for selection, marker, absent in (
        ("revenue attainment", "'purchase'", "moved AS"),
        ("...Moves", "moved AS", "'purchase'"),
        ("... on Performance { tasksOverdue }", "follow_ups AS", "moved AS"),
    ):
        with counted_statements(engine) as statements:
            document = query % selection + (fragment if "Moves" in selection else "")
            data = await api.data(document, {"a": global_id("Employee", ids["A"])})
        [statement] = [statement for statement in statements if "FROM periods pe" in statement]
        assert marker in statement and absent not in statement, selection
        assert data["employee"]["performance"]


async def test_set_target_by_role(api: Api, engine: AsyncEngine, tokens: dict[str, str], agent_token: str) -> None:
    ids = await _world(engine)
    mutation = """mutation($e: ID, $t: ID, $amount: Money) {
      setTarget(employeeId: $e, teamId: $t, month: "2027-01", amount: $amount) {
        target { month amount effectiveAmount employee { email } team { key } }
        userErrors { field code message }
      }
    }"""
    a = global_id("Employee", ids["A"])
    data = await api.data(mutation, {"e": a, "amount": "1200.50"}, token=tokens["manager"])
    assert data["setTarget"] == {
        "target": {"month": "2027-01", "amount": "1200.50", "effectiveAmount": "1200.50", "employee": {"email": "a@example.com"}, "team": None},
        "userErrors": [],
    }
    data = await api.data(mutation, {"t": global_id("Team", ids["T1"]), "amount": "7000"})
    assert data["setTarget"]["target"]["team"] == {"key": "t1"}
    data = await api.data(mutation, {"e": a, "amount": None})
    assert data["setTarget"]["target"] == {
        "month": "2027-01", "amount": None, "effectiveAmount": "1000.00", "employee": {"email": "a@example.com"}, "team": None,
    }
    before = await snapshot(engine)
    for token in (tokens["viewer"], agent_token):
        errors = await api.errors(mutation, {"e": a, "amount": "1"}, token=token)
        assert [error["extensions"]["code"] for error in errors] == ["FORBIDDEN"]
    assert await snapshot(engine) == before


@pytest.mark.parametrize(
    ("variables", "field", "code"),
    [
        ({"month": "2027-13", "amount": "1"}, "month", "INVALID_MONTH"),
        ({"month": "2027-01", "amount": "-1"}, "amount", "OUT_OF_RANGE"),
        ({"month": "2027-01", "amount": "0.001"}, "amount", "OUT_OF_RANGE"),
        ({"month": "2027-01", "amount": "1", "both": True}, "employeeId", "INVALID"),
        ({"month": "2027-01", "amount": "1", "employee": "bm9wZQ=="}, "employeeId", "INVALID_ID"),
        ({"month": "2027-01", "amount": "1", "employee": global_id("Employee", 10**6)}, "employeeId", "NOT_FOUND"),
    ],
)
async def test_set_target_bad_input_is_a_located_user_error(
    api: Api, engine: AsyncEngine, variables: dict[str, Any], field: str, code: str
) -> None:
    ids = await _world(engine)
    before = await snapshot(engine)
    employee = variables.get("employee", global_id("Employee", ids["A"]))
    team = global_id("Team", ids["T1"]) if variables.get("both") else None
    data = await api.data(
        """mutation($e: ID, $t: ID, $month: String!, $amount: Money) {
          setTarget(employeeId: $e, teamId: $t, month: $month, amount: $amount) { target { month } userErrors { field code } }
        }""",
        {"e": employee, "t": team, "month": variables["month"], "amount": variables["amount"]},
    )
    assert data["setTarget"] == {"target": None, "userErrors": [{"field": field, "code": code}]}
    assert await snapshot(engine) == before


async def test_performance_review_by_role(api: Api, engine: AsyncEngine, tokens: dict[str, str], agent_token: str) -> None:
    ids = await _world(engine)
    async with session_factory(engine)() as session:
        session.add_all([TeamMember(team_id=ids["T1"], employee_id=ids["A"]), TeamMember(team_id=ids["T1"], employee_id=ids["B"])])
        await session.commit()
    query = """{ performanceReview(month: "2026-11", team: "t1") {
      month policy
      teams { team { key } performance { revenue } rows { rank employee { email level } performance { revenue attainment } suggestedLevel reason } }
    } }"""
    for role in ("admin", "manager"):
        review = (await api.data(query, token=tokens[role]))["performanceReview"]
        assert review["month"] == "2026-11" and "100%" in review["policy"]
        [team] = review["teams"]
        assert team["team"] == {"key": "t1"} and team["performance"] == {"revenue": "550.00"}
        assert [(row["rank"], row["employee"]["email"], row["performance"]["revenue"]) for row in team["rows"]] == [
            (1, "a@example.com", "550.00"), (2, "b@example.com", "110.00"),
        ]
        # Default policy: three months at 100 % — October's 10 % fails it; nobody is promoted.
        assert [row["suggestedLevel"] for row in team["rows"]] == [None, None]
    for token in (tokens["viewer"], agent_token):
        errors = await api.errors(query, token=token)
        assert [error["extensions"]["code"] for error in errors] == ["FORBIDDEN"]
    async with session_factory(engine)() as session:
        assert set(await session.scalars(select(Employee.level))) == {"junior"}
        assert await session.scalar(select(PerformanceTarget.id).where(PerformanceTarget.month == "2030-01")) is None
    errors = await api.errors('{ performanceReview(month: "2026-1") { month } }')
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT" and errors[0]["extensions"]["field"] == "month"
    errors = await api.errors('{ performanceReview(month: "2026-11", team: "nope") { month } }')
    assert errors[0]["extensions"]["reason"] == "NOT_FOUND"


async def test_agents_read_only_their_own_figures(api: Api, engine: AsyncEngine, agent_token: str) -> None:
    ids = await _world(engine)
    data = await api.data(
        '{ employees { email performance(month: "2026-11") { revenue } performanceSeries(months: 2) { revenue } } '
        'teams { key performance { revenue } } }',
        token=agent_token,
    )
    seen = {row["email"]: (row["performance"], row["performanceSeries"]) for row in data["employees"]}
    assert seen["agent@example.com"] == ({"revenue": "0.00"}, [{"revenue": "0.00"}, {"revenue": "0.00"}])
    assert seen["a@example.com"] == (None, None)
    assert [row["performance"] for row in data["teams"]] == [None, None]
    assert ids


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ('month: "2026-13"', "month"),
        ('month: "2026-11", from: "2026-10"', "month"),
        ('from: "2026-10"', "to"),
        ('from: "2026-12", to: "2026-10"', "to"),
    ],
)
async def test_bad_periods_are_located_errors(api: Api, engine: AsyncEngine, arguments: str, field: str) -> None:
    await _world(engine)
    errors = await api.errors(f'{{ team(key: "t1") {{ performance({arguments}) {{ revenue }} }} }}')
    assert [(error["extensions"]["code"], error["extensions"]["field"], error["path"]) for error in errors] == [
        ("BAD_USER_INPUT", field, ["team", "performance"])
    ]
    errors = await api.errors('{ team(key: "t1") { performanceSeries(months: 25) { revenue } } }')
    assert errors[0]["extensions"]["field"] == "months"
