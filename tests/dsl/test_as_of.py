"""One rule for instants (dsl.fields.naive_utc): stored timestamps are naive UTC, so an aware
`as_of` (or datetime value) is converted to UTC and loses its zone, and a naive one is UTC.

An aware `as_of` must give the decision of its UTC instant in the Python evaluator, the
explainer, the SQL compiler and a routing run alike.  The instant below is chosen so that
dropping the zone instead of converting moves it across a day boundary: both day metrics
would then disagree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.routing import runs
from segmenta.domain.routing.rulesets import activate_ruleset, save_ruleset
from segmenta.dsl import compile_rules
from segmenta.dsl.fields import days_between, days_to_birthday, naive_utc
from segmenta.dsl.parser import parse
from segmenta.storage.models import Customer
from segmenta.storage.rule_fields import evaluate_in_database
from tests.domain.routing_support import add_customer, add_team, rule_tags_by_code, team_keys_by_code
from tests.dsl.test_sql_compiler import Person, insert_people

AWARE = datetime(2026, 3, 2, 3, 0, tzinfo=timezone(timedelta(hours=8)))
UTC_INSTANT = datetime(2026, 3, 1, 19, 0)  # AWARE in UTC; dropping the zone would give 2 March, 03:00
LAST_PURCHASE = UTC_INSTANT - timedelta(days=180) + timedelta(hours=1)  # 179 days before; 180 with the zone dropped
BIRTHDAY = date(1990, 3, 1)  # today in UTC; 365 days away with the zone dropped

RULES = """\
lapsed: days_since_purchase >= 180 -> team lapsed
birthday: days_to_birthday = 0 -> tag birthday_today
otherwise -> team recent
"""
PURCHASER = {"last_purchase_at": LAST_PURCHASE}
CELEBRANT = {"birthday": BIRTHDAY}


def test_naive_utc_converts_an_aware_instant_and_keeps_a_naive_one() -> None:
    assert naive_utc(AWARE) == UTC_INSTANT
    assert naive_utc(UTC_INSTANT) is UTC_INSTANT
    assert naive_utc(UTC_INSTANT.replace(tzinfo=UTC)) == UTC_INSTANT
    now = naive_utc(None)
    assert now.tzinfo is None and abs(now - datetime.now(UTC).replace(tzinfo=None)) < timedelta(seconds=5)


def test_the_day_metrics_read_the_utc_instant() -> None:
    assert days_between(LAST_PURCHASE, AWARE) == days_between(LAST_PURCHASE, UTC_INSTANT) == 179
    assert days_to_birthday(BIRTHDAY, AWARE) == days_to_birthday(BIRTHDAY, UTC_INSTANT) == 0
    # A datetime value follows the same rule as `as_of`.
    aware_purchase = LAST_PURCHASE.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=-5)))
    assert days_between(aware_purchase, UTC_INSTANT) == 179


def test_python_evaluator_and_explainer() -> None:
    ruleset = compile_rules(RULES)
    for as_of in (AWARE, UTC_INSTANT):
        assert ruleset.evaluate(PURCHASER, as_of=as_of).team == "recent"
        celebrant = ruleset.evaluate(CELEBRANT, as_of=as_of)
        assert (celebrant.team, celebrant.tags) == ("recent", ("birthday_today",))
        assert ruleset.explain(PURCHASER, as_of=as_of).team == "recent"
        assert ruleset.explain(CELEBRANT, as_of=as_of).tags == ("birthday_today",)


def test_an_aware_datetime_value_is_read_in_utc() -> None:
    ruleset = compile_rules("new_year: last_purchase_at = 2026-01-01 -> team new_year\n")
    late_on_new_years_eve_in_utc = datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=8)))
    assert ruleset.evaluate({"last_purchase_at": late_on_new_years_eve_in_utc}).team is None
    assert ruleset.evaluate({"last_purchase_at": datetime(2025, 12, 31, 18, 0)}).team is None
    assert ruleset.evaluate({"last_purchase_at": datetime(2026, 1, 1, 18, 0, tzinfo=UTC)}).team == "new_year"


async def test_sql_compiler(session: AsyncSession) -> None:
    ids = await insert_people(session, [Person("purchaser", PURCHASER), Person("celebrant", CELEBRANT)])
    rule_file, diagnostics = parse(RULES)
    assert not diagnostics
    for as_of in (AWARE, UTC_INSTANT):
        outcomes = await evaluate_in_database(session, rule_file, as_of)
        assert outcomes[ids["purchaser"]][0] == "recent"
        assert outcomes[ids["celebrant"]][0] == "recent"
        assert outcomes[ids["celebrant"]][3] == {"birthday_today"}


async def test_a_run_with_an_aware_as_of(session: AsyncSession) -> None:
    for key in ("lapsed", "recent"):
        await add_team(session, key, strategy="manual")
    await add_customer(session, "purchaser", **PURCHASER)
    await add_customer(session, "celebrant", birthday=BIRTHDAY, birthday_md=BIRTHDAY.month * 100 + BIRTHDAY.day)
    await session.commit()
    ruleset = await save_ruleset(session, "main", RULES)
    await activate_ruleset(session, ruleset.id)
    await session.commit()
    run = await runs.apply_ruleset(session, ruleset.id, as_of=AWARE)
    assert run.status == "succeeded", run.error
    assert run.as_of == UTC_INSTANT
    assert await team_keys_by_code(session) == {"purchaser": "recent", "celebrant": "recent"}
    assert await rule_tags_by_code(session) == {"celebrant": {"birthday_today"}}
    assert (await session.scalars(select(Customer.code).order_by(Customer.code))).all() == ["celebrant", "purchaser"]
