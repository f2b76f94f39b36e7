"""Authentication (every operation needs a valid bearer token) and role checks (SPEC §5 "Access").

Authentication runs once per operation, before parsing: an unauthenticated call
gets HTTP 401 with one GraphQL error (`extensions.code = UNAUTHENTICATED`) and
`data: null` — it never learns anything about the schema.  Role checks are
permission classes on the mutation fields: a refused mutation gets a GraphQL
error with `extensions.code = FORBIDDEN` and no data; nothing runs.

Roles: `admin` everything; `manager` reads everything and writes customers,
feedback, segments and assignments; `agent` reads and records purchases,
interactions and feedback; `viewer` reads only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission

from schema.context import Context
from schema.errors import FORBIDDEN, UNAUTHENTICATED

AUTHENTICATION_REQUIRED = "authentication required: send Authorization: Bearer TOKEN"


class Authentication(SchemaExtension):
    """Refuses the whole operation unless the request carried a valid token."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if not isinstance(context, Context) or context.principal is None:
            problem = context.auth_problem if isinstance(context, Context) else None
            message = f"{AUTHENTICATION_REQUIRED} ({problem})" if problem else AUTHENTICATION_REQUIRED
            response = getattr(context, "response", None)
            if response is not None and hasattr(response, "status_code"):
                response.status_code = 401
                response.headers["WWW-Authenticate"] = 'Bearer realm="segmenta"'
            raise GraphQLError(message, extensions={"code": UNAUTHENTICATED})
        yield


class RolePermission(BasePermission):
    """Allows the field to the roles in `roles` only."""

    roles: ClassVar[tuple[str, ...]] = ()
    action: ClassVar[str] = ""
    error_extensions = {"code": FORBIDDEN}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.message = f"forbidden: {cls.action} needs one of the roles {', '.join(cls.roles)}"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        principal = getattr(info.context, "principal", None)
        return principal is not None and principal.role in self.roles


class CanWriteCustomers(RolePermission):
    roles = ("admin", "manager")
    action = "changing customers"


class CanRecordActivity(RolePermission):
    roles = ("admin", "manager", "agent")
    action = "recording purchases, interactions and feedback"


class CanHandleFeedback(RolePermission):
    roles = ("admin", "manager")
    action = "changing feedback status"


class CanWriteSegments(RolePermission):
    roles = ("admin", "manager")
    action = "changing segments"


class CanManageStaff(RolePermission):
    roles = ("admin",)
    action = "changing employees and teams"


class CanAssign(RolePermission):
    roles = ("admin", "manager")
    action = "assigning managers"


class CanPreviewRules(RolePermission):
    roles = ("admin", "manager")
    action = "previewing rules"


class CanManageRules(RolePermission):
    roles = ("admin",)
    action = "saving, activating and applying rules"
