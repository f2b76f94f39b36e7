"""Data limits: every number, date and text a service accepts is bounded, and a refused
value is a UserError naming its field, with nothing written (both back ends)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from segmenta.domain import validation as v
from segmenta.domain.customers.activity import record_interaction, record_purchase, submit_feedback
from segmenta.domain.customers.profiles import create_customer, update_customer
from segmenta.domain.customers.records import get_customer_attributes
from segmenta.domain.errors import UserError
from segmenta.storage.engine import session_factory
from segmenta.storage.models import Customer, utcnow
from tests.domain.helpers import database_snapshot

EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


async def _new_customer(engine: AsyncEngine, code: str = "LIMITS") -> int:
    async with session_factory(engine)() as session:
        customer = await create_customer(session, {"code": code, "name": "Limits"})
        await session.commit()
        return customer.id


async def _refused(session: AsyncSession, call: Any, field: str) -> UserError:
    """`call()` must raise a UserError on `field` and leave the database as it was."""
    before = await database_snapshot(session)
    with pytest.raises(UserError) as raised:
        await call()
    await session.rollback()
    assert raised.value.field == field, raised.value.message
    assert await database_snapshot(session) == before
    return raised.value


# -- money -------------------------------------------------------------------------------------


def _acceptable_amount(amount: float) -> bool:
    if not math.isfinite(amount) or not 0 <= amount <= v.MAX_PURCHASE_AMOUNT:
        return False
    exponent = Decimal(repr(amount)).as_tuple().exponent
    return not isinstance(exponent, int) or exponent >= -v.MONEY_DECIMALS


_amounts = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10, 2e9).map(lambda x: round(x, 2)),
    st.decimals(0, 10**6, places=3).map(float),
    st.sampled_from([1.7e308, -0.0, 0.0, 0.01, 0.005, 1e9, 1e9 + 0.01, 999_999_999.99]),
)


@EXAMPLES
@given(amount=_amounts)
async def test_a_purchase_amount_is_bounded_and_has_cents_at_most(engine: AsyncEngine, amount: float) -> None:
    customer_id = await _new_customer(engine)
    try:
        async with session_factory(engine)() as session:
            call = lambda: record_purchase(session, customer_id=customer_id, amount=amount)  # noqa: E731
            if _acceptable_amount(amount):
                await call()
                await session.commit()
                stored = await session.get(Customer, customer_id)
                assert stored is not None and stored.total_spent == Decimal(repr(amount))  # as written, exact
            else:
                error = await _refused(session, call, "amount")
                assert error.code in ("invalid", "out_of_range")
    finally:
        async with engine.begin() as connection:
            await connection.execute(Customer.__table__.delete())


async def test_the_purchase_that_overflowed_total_spent_is_refused(session: AsyncSession) -> None:
    """Regression: 1.7e308 twice made total_spent Inf on SQLite and broke stats on PostgreSQL."""
    customer = await create_customer(session, {"code": "BIG", "name": "Big"})
    await session.commit()
    error = await _refused(session, lambda: record_purchase(session, customer_id=customer.id, amount=1.7e308), "amount")
    assert error.code == "out_of_range"


async def test_a_purchase_may_not_take_the_total_past_its_maximum(session: AsyncSession) -> None:
    customer = await create_customer(session, {"code": "RICH", "name": "Rich"})
    near = v.MAX_TOTAL_SPENT - v.MAX_PURCHASE_AMOUNT + 1
    await session.execute(update(Customer).where(Customer.id == customer.id).values(total_spent=float(near)))
    await session.commit()
    customer_id = customer.id
    error = await _refused(
        session, lambda: record_purchase(session, customer_id=customer_id, amount=v.MAX_PURCHASE_AMOUNT), "amount"
    )
    assert (error.code, f"{v.MAX_TOTAL_SPENT:,}" in error.message) == ("out_of_range", True)
    # Up to the maximum exactly is fine.
    await record_purchase(session, customer_id=customer_id, amount=v.MAX_PURCHASE_AMOUNT - 1)
    await session.commit()
    stored = await session.get(Customer, customer_id, populate_existing=True)
    assert stored is not None and stored.total_spent == v.MAX_TOTAL_SPENT


# -- other numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"income": 1e300}, "income"),
        ({"income": 10**400}, "income"),
        ({"income": float("inf")}, "income"),
        ({"income": float("nan")}, "income"),
        ({"age": 151}, "age"),
        ({"attributes": {"seats": 1e16}}, "attributes"),
        ({"attributes": {"seats": -(10**400)}}, "attributes"),
        ({"attributes": {"seats": float("-inf")}}, "attributes"),
    ],
)
async def test_numbers_outside_their_range_are_refused(session: AsyncSession, data: dict[str, Any], field: str) -> None:
    await _refused(session, lambda: create_customer(session, {"code": "N", "name": "N", **data}), field)


def test_a_whole_number_fits_a_32_bit_column_and_a_message_stays_short() -> None:
    with pytest.raises(UserError) as raised:
        v.whole_number(2**40, "capacity", minimum=0)
    assert raised.value.code == "out_of_range"
    with pytest.raises(UserError) as huge:
        v.number(10**5000, "income")
    assert len(huge.value.message) < 200


# -- dates -------------------------------------------------------------------------------------

_zones = st.sampled_from([None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
_stamps = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59), timezones=_zones),
    st.sampled_from(
        [
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
            datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
            datetime(9999, 1, 1),
            datetime(1899, 12, 31, 23, 59),
            datetime(1900, 1, 1),
        ]
    ),
)


def _in_range(stamp: datetime) -> bool:
    try:
        utc = stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo else stamp
    except OverflowError:
        return False
    return datetime(1900, 1, 1) <= utc <= utcnow() + timedelta(days=1)


@EXAMPLES
@given(stamp=_stamps, kind=st.sampled_from(["purchase", "interaction", "feedback"]))
async def test_activity_dates_lie_between_1900_and_tomorrow(engine: AsyncEngine, stamp: datetime, kind: str) -> None:
    customer_id = await _new_customer(engine)
    calls = {
        "purchase": ("purchased_at", lambda s: record_purchase(s, customer_id=customer_id, amount=1, purchased_at=stamp)),
        "interaction": ("occurred_at", lambda s: record_interaction(s, customer_id=customer_id, kind="call", occurred_at=stamp)),
        "feedback": ("created_at", lambda s: submit_feedback(s, customer_id=customer_id, kind="praise", created_at=stamp)),
    }
    field, call = calls[kind]
    try:
        async with session_factory(engine)() as session:
            if _in_range(stamp):
                await call(session)
                await session.commit()
            else:
                error = await _refused(session, lambda: call(session), field)
                assert error.code == "out_of_range"
    finally:
        async with engine.begin() as connection:
            await connection.execute(Customer.__table__.delete())


async def test_a_purchase_in_year_9999_is_refused_not_counted_in_days(session: AsyncSession) -> None:
    """Regression: purchasedAt 9999 gave daysSincePurchase -2,912,104; year 1 at +14:00 raised OverflowError."""
    customer = await create_customer(session, {"code": "FAR", "name": "Far"})
    await session.commit()
    customer_id = customer.id
    for stamp in (datetime(9999, 12, 31), datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), "0001-01-01T00:00+14:00"):
        error = await _refused(
            session, lambda: record_purchase(session, customer_id=customer_id, amount=1, purchased_at=stamp), "purchased_at"  # noqa: B023  called in this iteration
        )
        assert error.code == "out_of_range"


@pytest.mark.parametrize("birthday", ["1899-12-31", "0001-01-01", (utcnow() + timedelta(days=2)).date().isoformat()])
async def test_a_birthday_lies_between_1900_and_today(session: AsyncSession, birthday: str) -> None:
    error = await _refused(session, lambda: create_customer(session, {"code": "B", "name": "B", "birthday": birthday}), "birthday")
    assert error.code == "out_of_range"


# -- text --------------------------------------------------------------------------------------

_any_text = st.text(st.characters(), max_size=30) | st.sampled_from(["a\x00b", "\x00", "\ud800", "ok\udfff", " x "])


@EXAMPLES
@given(name=_any_text, city=_any_text, tag=_any_text, attribute=_any_text)
async def test_any_unicode_text_is_stored_as_given_or_refused_as_user_error(
    engine: AsyncEngine, name: str, city: str, tag: str, attribute: str
) -> None:
    """Random unicode, NUL and lone surrogates included: never a database error, never a partial write."""
    data = {"code": "TXT", "name": name, "city": city, "tags": [tag], "attributes": {"note": attribute}}
    try:
        async with session_factory(engine)() as session:
            before = await database_snapshot(session)
            try:
                customer = await create_customer(session, data)
                await session.commit()
            except UserError as error:
                await session.rollback()
                assert error.field in ("name", "city", "tags", "attributes")
                assert await database_snapshot(session) == before
                values = {"name": name, "city": city, "tags": tag, "attributes": attribute}
                bad = values[error.field]
                assert (
                    "\x00" in bad
                    or not bad.strip()
                    or any("\ud800" <= char <= "\udfff" for char in bad)
                    or (error.field == "tags" and len(bad.strip()) > 100)
                ), error.message
                return
            for text in (name, city, tag, attribute):
                assert "\x00" not in text
            assert (customer.name, customer.city) == (name.strip(), city.strip() or None)
            attributes = await get_customer_attributes(session, [customer.id])
            assert attributes[customer.id] == {"note": attribute}
    finally:
        async with engine.begin() as connection:
            await connection.execute(Customer.__table__.delete())


async def test_a_nul_byte_in_any_text_is_invalid_text(session: AsyncSession) -> None:
    """Regression: PostgreSQL refused NUL in text with a driver error (INTERNAL_SERVER_ERROR)."""
    customer = await create_customer(session, {"code": "NUL", "name": "Nul"})
    await session.commit()
    customer_id = customer.id
    calls = [
        (lambda: create_customer(session, {"code": "a\x00b", "name": "N"}), "code"),
        (lambda: update_customer(session, customer_id, {"address": "x\x00"}), "address"),
        (lambda: update_customer(session, customer_id, {"attributes": {"k": "\x00"}}), "attributes"),
        (lambda: update_customer(session, customer_id, {"tags": ["ok", "b\x00d"]}), "tags"),
        (lambda: record_purchase(session, customer_id=customer_id, amount=1, product="\x00"), "product"),
        (lambda: record_interaction(session, customer_id=customer_id, kind="call", summary="hi\x00"), "summary"),
        (lambda: submit_feedback(session, customer_id=customer_id, kind="praise", comment="\x00!"), "comment"),
    ]
    for call, field in calls:
        error = await _refused(session, call, field)
        assert error.code == "invalid_text"


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        ({"address": "x" * (v.MAX_FREE_TEXT + 1)}, "address", "too_long"),
        ({"tags": [f"t{n}" for n in range(v.MAX_LIST_ITEMS + 1)]}, "tags", "too_many"),
        ({"attributes": {f"k{n}": n for n in range(v.MAX_ATTRIBUTES + 1)}}, "attributes", "too_many"),
        ({"attributes": {"k" * (v.MAX_ATTRIBUTE_KEY + 1): 1}}, "attributes", "too_long"),
        ({"attributes": {"note": "x" * (v.MAX_ATTRIBUTE_TEXT + 1)}}, "attributes", "too_long"),
    ],
)
async def test_text_lengths_and_counts_are_bounded(session: AsyncSession, data: dict[str, Any], field: str, code: str) -> None:
    error = await _refused(session, lambda: create_customer(session, {"code": "L", "name": "L", **data}), field)
    assert error.code == code


async def test_limits_themselves_are_accepted(session: AsyncSession) -> None:
    customer = await create_customer(
        session,
        {
            "code": "EDGE",
            "name": "Edge",
            "address": "x" * v.MAX_FREE_TEXT,
            "tags": [f"t{n}" for n in range(v.MAX_LIST_ITEMS)],
            "attributes": {("k" * (v.MAX_ATTRIBUTE_KEY - 2)) + f"{n:02d}": "y" * v.MAX_ATTRIBUTE_TEXT for n in range(v.MAX_ATTRIBUTES)},
        },
    )
    await session.commit()
    assert len((await get_customer_attributes(session, [customer.id]))[customer.id]) == v.MAX_ATTRIBUTES


async def test_updates_may_not_grow_attributes_past_the_maximum(session: AsyncSession) -> None:
    """Regression: fifty new keys per update let one customer collect 10,000 attributes."""
    customer = await create_customer(
        session, {"code": "GROW", "name": "Grow", "attributes": {f"a{n}": n for n in range(v.MAX_ATTRIBUTES)}}
    )
    await session.commit()
    customer_id = customer.id
    error = await _refused(session, lambda: update_customer(session, customer_id, {"attributes": {"extra": 1}}), "attributes")
    assert error.code == "too_many"
    # Replacing one key by another keeps the count: allowed.
    await update_customer(session, customer_id, {"attributes": {"a0": None, "extra": 1}})
    await session.commit()
    assert len((await get_customer_attributes(session, [customer_id]))[customer_id]) == v.MAX_ATTRIBUTES


async def _fill_attribute_keys(session: AsyncSession) -> int:
    """A customer holding one key of each of MAX_ATTRIBUTE_KEYS distinct keys (written behind the limit)."""
    from sqlalchemy import insert

    from segmenta.storage.models import CustomerAttribute

    holder = await create_customer(session, {"code": "KEYS", "name": "Keys"})
    rows = [{"customer_id": holder.id, "key": f"k{n:03d}", "number_value": 1.0} for n in range(v.MAX_ATTRIBUTE_KEYS)]
    await session.execute(insert(CustomerAttribute.__table__), rows)
    await session.commit()
    return holder.id


async def test_the_database_holds_a_bounded_number_of_attribute_keys(session: AsyncSession) -> None:
    """Each distinct key is a column of every exported row: new keys past the limit are refused."""
    await _fill_attribute_keys(session)
    error = await _refused(
        session, lambda: create_customer(session, {"code": "NEW", "name": "New", "attributes": {"fresh": 1}}), "attributes"
    )
    assert error.code == "too_many" and f"{v.MAX_ATTRIBUTE_KEYS}" in error.message
    other = await create_customer(session, {"code": "OLD", "name": "Old", "attributes": {"k001": "reused"}})
    await session.commit()
    other_id = other.id
    error = await _refused(session, lambda: update_customer(session, other_id, {"attributes": {"fresh": 1}}), "attributes")
    assert error.code == "too_many"
    await update_customer(session, other_id, {"attributes": {"k002": 2, "k001": None}})
    await session.commit()


async def test_an_id_beyond_the_32_bit_keys_does_not_exist(session: AsyncSession) -> None:
    error = await _refused(session, lambda: record_purchase(session, customer_id=2**40, amount=1), "customer_id")
    assert error.code == "not_found"
