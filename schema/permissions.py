"""Authentication (every operation needs a valid bearer token) and role checks (docs/graphql.md, 'Roles';
field by field in docs/security.md, 'Roles').

Authentication runs once per operation, before parsing: an unauthenticated call
gets HTTP 401 with one GraphQL error (`extensions.code = UNAUTHENTICATED`) and
`data: null` — it never learns anything about the schema.  Role checks are
permission classes on the root fields (RolePermission subclasses below).  They
are checked twice: for the whole document before any field runs (the operation's
root fields, through fragments and aliases; one refused field refuses the whole
operation with FORBIDDEN naming the refused fields, so a document never
half-runs), and again by each field itself.

A websocket is long-lived, so its token is checked again: at every operation it
starts, and while a subscription delivers events at most once every
SEGMENTA_TOKEN_RECHECK seconds (domain/access/tokens.py).  A token found revoked or
expired ends the subscription with one UNAUTHENTICATED error, then the socket is
closed with code 4401.

Roles: `admin` everything; `manager` reads everything and writes customers,
feedback, segments and assignments; `agent` reads and records purchases,
interactions and feedback for their own customers; `viewer` reads only.

Agent scope (row-level, on top of the role checks): an agent token is bound to
an employee, and the agent sees only the customers that employee manages and
the customers of the teams the employee is a member of.  The rule has one
definition, domain.access.scope.Scope; Authentication binds the caller's scope to the
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

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast
from starlette.websockets import WebSocket, WebSocketState
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission
from strawberry.types import ExecutionContext

from segmenta.domain.access.scope import Scope, scope_of
from segmenta.domain.access.tokens import MANAGING_ROLE, Principal, recheck, recheck_interval
from segmenta.domain.staff.review import REVIEW_ROLES
from segmenta.domain.staff.targets import TARGET_SETTING_ROLES
from segmenta.schema.context import Context, Info
from segmenta.schema.errors import FORBIDDEN, UNAUTHENTICATED
from segmenta.storage.engine import session_factory

AUTHENTICATION_REQUIRED = "authentication required: send Authorization: Bearer TOKEN"
TOKEN_NO_LONGER_VALID = "the token is unknown, revoked or expired"
# graphql-transport-ws reserves 4401 for "Unauthorized".
UNAUTHORIZED_CLOSE_CODE = 4401


class Authentication(SchemaExtension):
    """Refuses the whole operation unless the request carried a valid token and its role may run
    every root field the operation selects; keeps checking a websocket's token while it streams."""

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if isinstance(context, Context) and isinstance(context.principal, Principal) and _long_lived(context):
            await _recheck(context)
        if not isinstance(context, Context) or context.principal is None:
            problem = context.auth_problem if isinstance(context, Context) else None
            message = f"{AUTHENTICATION_REQUIRED} ({problem})" if problem else AUTHENTICATION_REQUIRED
            response = getattr(context, "response", None)
            if response is not None and hasattr(response, "status_code"):
                response.status_code = 401
                response.headers["WWW-Authenticate"] = 'Bearer realm="segmenta"'
            raise GraphQLError(message, extensions={"code": UNAUTHENTICATED})
        context.loaders.scope = customer_scope(context)
        context.loaders.role = context.principal.role
        yield

    def on_execute(self) -> Iterator[None]:
        # Runs after validation, before any resolver: a refusal here means nothing ran.
        refused = refused_root_fields(self.execution_context)
        if refused:
            raise GraphQLError(
                forbidden_message(refused),
                extensions={"code": FORBIDDEN, "fields": _names(refused), "refused": _occurrences(refused)},
            )
        yield

    async def on_stream_result(self, result: Any) -> AsyncIterator[None]:
        context = self.execution_context.context
        if not isinstance(context, Context):
            yield
            return
        principal = context.principal
        if isinstance(principal, Principal) and time.monotonic() - principal.checked_at >= recheck_interval():
            await _recheck(context)
        # The operation was authenticated when it started; no principal now means the token was found
        # revoked or expired since, by this stream or another operation of the connection.
        refused = context.principal is None
        if refused:
            result.data = None
            result.errors = [
                GraphQLError(f"{AUTHENTICATION_REQUIRED} ({TOKEN_NO_LONGER_VALID})", extensions={"code": UNAUTHENTICATED})
            ]
        yield
        socket = context.request
        if refused and isinstance(socket, WebSocket) and socket.application_state == WebSocketState.CONNECTED:
            # The error has been sent; closing ends every operation still open on the socket.
            await socket.close(code=UNAUTHORIZED_CLOSE_CODE, reason=TOKEN_NO_LONGER_VALID)


def _long_lived(context: Context) -> bool:
    """A websocket: its principal was authenticated when it connected, maybe long ago."""
    return isinstance(context.request, WebSocket)


async def _recheck(context: Context) -> bool:
    """Check the connection's token again (in a short session of its own: operations on one socket run
    concurrently); on failure the connection is unauthenticated from now on."""
    principal = context.principal
    assert isinstance(principal, Principal)
    async with session_factory(context.session.bind)() as session:  # type: ignore[arg-type]
        refreshed = await recheck(session, principal)
    context.principal = refreshed
    if refreshed is None:
        context.auth_problem = TOKEN_NO_LONGER_VALID
    return refreshed is not None


# -- authorising a whole document ------------------------------------------------------------

RefusedField = tuple[str, str, "type[RolePermission]"]  # (response key, field name, permission)


def refused_root_fields(execution_context: ExecutionContext) -> list[RefusedField]:
    """The operation's root fields the caller's role may not run, in document order.

    Every selected root field counts, whatever @skip/@include say: deciding those needs the
    coerced variables, and refusing a document that merely could run a forbidden field is safe.
    """
    document = execution_context.graphql_document
    context = execution_context.context
    if document is None:
        return []
    operation = get_operation_ast(document, execution_context.operation_name)
    if operation is None:
        return []
    root = execution_context.schema._schema.get_root_type(operation.operation)
    if root is None:
        return []
    role = getattr(getattr(context, "principal", None), "role", None)
    refused: list[RefusedField] = []
    for key, name in _root_fields(document, operation):
        for permission in _role_permissions(root, name):
            if not permission.allows(role):
                refused.append((key, name, permission))
    return refused


def _root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> list[tuple[str, str]]:
    """(response key, field name) of every field selected at the root, through fragments."""
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    found: list[tuple[str, str]] = []
    entered: set[str] = set()

    def walk(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                found.append((selection.alias.value if selection.alias else name, name))
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment_name = selection.name.value
                # Validation rejects cycles and unknown fragments; the guard keeps this bounded regardless.
                if fragment_name in entered or fragment_name not in fragments:
                    continue
                entered.add(fragment_name)
                walk(fragments[fragment_name].selection_set)

    walk(operation.selection_set)
    return found


def _role_permissions(root: GraphQLObjectType, name: str) -> list[type[RolePermission]]:
    """The RolePermission classes the schema's field declares (none for __typename and the like)."""
    field = root.fields.get(name)
    definition = field.extensions.get("strawberry-definition") if field is not None and field.extensions else None
    declared = getattr(definition, "permission_classes", None) or []
    return [permission for permission in declared if isinstance(permission, type) and issubclass(permission, RolePermission)]


def _names(refused: list[RefusedField]) -> list[str]:
    return list(dict.fromkeys(name for _, name, _ in refused))


def _occurrences(refused: list[RefusedField]) -> list[dict[str, Any]]:
    """Each refused selection, aliases apart: `fields` names a field once, this lists every place."""
    return [
        {"responseKey": key, "field": name, "roles": list(permission.roles), "reason": permission.reason}
        for key, name, permission in refused
    ]


def forbidden_message(refused: list[RefusedField]) -> str:
    reasons = "; ".join(
        f"{key if key == name else f'{key}: {name}'} ({permission.reason})" for key, name, permission in refused
    )
    return f"forbidden: nothing was run; the role may not run {reasons}"


def customer_scope(context: Context) -> Scope:
    """The customers the caller may see (domain.access.scope); nobody authenticated sees none."""
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
    reason: ClassVar[str] = ""
    error_extensions = {"code": FORBIDDEN}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.reason = f"{cls.action} needs one of the roles {', '.join(cls.roles)}"
        cls.message = f"forbidden: {cls.reason}"

    @classmethod
    def allows(cls, role: str | None) -> bool:
        return role is not None and role in cls.roles

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        principal = getattr(info.context, "principal", None)
        return self.allows(getattr(principal, "role", None))


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


class CanWorkTasks(RolePermission):
    # An agent too: domain/tasks/service.py keeps them to the tasks their scope covers.
    roles = ("admin", "manager", "agent")
    action = "creating, completing, cancelling and reassigning tasks"


class CanAssign(RolePermission):
    roles = ("admin", "manager")
    action = "assigning managers"


class CanPreviewRules(RolePermission):
    roles = ("admin", "manager")
    action = "previewing rules"


class CanManageRules(RolePermission):
    roles = ("admin",)
    action = "saving, activating and applying rules"


class CanManageTokens(RolePermission):
    # The same role domain.access.tokens.ensure_may_manage_tokens requires.
    roles = (MANAGING_ROLE,)
    action = "listing, creating and revoking API tokens"


class CanSetTargets(RolePermission):
    # The roles domain.staff.targets.ensure_may_set_targets requires.
    roles = TARGET_SETTING_ROLES
    action = "setting targets"


class CanReviewPerformance(RolePermission):
    # The roles domain.staff.review.ensure_may_review requires.
    roles = REVIEW_ROLES
    action = "the performance review"
