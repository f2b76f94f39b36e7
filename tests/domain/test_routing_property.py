"""Property: a bulk apply in the database gives every customer the team, segments and
rule tags that the Python evaluator (dsl.compile_rules) gives them one at a time;
the managers it picks belong to the team; and a second apply changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from segmenta.domain.customers.metrics import load_rule_values
from segmenta.domain.routing import runs
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.dsl import compile_rules
from segmenta.dsl.fields import SIZES
from segmenta.storage.engine import session_factory
from segmenta.storage.models import Base, Customer, CustomerAttribute, Employee, Team, TeamMember
from tests.domain.routing_support import (
    add_customer,
    add_employee,
    add_team,
    dynamic_segments_by_code,
    rule_tags_by_code,
)

AS_OF = datetime(2026, 3, 15, 10, 30)
TEAMS = ("t0", "t1", "t2", "t3")
REGIONS = ("east", "west", "north", "华东")
INDUSTRIES = ("finance", "fintech", "retail")

atoms = st.one_of(
    st.sampled_from(REGIONS).map(lambda r: f"region = {r}"),
    st.sampled_from(REGIONS).map(lambda r: f"region != {r}"),
    st.lists(st.sampled_from(REGIONS), min_size=1, max_size=3, unique=True).map(lambda rs: f"region in ({', '.join(rs)})"),
    st.lists(st.sampled_from(REGIONS), min_size=1, max_size=2, unique=True).map(lambda rs: f"region not in ({', '.join(rs)})"),
    st.tuples(st.sampled_from(["<", "<=", ">", ">=", "="]), st.sampled_from(SIZES)).map(lambda t: f"size {t[0]} {t[1]}"),
    st.tuples(st.sampled_from(["<", ">=", ">"]), st.sampled_from([0, 500, 1000, 2500])).map(lambda t: f"total_spent {t[0]} {t[1]}"),
    st.tuples(st.sampled_from(["<=", ">", "!="]), st.sampled_from([18, 40, 65])).map(lambda t: f"age {t[0]} {t[1]}"),
    st.sampled_from(["a", "b"]).map(lambda tag: f"tags contains {tag}"),
    st.sampled_from(["region", "age", "industry", "attr.tier"]).map(lambda f: f"{f} is missing"),
    st.sampled_from(["gold", "silver"]).map(lambda v: f"attr.tier = {v}"),
    st.sampled_from([30, 180]).map(lambda d: f"days_since_purchase > {d}"),
    st.sampled_from(['"fin*"', '"?etail"']).map(lambda p: f"industry like {p}"),
    st.sampled_from(["small", "medium"]).map(lambda low: f"size between {low} and large"),
)


def conditions(segments: tuple[str, ...]) -> st.SearchStrategy[str]:
    leaves = atoms | st.sampled_from(segments) if segments else atoms
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            inner.map(lambda c: f"not ({c})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} and {p[1]})"),
            st.tuples(inner, inner).map(lambda p: f"({p[0]} or {p[1]})"),
        ),
        max_leaves=4,
    )


@st.composite
def rule_files(draw: st.DrawFn) -> str:
    lines: list[str] = []
    defined: tuple[str, ...] = ()
    for index in range(draw(st.integers(0, 2))):
        lines.append(f"segment d{index} = {draw(conditions(defined))}")
        defined += (f"d{index}",)
    for index in range(draw(st.integers(1, 4))):
        actions = draw(
            st.lists(
                st.one_of(
                    st.sampled_from(TEAMS).map(lambda t: f"team {t}"),
                    st.sampled_from(["x", "y"]).map(lambda t: f"tag {t}"),
                    st.sampled_from(["s_a", "s_b"]).map(lambda s: f"segment {s}"),
                ),
                min_size=1,
                max_size=3,
                unique_by=lambda action: action.split()[0] if action.startswith("team") else action,
            )
        )
        label = f"r{index}: " if draw(st.booleans()) else ""
        lines.append(f"{label}{draw(conditions(defined))} -> {', '.join(actions)}")
    if draw(st.booleans()):
        lines.append(f"otherwise -> team {draw(st.sampled_from(TEAMS))}, tag rest")
    return "\n".join(lines) + "\n"


customers_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "region": st.none() | st.sampled_from(REGIONS),
            "size": st.none() | st.sampled_from(SIZES),
            "industry": st.none() | st.sampled_from(INDUSTRIES),
            "age": st.none() | st.sampled_from([17.0, 18.0, 40.0, 64.5]),
            "total_spent": st.sampled_from([0.0, 499.5, 500.0, 1000.0, 5000.0]),
            "days_ago": st.none() | st.sampled_from([0, 30, 31, 181]),
            "tags": st.lists(st.sampled_from(["a", "b"]), unique=True),
            "tier": st.none() | st.sampled_from(["gold", "silver"]),
            "team": st.none() | st.sampled_from(TEAMS),
            "locked": st.booleans(),
        }
    ),
    min_size=1,
    max_size=8,
)


async def _fresh_world(engine: AsyncEngine, people: list[dict[str, Any]]) -> None:
    async with session_factory(engine)() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(table.delete())
        ann = await add_employee(session, "Ann", regions=["east"])
        bob = await add_employee(session, "Bob", capacity=2, specialties=["finance"])
        cid = await add_employee(session, "Cid", active=False)
        team_ids = {
            "t0": (await add_team(session, "t0", members=[ann, bob])).id,
            "t1": (await add_team(session, "t1", strategy="least_loaded", members=[bob, cid])).id,
            "t2": (await add_team(session, "t2", strategy="manual", members=[ann])).id,
            "t3": (await add_team(session, "t3")).id,
        }
        for index, person in enumerate(people):
            customer = await add_customer(
                session,
                f"p{index}",
                tags=person["tags"],
                region=person["region"],
                size=person["size"],
                industry=person["industry"],
                age=person["age"],
                total_spent=person["total_spent"],
                last_purchase_at=None if person["days_ago"] is None else AS_OF - timedelta(days=person["days_ago"], hours=1),
                team_id=team_ids[person["team"]] if person["team"] else None,
                assignment_locked=person["locked"],
            )
            if person["tier"] is not None:
                session.add(CustomerAttribute(customer_id=customer.id, key="tier", text_value=person["tier"]))
        await session.commit()


# Each example runs two applies (~0.5 s each, mostly per-statement overhead): 20 per back end.
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(source=rule_files(), people=customers_strategy)
async def test_bulk_apply_agrees_with_the_python_evaluator(engine: AsyncEngine, source: str, people: list[dict[str, Any]]) -> None:
    evaluator = compile_rules(source)
    await _fresh_world(engine, people)
    async with session_factory(engine)() as session:
        before = dict((await session.execute(select(Customer.code, Customer.team_id))).all())
        ruleset = await save_ruleset(session, "property", source)
        assert not ruleset.has_errors, (source, ruleset.diagnostics)
        await activate_ruleset(session, ruleset.id)
        await session.commit()
        run = await runs.apply_ruleset(session, ruleset.id, as_of=AS_OF)
        assert run.status == "succeeded", run.error

        rows = (await session.execute(select(Customer.id, Customer.code, Customer.team_id, Customer.manager_id, Customer.assignment_locked))).all()
        values = await load_rule_values(session, [row.id for row in rows], as_of=AS_OF)
        team_keys = dict((await session.execute(select(Team.id, Team.key))).all())
        members = {(team, employee) for team, employee in (await session.execute(
            select(TeamMember.team_id, TeamMember.employee_id).join(Employee, Employee.id == TeamMember.employee_id).where(Employee.active.is_(True))
        )).all()}
        segments = await dynamic_segments_by_code(session)
        tags = await rule_tags_by_code(session)
        for row in rows:
            outcome = evaluator.evaluate(values[row.id], AS_OF)
            expected_team = before[row.code] if row.assignment_locked else (
                None if outcome.team is None else next(i for i, k in team_keys.items() if k == outcome.team)
            )
            assert row.team_id == expected_team, (source, row.code, values[row.id], outcome)
            assert segments.get(row.code, set()) == set(outcome.segments), (source, row.code, outcome)
            assert tags.get(row.code, set()) == set(outcome.tags), (source, row.code, outcome)
            if not row.assignment_locked and row.manager_id is not None:
                assert (row.team_id, row.manager_id) in members
        assert run.summary["evaluated"] == len(people)

        again = await runs.apply_ruleset(session, ruleset.id, as_of=AS_OF)
        assert again.status == "succeeded" and again.summary["changed"] == 0, (source, again.summary)
        # The second run counts settled customers from its census, the first from its subjects.
        figures = ("evaluated", "unmatched", "locked", "team_counts", "rule_hits", "segment_counts", "tag_counts",
                   "unassigned_by_team")
        assert {key: again.summary[key] for key in figures} == {key: run.summary[key] for key in figures}, source
