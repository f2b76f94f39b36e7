"""Input validation shared by the domain services.

Every function takes the raw value and the snake_case field name, and returns the
normalised value or raises ``UserError`` naming that field.  Services call these
for every input *before* their first statement, so a bad value never half-writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from segmenta.domain.errors import Conflict, UserError
from segmenta.dsl.money import MONEY_DECIMALS, NotMoney, is_whole_cents, to_cent, to_decimal

# A rule-language bare word (docs/rule-language.md, 'Values'): a Unicode letter or `_`, then letters, digits, `_`, `-`.
BARE_WORD = re.compile(r"[^\W\d][\w-]*", re.UNICODE)
# Words that need quotes in rule text; keys that rules read as bare words may not be one.
RULE_KEYWORDS = frozenset(
    "and or not in between like contains is missing present segment team tag otherwise true false".split()
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

# -- data limits (docs/security.md, "Data limits") ------------------------------------------------
# Fixed by the data model rather than configurable: a database that once accepted a longer
# value or a larger sum would hold rows that a stricter setting could no longer export or re-import.

# Dates of purchases, interactions, feedback and customer records: older than 1900 or later than
# a day ahead (time zones, clock skew) is a typing error, and far years overflow date arithmetic.
EARLIEST_DATE = date(1900, 1, 1)
FUTURE_SLACK = timedelta(days=1)
# Money: one purchase, and a customer's lifetime total (the sum stays finite and exact to the cent).
MAX_PURCHASE_AMOUNT = 1_000_000_000
MAX_TOTAL_SPENT = 1_000_000_000_000
# Any other number: below 2**53, so every whole number in range is stored exactly.
MAX_NUMBER = 1e15
# Whole numbers (capacities, counts): inside a 32-bit integer column on both back ends.
MAX_WHOLE_NUMBER = 1_000_000_000
# Text in columns without a declared length (notes, comments, descriptions, addresses).
MAX_FREE_TEXT = 10_000
# Lists of short texts (tags, specialties, regions): items per list.
MAX_LIST_ITEMS = 50
# Custom attributes per customer, and the size of each.
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_TEXT = 500
# Distinct attribute keys in the whole database: each one is a column of every exported row.
MAX_ATTRIBUTE_KEYS = 500


def column_length(model: type[DeclarativeBase], column: str) -> int | None:
    """The declared length of a string column (None for unbounded Text)."""
    column_type = model.__table__.c[column].type
    return column_type.length if isinstance(column_type, String) else None


def reject_unknown_keys(data: Mapping[str, Any], allowed: Collection[str]) -> None:
    for key in data:
        if key not in allowed:
            raise UserError(f"unknown field {key!r}", field=str(key))


# PostgreSQL text cannot hold NUL, and neither driver can encode a lone surrogate to UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable(value: str) -> bool:
    """True when both databases can store `value`: no NUL character, no unpaired surrogate."""
    return _UNSTORABLE.search(value) is None


def storable_text(value: str, field: str, *, label: str | None = None) -> str:
    """`value` unchanged if both databases can store it: no NUL character, no unpaired surrogate.

    PostgreSQL text cannot hold NUL, and neither driver can encode a lone surrogate to
    UTF-8; either would otherwise surface as a database error instead of a user error.
    `label` names the value in the message when it is part of `field` (a tag, an attribute).
    """
    if is_storable(value):
        return value
    name = label or field
    if "\x00" in value:
        raise UserError(f"{name} contains a NUL character (\\x00)", field=field, code="invalid_text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise UserError(
            f"{name} contains an unpaired surrogate at character {error.start}; it is not valid Unicode text",
            field=field,
            code="invalid_text",
        ) from None
    return value


def _check_length(value: str, field: str, max_length: int, *, label: str | None = None) -> None:
    if len(value) > max_length:
        raise UserError(
            f"{label or field} is {len(value)} characters long; at most {max_length} are allowed",
            field=field,
            code="too_long",
        )


def text(
    value: Any, field: str, *, max_length: int | None, required: bool = False, label: str | None = None
) -> str | None:
    """A text value, stripped; empty or blank counts as absent (an error when required).

    `max_length` None means a column without a declared length: MAX_FREE_TEXT applies.
    """
    name = label or field
    if value is None:
        if required:
            raise UserError(f"{name} is required", field=field, code="required")
        return None
    if not isinstance(value, str):
        raise UserError(f"{name} must be text, got {type(value).__name__}", field=field)
    stripped = value.strip()
    if not stripped:
        if required:
            raise UserError(f"{name} must not be empty", field=field, code="required")
        return None
    _check_length(stripped, field, MAX_FREE_TEXT if max_length is None else max_length, label=label)
    return storable_text(stripped, field, label=label)


def lookup_text(value: str, field: str, *, max_length: int | None) -> str:
    """A text to look a stored value up by: refused when no stored value could equal it."""
    _check_length(value, field, MAX_FREE_TEXT if max_length is None else max_length)
    return storable_text(value, field)


def required_text(value: Any, field: str, *, max_length: int | None) -> str:
    result = text(value, field, max_length=max_length, required=True)
    assert result is not None
    return result


def word(value: Any, field: str, allowed: Collection[str], *, required: bool = False) -> str | None:
    """One of the enum words of docs/domain.md, 'Data model'; compared case-insensitively, stored lower-case."""
    raw = text(value, field, max_length=None, required=required)
    if raw is None:
        return None
    normalised = raw.lower()
    if normalised not in allowed:
        choices = ", ".join(allowed)
        raise UserError(f"{field} must be one of {choices}; got {_shown(raw)}", field=field)
    return normalised


def required_word(value: Any, field: str, allowed: Collection[str]) -> str:
    result = word(value, field, allowed, required=True)
    assert result is not None
    return result


def number(
    value: Any,
    field: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    whole: bool = False,
    required: bool = False,
    label: str | None = None,
) -> float | None:
    """A finite number (bool is not a number), optionally bounded and whole.

    Without explicit bounds a number lies within ±MAX_NUMBER (whole numbers: ±MAX_WHOLE_NUMBER).
    """
    name = label or field
    if value is None:
        if required:
            raise UserError(f"{name} is required", field=field, code="required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{name} must be a number, got {type(value).__name__}", field=field)
    try:
        result = float(value)
    except OverflowError:  # an int too large for a float
        result = math.inf if value > 0 else -math.inf
    if not math.isfinite(result):
        raise UserError(f"{name} must be a finite number", field=field)
    if whole and not result.is_integer():
        raise UserError(f"{name} must be a whole number, got {result!r}", field=field)
    ceiling = MAX_WHOLE_NUMBER if whole else MAX_NUMBER
    low = -ceiling if minimum is None else minimum
    high = ceiling if maximum is None else maximum
    if result < low:
        raise UserError(f"{name} must be at least {_plain(low)}, got {result!r}", field=field, code="out_of_range")
    if result > high:
        raise UserError(f"{name} must be at most {_plain(high)}, got {result!r}", field=field, code="out_of_range")
    return result


def whole_number(
    value: Any, field: str, *, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    result = number(value, field, minimum=minimum, maximum=maximum, whole=True)
    return None if result is None else int(result)


def optional_money(value: Any, field: str, *, maximum: int | float = MAX_NUMBER) -> Decimal | None:
    """money() for an optional amount (a monthly target): None stays None."""
    return None if value is None else money(value, field, maximum=maximum)


def money(value: Any, field: str, *, maximum: int | float = MAX_PURCHASE_AMOUNT) -> Decimal:
    """An amount of money as an exact Decimal with two places: 0 to `maximum`, at most MONEY_DECIMALS decimals.

    Takes a Decimal, an int or a float (read as the shortest decimal that reads back as it: what
    the client wrote); never text, bool, NaN or an infinity.  Never rounds: a
    fraction of a cent is refused.
    """
    if value is None:
        raise UserError(f"{field} is required", field=field, code="required")
    if isinstance(value, str):  # the API's Money scalar hands over a Decimal; text here is a caller's mistake
        raise UserError(f"{field} must be a number, got str", field=field)
    try:
        exact = to_decimal(value)
    except NotMoney as error:
        raise UserError(f"{field} must be an amount of money: {error}", field=field) from None
    if exact < 0:
        raise UserError(f"{field} must be at least 0, got {value}", field=field, code="out_of_range")
    if exact > maximum:
        raise UserError(f"{field} must be at most {_plain(maximum)}, got {value}", field=field, code="out_of_range")
    if not is_whole_cents(exact):
        raise UserError(
            f"{field} has more than {MONEY_DECIMALS} decimal places: {value}", field=field, code="out_of_range"
        )
    return to_cent(exact)


def _plain(bound: float) -> str:
    if float(bound).is_integer():
        return f"{int(bound):,}"
    return str(bound)


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{field} must be true or false", field=field)
    return value


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _shown(value: Any) -> str:
    """A refused value in a message, cut short: the message must stay small whatever was sent."""
    if isinstance(value, int) and value.bit_length() > 200:
        return f"a {value.bit_length()}-bit integer"
    shown = repr(value[:100] if isinstance(value, (str, bytes, list, tuple)) else value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def past_date(value: Any, field: str) -> date | None:
    """A date (or ISO `YYYY-MM-DD` string) from EARLIEST_DATE to today (UTC): a birthday."""
    if value is None:
        return None
    parsed: date | None = None
    if isinstance(value, datetime):
        parsed = value.date()
    elif isinstance(value, date):
        parsed = value
    elif isinstance(value, str) and value.strip() and len(value) <= 64:
        try:
            parsed = date.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if parsed is None:
        raise UserError(f"{field} must be a date (YYYY-MM-DD), got {_shown(value)}", field=field)
    today = _utcnow().date()
    if not EARLIEST_DATE <= parsed <= today:
        raise UserError(
            f"{field} {parsed.isoformat()} is outside {EARLIEST_DATE.isoformat()} .. {today.isoformat()} (today)",
            field=field,
            code="out_of_range",
        )
    return parsed


def parsed_datetime(value: Any, field: str) -> datetime:
    """A datetime from a datetime, a date (its midnight) or an ISO 8601 string of at most 64
    characters, aware or naive as given; callers convert and bound it."""
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip() and len(value) <= 64:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if parsed is None:
        raise UserError(f"{field} must be a date-time (ISO 8601), got {_shown(value)}", field=field)
    return parsed


def timestamp(value: Any, field: str) -> datetime | None:
    """A naive UTC datetime from EARLIEST_DATE to now + FUTURE_SLACK.

    Aware values are converted, naive ones are taken as UTC; ISO strings accepted.
    """
    if value is None:
        return None
    parsed = parsed_datetime(value, field)
    latest = _utcnow() + FUTURE_SLACK
    out_of_range = UserError(
        f"{field} {parsed.isoformat()} is outside {EARLIEST_DATE.isoformat()} .. "
        f"{latest.isoformat(timespec='seconds')} (now + {FUTURE_SLACK.days} day, UTC)",
        field=field,
        code="out_of_range",
    )
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # year 1 west of UTC, year 9999 east of it
            raise out_of_range from None
    if not datetime.combine(EARLIEST_DATE, datetime.min.time()) <= parsed <= latest:
        raise out_of_range
    return parsed


def email(value: Any, field: str, *, max_length: int | None, required: bool = False) -> str | None:
    """An e-mail address, lower-cased so uniqueness and look-ups ignore case."""
    result = text(value, field, max_length=max_length, required=required)
    if result is None:
        return None
    if not _EMAIL.fullmatch(result):
        raise UserError(f"{field} is not an e-mail address: {result!r}", field=field)
    return result.lower()


def string_list(
    value: Any, field: str, *, max_length: int | None, max_items: int = MAX_LIST_ITEMS
) -> list[str]:
    """A list of at most `max_items` non-empty strings, stripped, duplicates dropped (first occurrence kept)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise UserError(f"{field} must be a list of strings", field=field)
    result: list[str] = []
    seen: set[str] = set()
    for position, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise UserError(f"{field}[{position}] must be a non-empty string, got {_shown(item)}", field=field)
        checked = text(item, field, max_length=max_length, required=True, label=f"{field}[{position}]")
        assert checked is not None
        if checked not in seen:
            if len(result) == max_items:
                raise UserError(f"{field} has more than {max_items} items", field=field, code="too_many")
            seen.add(checked)
            result.append(checked)
    return result


def rule_key(value: Any, field: str, *, max_length: int | None) -> str:
    """A key that rule text names as a bare word (team and segment keys)."""
    key = required_text(value, field, max_length=max_length)
    if not BARE_WORD.fullmatch(key):
        raise UserError(
            f"{field} {key!r} must start with a letter or _ and contain only letters, digits, _ and -",
            field=field,
        )
    if key.lower() in RULE_KEYWORDS:
        raise UserError(f"{field} {key!r} is a keyword of the rule language", field=field)
    return key


AttributeValue = str | float


def attribute_key(key: Any, field: str, *, max_length: int | None = MAX_ATTRIBUTE_KEY) -> str:
    limit = MAX_ATTRIBUTE_KEY if max_length is None else min(max_length, MAX_ATTRIBUTE_KEY)
    if isinstance(key, str) and len(key) > limit:
        raise UserError(
            f"{field} key {_shown(key)} is {len(key)} characters long; at most {limit} are allowed",
            field=field,
            code="too_long",
        )
    if not isinstance(key, str) or not BARE_WORD.fullmatch(key):
        raise UserError(
            f"{field} key {_shown(key)} must start with a letter or _ and contain only letters, digits, _ and -"
            " (rules read it as attr.KEY)",
            field=field,
        )
    return key


def attributes(value: Any, field: str, *, key_length: int | None = MAX_ATTRIBUTE_KEY) -> dict[str, AttributeValue | None]:
    """Custom attributes: text (at most MAX_ATTRIBUTE_TEXT characters) or number values; None marks a key
    for removal.  At most MAX_ATTRIBUTES keys per input; the total a customer keeps is checked on write."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError(f"{field} must be an object of key → text or number", field=field)
    # Removals (None) do not count: a CSV --update row names every attribute column of its file.
    check_attribute_count(sum(item is not None for item in value.values()), field)
    result: dict[str, AttributeValue | None] = {}
    for key, item in value.items():
        checked_key = attribute_key(key, field, max_length=key_length)
        if item is None:
            result[checked_key] = None
        elif isinstance(item, str):
            label = f"{field}.{checked_key}"
            _check_length(item, field, MAX_ATTRIBUTE_TEXT, label=label)
            result[checked_key] = storable_text(item, field, label=label)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            result[checked_key] = number(item, field, label=f"{field}.{checked_key}")
        else:
            raise UserError(
                f"{field}.{checked_key} must be text or a finite number, got {type(item).__name__}", field=field
            )
    return result


def check_attribute_count(count: int, field: str = "attributes") -> None:
    """Refuse a write that would leave a customer with more than MAX_ATTRIBUTES attributes."""
    if count > MAX_ATTRIBUTES:
        raise UserError(
            f"{field}: the customer would have {count} attributes; at most {MAX_ATTRIBUTES} are allowed",
            field=field,
            code="too_many",
        )


def unique_ids(value: Any, field: str) -> list[int]:
    """A list of integer ids, duplicates dropped, order kept."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise UserError(f"{field} must be a list of ids", field=field)
    result: list[int] = []
    seen: set[int] = set()
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise UserError(f"{field} must contain integer ids, got {item!r}", field=field)
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result


# Primary keys are 32-bit integer columns; PostgreSQL refuses to compare one with a larger value.
LARGEST_ID = 2**31 - 1


def identifier(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{field} must be an integer id, got {_shown(value)}", field=field)
    if not 0 < value <= LARGEST_ID:
        raise UserError(f"{field} {_shown(value)} does not exist", field=field, code="not_found")
    return value


async def flush_or_conflict(session: AsyncSession, field: str, message: str) -> None:
    """Flush; a unique constraint lost to a concurrent writer becomes the same Conflict the pre-check gives.

    After such a failure the session's transaction is unusable: the caller rolls it back
    (``async with session.begin()`` does so), so nothing of the call is kept.
    """
    try:
        await session.flush()
    except IntegrityError as error:
        raise Conflict(message, field=field) from error
