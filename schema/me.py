"""`me`: who the request's token acts as and what its role may do, so a client (the workbench page,
docs/workbench.md) can show a role's limits before the API refuses an action.

Each `may…` answer is the permission class that guards the action (schema/permissions.py), so the
answers cannot drift from what the API enforces.
"""

from __future__ import annotations

import strawberry

from segmenta.schema.context import Info
from segmenta.schema.enums import Role, to_enum
from segmenta.schema.permissions import (
    CanAssign,
    CanHandleFeedback,
    CanManageRules,
    CanManageStaff,
    CanManageTokens,
    CanPreviewRules,
    CanRecordActivity,
    CanWriteCustomers,
    CanWriteSegments,
)
from segmenta.schema.types import Employee


@strawberry.type(description="The caller: the role of the request's token and what that role may do.")
class Me:
    role: Role | None = strawberry.field(description="The token's role; null for a word this server does not know.")
    may_preview_rules: bool = strawberry.field(description="May run `previewRuleset`.")
    may_manage_rules: bool = strawberry.field(description="May save, activate and apply rulesets.")
    may_write_customers: bool = strawberry.field(description="May create, update and delete customers.")
    may_record_activity: bool = strawberry.field(description="May record purchases, interactions and feedback.")
    may_handle_feedback: bool = strawberry.field(description="May change a feedback's status.")
    may_write_segments: bool = strawberry.field(description="May create, change and fill segments.")
    may_assign: bool = strawberry.field(description="May assign and unlock customers' managers.")
    may_manage_staff: bool = strawberry.field(description="May change employees and teams.")
    may_manage_tokens: bool = strawberry.field(description="May list, create and revoke API tokens.")
    employee_key: strawberry.Private[int | None]

    @strawberry.field(description="The employee the token is bound to (agents always are); null when none.")
    async def employee(self, info: Info) -> Employee | None:
        if self.employee_key is None:
            return None
        row = await info.context.loaders.employee.load(self.employee_key)
        return Employee.from_row(row) if row is not None else None


@strawberry.type
class MeQuery:
    @strawberry.field(description="Who the request's token acts as, and what its role may do.")
    def me(self, info: Info) -> Me:
        principal = info.context.principal
        # Authentication (schema/permissions.py) refuses an operation without a principal before this runs.
        assert principal is not None
        role = principal.role
        return Me(
            role=to_enum(Role, role),
            may_preview_rules=CanPreviewRules.allows(role),
            may_manage_rules=CanManageRules.allows(role),
            may_write_customers=CanWriteCustomers.allows(role),
            may_record_activity=CanRecordActivity.allows(role),
            may_handle_feedback=CanHandleFeedback.allows(role),
            may_write_segments=CanWriteSegments.allows(role),
            may_assign=CanAssign.allows(role),
            may_manage_staff=CanManageStaff.allows(role),
            may_manage_tokens=CanManageTokens.allows(role),
            employee_key=principal.employee_id,
        )
