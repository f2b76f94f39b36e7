"""Opaque global IDs and pagination cursors.

An ID is base64("TypeName:primary key"), so clients cannot confuse a customer
id with an employee id, and the database keys stay an implementation detail.
A cursor is base64 of a small JSON document holding the sort key of the row it
points at (keyset pagination), so pages stay stable when rows are inserted.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from segmenta.domain.validation import LARGEST_ID

CURSOR_PREFIX = "cursor:"


class InvalidId(ValueError):
    """A malformed ID, or the ID of another type than the one expected."""

    def __init__(self, value: str, expected: str) -> None:
        super().__init__(f"{value!r} is not a valid {expected} ID")
        self.value = value
        self.expected = expected


class InvalidCursor(ValueError):
    def __init__(self, value: str) -> None:
        super().__init__(f"{value!r} is not a valid cursor for this list")
        self.value = value


def encode_id(type_name: str, key: int) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode("ascii")


def decode_id(value: str, expected: str) -> int:
    """The primary key inside `value`, which must be an ID of type `expected`."""
    type_name, number = decode_any_id(value, expected)
    if type_name != expected:
        raise InvalidId(value, expected)
    return number


def decode_any_id(value: str, expected: str = "Node") -> tuple[str, int]:
    """The type name and primary key inside `value`, an ID of any type (`expected` names it in the error)."""
    try:
        text = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (UnicodeError, binascii.Error, ValueError) as error:
        raise InvalidId(value, expected) from error
    type_name, separator, key = text.partition(":")
    if separator != ":" or not type_name or not key.isascii() or not key.isdigit():
        raise InvalidId(value, expected)
    number = int(key)
    # Keys are 32-bit integer columns: PostgreSQL refuses to even compare with a larger bound value.
    if not 0 < number <= LARGEST_ID:
        raise InvalidId(value, expected)
    return type_name, number


def encode_cursor(sort_values: list[Any], key: int) -> str:
    document = json.dumps([sort_values, key], separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode((CURSOR_PREFIX + document).encode("utf-8")).decode("ascii")


def decode_cursor(value: str, width: int) -> tuple[list[Any], int]:
    """The sort values and primary key of a cursor made by `encode_cursor` for a `width`-column order."""
    try:
        text = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
        if not text.startswith(CURSOR_PREFIX):
            raise InvalidCursor(value)
        sort_values, key = json.loads(text[len(CURSOR_PREFIX) :])
    except (UnicodeError, binascii.Error, ValueError, TypeError) as error:
        raise InvalidCursor(value) from error
    if not isinstance(sort_values, list) or len(sort_values) != width or type(key) is not int:
        raise InvalidCursor(value)
    return sort_values, key
