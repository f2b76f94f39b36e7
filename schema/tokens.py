"""API tokens over GraphQL, for administrators: `apiTokens`, `createApiToken`, `revokeApiToken`.

A thin layer over domain/access/tokens.py, which refuses every role but admin itself; the
permission class refuses earlier, for the whole document (schema/permissions.py).
The plaintext secret appears once, in the `createApiToken` payload; nothing returns
it again, and no type here has a field for the hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from segmenta.domain.access import tokens
from segmenta.domain.errors import UserError
from segmenta.schema.context import Info
from segmenta.schema.enums import Role, to_enum, to_word
from segmenta.schema.ids import encode_id
from segmenta.schema.node_interface import Node
from segmenta.schema.payloads import ArgumentError, UserErrorType, in_transaction, input_id
from segmenta.schema.permissions import CanManageTokens
from segmenta.schema.timestamps import to_api
from segmenta.schema.types import Employee
from segmenta.storage.models import utcnow

TYPE_NAME = "ApiToken"


@strawberry.type(description="An API token as stored. Its secret is never shown again after creation.")
class ApiToken(Node):
    id: strawberry.ID = strawberry.field(
        description="Opaque global ID (base64 of `ApiToken:key`); pass it to `revokeApiToken(id)`.",
    )
    role: Role | None = strawberry.field(description="What the token's requests may do.")
    label: str | None = strawberry.field(description="The note given at creation; null when none.")
    created_at: datetime | None = strawberry.field(description="When the token was created, UTC.")
    expires_at: datetime | None = strawberry.field(description="Null: the token never expires.")
    revoked_at: datetime | None = strawberry.field(
        description="When the token was revoked, UTC; null while not revoked.",
    )
    employee_email: str | None = strawberry.field(description="The employee the token is bound to, if any.")
    last_used_at: datetime | None = strawberry.field(
        description=(
            "When the token last authenticated a request or websocket, UTC, to within a minute or two (it is "
            "stored at most once a minute); null when not used since it was created or since this was recorded."
        ),
    )
    employee_key: strawberry.Private[int | None]

    @classmethod
    def from_info(cls, info: tokens.TokenInfo) -> ApiToken:
        return cls(
            id=strawberry.ID(encode_id(TYPE_NAME, info.id)),
            role=to_enum(Role, info.role),
            label=info.label,
            created_at=to_api(info.created_at),
            expires_at=to_api(info.expires_at),
            revoked_at=to_api(info.revoked_at),
            employee_email=info.employee_email,
            last_used_at=to_api(info.last_used_at),
            employee_key=info.employee_id,
        )

    @strawberry.field(description="True while the token authenticates: not revoked and not past its expiry.")
    def active(self) -> bool:
        expires = self.expires_at
        return self.revoked_at is None and (expires is None or expires > to_api(utcnow()))  # type: ignore[operator]

    @strawberry.field(description="The employee the token is bound to (agents always are).")
    async def employee(self, info: Info) -> Employee | None:
        if self.employee_key is None:
            return None
        row = await info.context.loaders.employee.load(self.employee_key)
        return Employee.from_row(row) if row is not None else None


@strawberry.input(description="A new token. Give at most one of `expiresAt` and `expiresIn`; neither: never expires.")
class ApiTokenInput:
    role: Role = strawberry.field(description="The role the token acts with.")
    employee_email: str | None = strawberry.field(
        default=None, description="Bind the token to this employee (required for AGENT)."
    )
    label: str | None = strawberry.field(default=None, description="A note to recognise the token by.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the token stops working (ISO 8601; without a zone: UTC)."
    )
    expires_in: str | None = strawberry.field(
        default=None, description="Lifetime from now: NUMBER and unit w, d, h or m, e.g. 30d, 12h, 1d12h."
    )


@strawberry.type(description="The result of createApiToken.")
class CreateApiTokenPayload:
    api_token: ApiToken | None = strawberry.field(
        description="The token as stored (never its secret); null when userErrors is not empty.",
    )
    secret: str | None = strawberry.field(
        description="The token to send as `Authorization: Bearer …`. Shown only in this response; store it now."
    )
    user_errors: list[UserErrorType] = strawberry.field(description="Why no token was created; empty on success.")


@strawberry.type(description="The result of revokeApiToken.")
class RevokeApiTokenPayload:
    api_token: ApiToken | None = strawberry.field(
        description="The token as revoked; null when userErrors is not empty.",
    )
    user_errors: list[UserErrorType] = strawberry.field(
        description="Why nothing was revoked (NOT_FOUND, INVALID_ID, ALREADY_REVOKED); empty on success.",
    )


def _acting_role(info: Info) -> str | None:
    principal = info.context.principal
    return principal.role if principal is not None else None


@strawberry.type
class TokenQuery:
    @strawberry.field(
        permission_classes=[CanManageTokens],
        description="Every API token, oldest first, revoked and expired ones included (admin only). Never a secret.",
    )
    async def api_tokens(self, info: Info) -> list[ApiToken]:
        # A query's root fields resolve concurrently: the session is shared through db.exclusive().
        async with info.context.db.exclusive() as session:
            listed = await tokens.list_tokens(session, _acting_role(info))
        return [ApiToken.from_info(item) for item in listed]


@strawberry.type
class TokenMutation:
    @strawberry.mutation(
        permission_classes=[CanManageTokens],
        description="Create an API token (admin only); the payload's `secret` is the only time it is shown.",
    )
    async def create_api_token(
        self, info: Info, input: Annotated[ApiTokenInput, strawberry.argument(description="The new token.")]
    ) -> CreateApiTokenPayload:
        session = info.context.session

        async def work() -> tokens.NewToken:
            expires_at = tokens.expiry(input.expires_at, input.expires_in)
            return await tokens.issue_token(
                session, _acting_role(info), to_word(input.role) or "", input.employee_email, input.label, expires_at
            )

        issued, errors = await in_transaction(info, work, prefix="input")
        if issued is None:
            return CreateApiTokenPayload(api_token=None, secret=None, user_errors=errors)
        return CreateApiTokenPayload(api_token=ApiToken.from_info(issued.token), secret=issued.secret, user_errors=[])

    @strawberry.mutation(
        permission_classes=[CanManageTokens],
        description="Revoke an API token (admin only): requests with it fail at once, open websockets within SEGMENTA_TOKEN_RECHECK seconds.",
    )
    async def revoke_api_token(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The token (an ApiToken ID).")]
    ) -> RevokeApiTokenPayload:
        session = info.context.session

        async def work() -> tokens.TokenInfo:
            key = input_id(id, TYPE_NAME, "id")
            try:
                return await tokens.revoke_token(session, _acting_role(info), key)
            except UserError as error:
                raise ArgumentError(error.message, field="id" if error.field else None, code=error.code) from error

        revoked, errors = await in_transaction(info, work, arguments={"id"})
        return RevokeApiTokenPayload(api_token=ApiToken.from_info(revoked) if revoked else None, user_errors=errors)
