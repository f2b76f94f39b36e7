"""Errors the domain reports to its callers; the GraphQL layer turns them into userErrors."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from a user: nothing was written.  `field` names the input field (camelCase-free, snake_case)."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


class NotFound(UserError):
    def __init__(self, what: str, identifier: object, *, field: str | None = None) -> None:
        super().__init__(f"{what} {identifier!r} does not exist", field=field, code="not_found")


class Conflict(UserError):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field, code="conflict")
