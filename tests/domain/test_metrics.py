"""domain.customers.metrics: recomputation equals incremental maintenance; the rule-value mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from segmenta.domain.customers.activity import (
    record_interaction,
    record_purchase,
    submit_feedback,
    update_feedback_status,
)
from segmenta.domain.customers.metrics import (
    METRIC_COLUMNS,
    customer_metrics,
    load_rule_values,
    recompute_metrics,
    rule_values,
)
from segmenta.domain.customers.profiles import create_customer, update_customer
from segmenta.domain.customers.vocabulary import FEEDBACK_KINDS, FEEDBACK_STATUSES, INTERACTION_KINDS, SCORE_RANGES
from segmenta.domain.errors import UserError
from segmenta.dsl.fields import FIELDS
from segmenta.storage.models import Customer, CustomerTag, Feedback

BASE = datetime(2024, 1, 1)
# Score sums are floats (addition order may differ); money (total_spent) is exact and compared exactly.
FLOAT_COLUMNS = {"survey_sum", "nps_sum"}


async def _metric_rows(session: AsyncSession, customer_ids: list[int]) -> dict[int, dict[str, Any]]:
    columns = [Customer.id, Customer.birthday_md, *(getattr(Customer, name) for name in METRIC_COLUMNS)]
    rows = await session.execute(select(*columns).where(Customer.id.in_(customer_ids)))
    return {row.id: dict(row._mapping) for row in rows}


def _assert_same_metrics(incremental: dict[int, dict[str, Any]], recomputed: dict[int, dict[str, Any]]) -> None:
    assert incremental.keys() == recomputed.keys()
    for customer_id, maintained in incremental.items():
        for column, value in maintained.items():
            expected = recomputed[customer_id][column]
            if column in FLOAT_COLUMNS:
                assert value == pytest.approx(expected, rel=1e-9, abs=1e-6), (customer_id, column)
            else:
                assert value == expected, (customer_id, column)


# One event of a random history: which customer (index), and what happens.
purchase_events = st.tuples(
    st.just("purchase"),
    st.integers(0, 2),
    st.integers(0, 10_000_000).map(lambda cents: cents / 100),
    st.integers(-400, 400),
)
interaction_events = st.tuples(
    st.just("interaction"), st.integers(0, 2), st.sampled_from(INTERACTION_KINDS), st.integers(-400, 400)
)
# Complaints are weighted up: their status changes are where open_complaints can drift.
feedback_events = st.tuples(
    st.just("feedback"), st.integers(0, 2), st.sampled_from(FEEDBACK_KINDS + ("complaint",) * 3), st.integers(0, 10)
)
status_events = st.tuples(
    st.just("status"), st.integers(0, 50), st.sampled_from(FEEDBACK_STATUSES), st.none()
)
histories = st.lists(
    st.one_of(purchase_events, interaction_events, feedback_events, status_events, status_events), max_size=40
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories)
async def test_incremental_maintenance_equals_recompute(engine: AsyncEngine, history: list[tuple[Any, ...]]) -> None:
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        try:
            customers = [
                await create_customer(session, {"code": f"H{index}", "name": "H", "birthday": date(1980, 1 + index, 9)})
                for index in range(3)
            ]
            ids = [customer.id for customer in customers]
            feedback_ids: list[int] = []
            for event_kind, target, detail, extra in history:
                if event_kind == "purchase":
                    await record_purchase(
                        session, customer_id=ids[target], amount=detail, purchased_at=BASE + timedelta(days=extra)
                    )
                elif event_kind == "interaction":
                    await record_interaction(
                        session, customer_id=ids[target], kind=detail, occurred_at=BASE + timedelta(hours=extra)
                    )
                elif event_kind == "feedback":
                    low, high = SCORE_RANGES.get(detail, (0, 0))
                    score = min(max(extra, low), high) if detail in SCORE_RANGES else None
                    feedback = await submit_feedback(session, customer_id=ids[target], kind=detail, score=score)
                    feedback_ids.append(feedback.id)
                elif feedback_ids:
                    try:
                        await update_feedback_status(session, feedback_ids[target % len(feedback_ids)], detail)
                    except UserError as refused:
                        assert refused.code == "invalid_transition"
            await session.flush()
            incremental = await _metric_rows(session, ids)
            await recompute_metrics(session, ids)
            recomputed = await _metric_rows(session, ids)
            _assert_same_metrics(incremental, recomputed)
            # The loaded objects were refreshed to the recomputed values too.
            assert [customer.purchase_count for customer in customers] == [recomputed[i]["purchase_count"] for i in ids]
        finally:
            await session.rollback()


async def test_recompute_repairs_only_the_requested_customers(session: AsyncSession) -> None:
    first = await create_customer(session, {"code": "R1", "name": "R1", "birthday": date(1990, 7, 4)})
    second = await create_customer(session, {"code": "R2", "name": "R2"})
    for customer in (first, second):
        await record_purchase(session, customer_id=customer.id, amount=10, purchased_at=BASE)
        await submit_feedback(session, customer_id=customer.id, kind="complaint")
        await record_interaction(session, customer_id=customer.id, kind="call", occurred_at=BASE)
    await session.commit()
    expected = await _metric_rows(session, [first.id, second.id])

    corrupt = {
        "purchase_count": 99,
        "total_spent": -1.0,
        "open_complaints": 7,
        "last_contact_at": None,
        "birthday_md": 1,
    }
    await session.execute(update(Customer).values(corrupt).execution_options(synchronize_session=False))
    await recompute_metrics(session, [first.id])
    repaired = await _metric_rows(session, [first.id, second.id])
    assert repaired[first.id] == expected[first.id]
    assert {name: repaired[second.id][name] for name in corrupt} == corrupt

    await recompute_metrics(session)
    assert await _metric_rows(session, [first.id, second.id]) == expected
    assert (first.purchase_count, first.birthday_md) == (1, 704)  # loaded objects see the repair


async def test_recompute_counts_status_of_imported_complaints(session: AsyncSession) -> None:
    """Rows written without the services (bulk import) are counted by recompute."""
    customer = await create_customer(session, {"code": "IMP", "name": "Imported"})
    session.add_all(
        Feedback(customer_id=customer.id, kind="complaint", status=status) for status in FEEDBACK_STATUSES
    )
    session.add(Feedback(customer_id=customer.id, kind="survey", score=3, status="closed"))
    await session.flush()
    await recompute_metrics(session, [customer.id])
    assert (customer.feedback_count, customer.complaint_count, customer.open_complaints) == (5, 4, 2)
    assert (customer.survey_count, customer.survey_sum) == (1, 3.0)
    assert customer.purchase_count == 0 and customer.total_spent == 0.0 and customer.last_purchase_at is None


def test_customer_metrics_of_a_customer_with_nothing() -> None:
    empty = {"purchase_count": 0, "total_spent": 0.0, "survey_count": 0, "survey_sum": 0.0, "nps_count": 0}
    metrics = customer_metrics(empty)
    assert metrics["purchase_count"] == 0 and metrics["total_spent"] == 0.0
    assert metrics["avg_order_value"] is None and metrics["avg_satisfaction"] is None and metrics["nps"] is None
    assert metrics["feedback_count"] == 0 and metrics["open_complaints"] == 0


async def test_rule_values_uses_rule_language_names(session: AsyncSession) -> None:
    customer = await create_customer(
        session,
        {
            "code": "RV",
            "name": "Rule Values",
            "size": "large",
            "region": "华东",
            "birthday": date(1990, 3, 15),
            "created_at": datetime(2023, 1, 1),
            "tags": ["vip"],
            "attributes": {"tier": "gold", "seats": 12},
        },
    )
    await record_purchase(session, customer_id=customer.id, amount=300, category="tools", purchased_at=datetime(2024, 1, 1))
    await record_purchase(session, customer_id=customer.id, amount=100, category="food", purchased_at=datetime(2024, 2, 1))
    await submit_feedback(session, customer_id=customer.id, kind="survey", score=5)
    await submit_feedback(session, customer_id=customer.id, kind="survey", score=2)
    await submit_feedback(session, customer_id=customer.id, kind="nps", score=8)
    await submit_feedback(session, customer_id=customer.id, kind="complaint")
    await record_interaction(session, customer_id=customer.id, kind="call", occurred_at=datetime(2024, 2, 10))

    as_of = datetime(2024, 3, 1, 12, 0)
    values = rule_values(customer, ["vip"], {"tier": "gold", "seats": 12.0}, ["tools", "food"], as_of=as_of)
    assert values["size"] == "large" and values["region"] == "华东"
    assert "city" not in values and "age" not in values  # missing stays missing
    assert values["purchase_count"] == 2 and values["total_spent"] == 400.0 and values["avg_order_value"] == 200.0
    assert values["avg_satisfaction"] == 3.5 and values["nps"] == 8.0
    assert (values["feedback_count"], values["complaint_count"], values["open_complaints"]) == (4, 1, 1)
    assert values["interaction_count"] == 1
    assert values["product_categories"] == frozenset({"tools", "food"}) and values["tags"] == frozenset({"vip"})
    assert values["attr.tier"] == "gold" and values["attr.seats"] == 12.0
    assert values["days_since_purchase"] == 29 and values["days_since_contact"] == 20
    assert values["tenure_days"] == 425 and values["days_to_birthday"] == 14
    rule_names = {name for name in values if not name.startswith("attr.")} - {"last_contact_at"}
    assert rule_names <= set(FIELDS), rule_names - set(FIELDS)

    loaded = await load_rule_values(session, [customer.id, 123456789], as_of=as_of)
    assert loaded == {customer.id: values}


async def test_rule_values_without_activity(session: AsyncSession) -> None:
    customer = await create_customer(session, {"code": "NEW", "name": "New"})
    values = (await load_rule_values(session, [customer.id]))[customer.id]
    assert values["purchase_count"] == 0 and values["open_complaints"] == 0
    assert values["tags"] == frozenset() and values["product_categories"] == frozenset()
    for missing in ("avg_order_value", "avg_satisfaction", "nps", "last_purchase_at", "days_since_purchase"):
        assert missing not in values


@contextmanager
def _counting_selects(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def test_load_rule_values_uses_a_constant_number_of_queries(engine: AsyncEngine, session: AsyncSession) -> None:
    ids = []
    for index in range(30):
        customer = await create_customer(
            session, {"code": f"Q{index}", "name": "Q", "tags": ["t"], "attributes": {"k": index}}
        )
        await record_purchase(session, customer_id=customer.id, amount=1, category=f"c{index % 3}")
        ids.append(customer.id)
    await session.commit()

    with _counting_selects(engine) as few:
        small = await load_rule_values(session, ids[:3])
    with _counting_selects(engine) as many:
        large = await load_rule_values(session, ids)
    assert len(few) == len(many) == 4
    assert len(small) == 3 and len(large) == 30
    assert large[ids[7]]["attr.k"] == 7.0 and large[ids[7]]["product_categories"] == frozenset({"c1"})


async def test_rule_values_reads_manual_tags_only(session: AsyncSession) -> None:
    customer = await create_customer(session, {"code": "TG", "name": "TG", "tags": ["manual_one"]})
    session.add(CustomerTag(customer_id=customer.id, tag="from_rule", source="rule"))
    await update_customer(session, customer.id, {"region": "north"})
    values = (await load_rule_values(session, [customer.id]))[customer.id]
    assert values["tags"] == frozenset({"manual_one"}) and values["region"] == "north"
