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


class Unavailable(Exception):
    """The request was fine but could not be served now; the same request may succeed later.

    Not a user error (nothing about the input is wrong) and not a bug: the API answers it
    with `extensions.code` = `code` and `extensions.retryable` = true, never as an internal error.
    """

    code = "UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class Busy(Unavailable):
    """The database could not give this write its lock in time, or the share of connections
    for expensive reads is in use: retry after a short wait."""

    code = "BUSY"


class TimedOut(Unavailable):
    """The request or one of its statements ran past its time limit and was stopped."""

    code = "TIMEOUT"
