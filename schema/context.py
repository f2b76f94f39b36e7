"""The per-request context every resolver sees as `info.context`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.routing.run_tasks import RunLauncher
from segmenta.schema.loaders import Loaders
from segmenta.schema.performance_loaders import PerformanceLoaders
from segmenta.schema.routing_loaders import RoutingLoaders
from segmenta.schema.serial import SerialSession
from segmenta.storage.models import utcnow


class Principal(Protocol):
    """Who is calling (domain.access.tokens.Principal satisfies this)."""

    @property
    def role(self) -> str: ...

    @property
    def employee_id(self) -> int | None: ...


@dataclass
class Context:
    # The raw session is for mutations (which run one at a time); reads use `db`.
    session: AsyncSession
    principal: Principal | None
    loaders: Loaders
    request: Any = None
    response: Any = None
    # Day-based metrics of every customer in one response are measured at the same instant.
    now: datetime = field(default_factory=utcnow)
    # Why authentication failed, for the error message (None when it succeeded or was not tried).
    auth_problem: str | None = None
    # The websocket `connection_init` payload (strawberry fills it in; server.py reads the token from it).
    connection_params: dict[str, Any] | None = None
    # Executes preview/apply runs in the background (None: they run inside the request).
    runs: RunLauncher | None = None
    # The routing resolvers' loaders (schema.routing_types.routing_loaders makes them on first use).
    routing_loaders: RoutingLoaders | None = None
    # The performance figures' loader (schema.performance_types.performance_loaders makes it on first use).
    performance_loaders: PerformanceLoaders | None = None
    # Warnings for the whole response (`extensions.warnings`, schema/response_warnings.py), e.g. of a `where`.
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def db(self) -> SerialSession:
        return self.loaders.db

    async def close(self) -> None:
        await self.session.close()


Info = strawberry.Info[Context, None]
