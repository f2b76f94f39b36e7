"""The database stores naive UTC; the API speaks ISO 8601 with an explicit zone."""

from __future__ import annotations

from datetime import UTC, datetime

from segmenta.domain.errors import UserError


def to_api(stamp: datetime | None) -> datetime | None:
    """A stored naive-UTC timestamp as an aware UTC datetime (serialised with `+00:00`)."""
    if stamp is None:
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def to_storage(stamp: datetime | None) -> datetime | None:
    """An input timestamp as naive UTC; a timestamp without a zone is taken to be UTC.

    One that leaves the years 1-9999 in UTC (year 1 east of UTC) is bad input, a UserError.
    """
    if stamp is None or stamp.tzinfo is None:
        return stamp
    try:
        return stamp.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise UserError(
            f"{stamp.isoformat()} is outside the years 1 to 9999 once converted to UTC", code="out_of_range"
        ) from None
