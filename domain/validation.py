"""Input validation shared by the domain services.

Every function takes the raw value and the snake_case field name, and returns the
normalised value or raises ``UserError`` naming that field.  Services call these
for every input *before* their first statement, so a bad value never half-writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

from domain.errors import Conflict, UserError

# A rule-language bare word (SPEC §3): a Unicode letter or `_`, then letters, digits, `_`, `-`.
BARE_WORD = re.compile(r"[^\W\d][\w-]*", re.UNICODE)
# Words that need quotes in rule text; keys that rules read as bare words may not be one.
RULE_KEYWORDS = frozenset(
    "and or not in between like contains is missing present segment team tag otherwise true false".split()
)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def column_length(model: type[DeclarativeBase], column: str) -> int | None:
    """The declared length of a string column (None for unbounded Text)."""
    column_type = model.__table__.c[column].type  # type: ignore[attr-defined]
    return column_type.length if isinstance(column_type, String) else None


def reject_unknown_keys(data: Mapping[str, Any], allowed: Collection[str]) -> None:
    for key in data:
        if key not in allowed:
            raise UserError(f"unknown field {key!r}", field=str(key))


def text(value: Any, field: str, *, max_length: int | None, required: bool = False) -> str | None:
    """A text value, stripped; empty or blank counts as absent (an error when required)."""
    if value is None:
        if required:
            raise UserError(f"{field} is required", field=field, code="required")
        return None
    if not isinstance(value, str):
        raise UserError(f"{field} must be text, got {type(value).__name__}", field=field)
    stripped = value.strip()
    if not stripped:
        if required:
            raise UserError(f"{field} must not be empty", field=field, code="required")
        return None
    if max_length is not None and len(stripped) > max_length:
        raise UserError(
            f"{field} is {len(stripped)} characters long; at most {max_length} are allowed",
            field=field,
            code="too_long",
        )
    return stripped


def required_text(value: Any, field: str, *, max_length: int | None) -> str:
    result = text(value, field, max_length=max_length, required=True)
    assert result is not None
    return result


def word(value: Any, field: str, allowed: Collection[str], *, required: bool = False) -> str | None:
    """One of the enum words of SPEC §2, compared case-insensitively and stored lower-case."""
    raw = text(value, field, max_length=None, required=required)
    if raw is None:
        return None
    normalised = raw.lower()
    if normalised not in allowed:
        choices = ", ".join(allowed)
        raise UserError(f"{field} must be one of {choices}; got {raw!r}", field=field)
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
) -> float | None:
    """A finite number (bool is not a number), optionally bounded and whole."""
    if value is None:
        if required:
            raise UserError(f"{field} is required", field=field, code="required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{field} must be a number, got {type(value).__name__}", field=field)
    result = float(value)
    if not math.isfinite(result):
        raise UserError(f"{field} must be a finite number", field=field)
    if whole and not result.is_integer():
        raise UserError(f"{field} must be a whole number, got {value}", field=field)
    if minimum is not None and result < minimum:
        raise UserError(f"{field} must be at least {_plain(minimum)}, got {value}", field=field, code="out_of_range")
    if maximum is not None and result > maximum:
        raise UserError(f"{field} must be at most {_plain(maximum)}, got {value}", field=field, code="out_of_range")
    return result


def whole_number(value: Any, field: str, *, minimum: int | None = None) -> int | None:
    result = number(value, field, minimum=minimum, whole=True)
    return None if result is None else int(result)


def _plain(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def boolean(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{field} must be true or false", field=field)
    return value


def calendar_date(value: Any, field: str) -> date | None:
    """A date, or an ISO `YYYY-MM-DD` string."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise UserError(f"{field} must be a date (YYYY-MM-DD), got {value!r}", field=field)


def timestamp(value: Any, field: str) -> datetime | None:
    """A naive UTC datetime; aware values are converted, naive ones are taken as UTC; ISO strings accepted."""
    if value is None:
        return None
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if parsed is None:
        raise UserError(f"{field} must be a date-time (ISO 8601), got {value!r}", field=field)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed


def email(value: Any, field: str, *, max_length: int | None, required: bool = False) -> str | None:
    """An e-mail address, lower-cased so uniqueness and look-ups ignore case."""
    result = text(value, field, max_length=max_length, required=required)
    if result is None:
        return None
    if not _EMAIL.fullmatch(result):
        raise UserError(f"{field} is not an e-mail address: {result!r}", field=field)
    return result.lower()


def string_list(value: Any, field: str, *, max_length: int | None) -> list[str]:
    """A list of non-empty strings, stripped, duplicates dropped (first occurrence kept)."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise UserError(f"{field} must be a list of strings", field=field)
    result: list[str] = []
    for position, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise UserError(f"{field}[{position}] must be a non-empty string, got {item!r}", field=field)
        stripped = item.strip()
        if max_length is not None and len(stripped) > max_length:
            raise UserError(
                f"{field}[{position}] is {len(stripped)} characters long; at most {max_length} are allowed",
                field=field,
                code="too_long",
            )
        if stripped not in result:
            result.append(stripped)
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


def attribute_key(key: Any, field: str, *, max_length: int | None) -> str:
    if not isinstance(key, str) or not BARE_WORD.fullmatch(key):
        raise UserError(
            f"{field} key {key!r} must start with a letter or _ and contain only letters, digits, _ and -"
            " (rules read it as attr.KEY)",
            field=field,
        )
    if max_length is not None and len(key) > max_length:
        raise UserError(f"{field} key {key!r} is longer than {max_length} characters", field=field, code="too_long")
    return key


def attributes(value: Any, field: str, *, key_length: int | None) -> dict[str, AttributeValue | None]:
    """Custom attributes: text or number values; None marks a key for removal."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError(f"{field} must be an object of key → text or number", field=field)
    result: dict[str, AttributeValue | None] = {}
    for key, item in value.items():
        checked_key = attribute_key(key, field, max_length=key_length)
        if item is None:
            result[checked_key] = None
        elif isinstance(item, str):
            result[checked_key] = item
        elif isinstance(item, (int, float)) and not isinstance(item, bool) and math.isfinite(item):
            result[checked_key] = float(item)
        else:
            raise UserError(
                f"{field}.{checked_key} must be text or a finite number, got {type(item).__name__}", field=field
            )
    return result


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


def identifier(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{field} must be an integer id, got {value!r}", field=field)
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
