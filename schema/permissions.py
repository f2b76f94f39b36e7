"""Authentication (every operation needs a valid bearer token) and role checks (SPEC §5 "Access").

Authentication runs once per operation, before parsing: an unauthenticated call
gets HTTP 401 with one GraphQL error (`extensions.code = UNAUTHENTICATED`) and
`data: null` — it never learns anything about the schema.  Role checks are
permission classes on the mutation fields: a refused mutation gets a GraphQL
error with `extensions.code = FORBIDDEN` and no data; nothing runs.

Roles: `admin` everything; `manager` reads everything and writes customers,
feedback, segments and assignments; `agent` reads and records purchases,
interactions and feedback for their own customers; `viewer` reads only.

Agent scope (row-level, on top of the role checks): an agent token is bound to
an employee, and the agent sees only the customers that employee manages and
the customers of the teams the employee is a member of.  The rule has one
definition, domain.access.Scope; Authentication binds the caller's scope to the
request's loaders (schema/loaders.py) before anything runs, and `customer_scope`
gives it to resolvers.  Where it applies:

- `customers(...)` (filter, where, orderBy, paging, totalCount), `customer(id)`,
  `customerByCode`, `Team.customers`, `Employee.customers`, `Segment.customers`
  and `Segment.size`: only the agent's customers; out of scope reads as null,
  exactly like a customer that does not exist.
- `feedback(...)`: only feedback of the agent's customers.
- A Customer reached from another object (`Purchase/Interaction/Feedback.customer`,
  `EvaluationChange.customer`, `AssignmentChangeNotice.customer`) is null when out of
  scope.  A customer's own purchases, interactions, feedback and assignment history
  are reachable only through a customer in scope.
- Aggregates computed from customer rows (`stats`, `Team.stats`, `Employee.stats`,
  `Segment.stats`) are over the agent's customers only — same statements, one more
  predicate; `Employee.stats.freeCapacity` stays the employee's real free capacity.
  Counts that are not customer data (`employeeCount`, `teamCount`, `segmentCount`)
  and a run's stored summary (`EvaluationRun.summary`) stay global; so does the
  list `EvaluationRun.changes` (each change's `customer` is null when out of scope).
- `explain` of a customer out of scope: FORBIDDEN error.
- `recordPurchase`, `recordInteraction`, `submitFeedback` for a customer out of
  scope (or one that does not exist): a userError with code FORBIDDEN on
  `input.customerId`; nothing is written.
- `assignmentChanged` delivers a change when the customer was the agent's before it
  or is after it (so an agent learns that a customer left them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission

from domain.access import Scope, scope_of
from schema.context import Context, Info
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
        context.loaders.scope = customer_scope(context)
        yield


def customer_scope(context: Context) -> Scope:
    """The customers the caller may see (domain.access); nobody authenticated sees none."""
    principal = context.principal
    if principal is None:
        return scope_of(None, None)
    return scope_of(principal.role, principal.employee_id)


def scope(info: Info) -> Scope:
    """The caller's scope, as bound for this operation."""
    return info.context.loaders.scope


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
