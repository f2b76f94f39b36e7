"""The database stores naive UTC; the API speaks ISO 8601 with an explicit zone."""

from __future__ import annotations

from datetime import datetime, timezone


def to_api(stamp: datetime | None) -> datetime | None:
    """A stored naive-UTC timestamp as an aware UTC datetime (serialised with `+00:00`)."""
    if stamp is None:
        return None
    return stamp.replace(tzinfo=timezone.utc) if stamp.tzinfo is None else stamp.astimezone(timezone.utc)


def to_storage(stamp: datetime | None) -> datetime | None:
    """An input timestamp as naive UTC; a timestamp without a zone is taken to be UTC."""
    if stamp is None or stamp.tzinfo is None:
        return stamp
    return stamp.astimezone(timezone.utc).replace(tzinfo=None)
