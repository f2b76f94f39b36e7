"""Which customers a caller may see and act on (docs/graphql.md, "An agent's customers"): the one definition of an
agent's scope.

An `agent` token is bound to an employee E.  The agent's customers are "the customers they manage
and their teams' customers":

    customers.manager_id = E  OR  customers.team_id IN (SELECT team_id FROM team_members WHERE employee_id = E)

Every other role (admin, manager, viewer) sees every customer.

The rule is a SQL predicate, never a Python test over fetched rows, so every read applies it in the
statement that fetches the rows: pages, `totalCount` and aggregates stay right, nothing is fetched only
to be dropped, and team membership is read fresh by each statement.  `Scope.covers` states the rule
over any pair of team and manager expressions; the customers table, the before/after columns of an
assignment change and the bound values of an in-memory change event all go through it, so there is
no second copy of the rule anywhere.

A `None` predicate means "no restriction": callers add no WHERE at all for the roles that see
everything, so their SQL (and its plan) is exactly what it was without scoping.

A statement can also be built once for every caller of a shape (`Scope.shape`: everyone, an agent,
nobody) rather than once per request: built over `Scope.bound()`, whose predicates hold the agent's
employee as the AGENT_EMPLOYEE parameter, it takes the caller's id at execution (`Scope.parameters`).
The rule is the same `covers`; only where the employee's id enters the statement differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Integer, Select, bindparam, cast, false, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from segmenta.domain.errors import UserError
from segmenta.storage.models import Customer, TeamMember

AGENT = "agent"
FORBIDDEN = "forbidden"
# A mapped column (Customer.team_id) or any SQL expression (a bound value).
Expression = ColumnElement[Any] | QueryableAttribute[Any]
OUT_OF_SCOPE_MESSAGE = "an agent may work only with the customers they manage and their teams' customers"
# The agent's employee in the predicates of a bound scope (Scope.bound), given at execution (Scope.parameters).
AGENT_EMPLOYEE: BindParameter[int] = bindparam("scope_employee_id", type_=Integer)


@dataclass(frozen=True)
class Scope:
    """Whose customers a caller may see: every customer (`restricted` false) or one agent's.

    `employee_id` is the agent's employee; an agent scope without one sees no customer (tokens.authenticate
    never lets such an agent in, but the scope does not rely on that).  In a bound scope (`bound()`) it is
    the AGENT_EMPLOYEE parameter: such a scope only builds statements, it is never a caller's.
    """

    restricted: bool = False
    employee_id: int | BindParameter[int] | None = None

    @property
    def shape(self) -> str:
        """What a statement built for this scope depends on: "every" customer, an "agent"'s, or "none"."""
        if not self.restricted:
            return "every"
        return "none" if self.employee_id is None else "agent"

    def bound(self) -> Scope:
        """This scope with the agent's employee as the AGENT_EMPLOYEE parameter: its predicates are the same for
        every caller of its shape, so a statement built over them once serves them all, given `parameters()`."""
        if self.shape != "agent":
            return self
        return Scope(restricted=True, employee_id=AGENT_EMPLOYEE)

    def parameters(self) -> dict[str, Any]:
        """The values a statement built over `bound()` takes for this caller."""
        if self.shape != "agent" or isinstance(self.employee_id, BindParameter):
            return {}
        return {AGENT_EMPLOYEE.key: self.employee_id}

    def covers(self, team_id: Expression, manager_id: Expression) -> ColumnElement[bool] | None:
        """THE rule: the customer with this team and manager is the agent's.  None: no restriction."""
        if not self.restricted:
            return None
        if self.employee_id is None:
            return false()
        teams = select(TeamMember.team_id).where(TeamMember.employee_id == self.employee_id)
        # SQL's three-valued logic does the right thing with a NULL team or manager: not covered.
        return or_(manager_id == self.employee_id, team_id.in_(teams))

    def customers(self) -> ColumnElement[bool] | None:
        """The predicate on the customers table."""
        return self.covers(Customer.team_id, Customer.manager_id)

    def customer_ids(self) -> Select[int] | None:
        """The ids of the visible customers, for rows that point at a customer (feedback, interactions, …)."""
        predicate = self.customers()
        return None if predicate is None else select(Customer.id).where(predicate)

    def owned_by_visible(self, customer_id: Expression) -> ColumnElement[bool] | None:
        """The predicate on a table whose `customer_id` column points at a customer."""
        ids = self.customer_ids()
        return None if ids is None else customer_id.in_(ids)

    def change(
        self,
        team_before: Expression,
        manager_before: Expression,
        team_after: Expression,
        manager_after: Expression,
    ) -> ColumnElement[bool] | None:
        """An assignment change concerns the agent when the customer was theirs before it or is theirs after it
        (so an agent also learns that a customer left them)."""
        before = self.covers(team_before, manager_before)
        after = self.covers(team_after, manager_after)
        return None if before is None or after is None else or_(before, after)


EVERY_CUSTOMER = Scope()


def scope_of(role: str | None, employee_id: int | None) -> Scope:
    """The scope of a caller with this role (None: nobody authenticated, who sees nothing)."""
    if role is None:
        return Scope(restricted=True)
    if role != AGENT:
        return EVERY_CUSTOMER
    return Scope(restricted=True, employee_id=employee_id)


def value(number: int | None) -> ColumnElement[Any]:
    """A bound integer (or NULL) typed for PostgreSQL, to run the scope rule over values held in memory."""
    return cast(literal(number, Integer), Integer)


async def change_is_visible(
    session: AsyncSession,
    scope: Scope,
    team_before: int | None,
    manager_before: int | None,
    team_after: int | None,
    manager_after: int | None,
) -> bool:
    """Whether an in-memory assignment change concerns the caller: the scope rule evaluated by the database
    over the change's values (one statement, reading the agent's team membership as it is now)."""
    predicate = scope.change(value(team_before), value(manager_before), value(team_after), value(manager_after))
    if predicate is None:
        return True
    return bool(await session.scalar(select(predicate)))


async def ensure_may_act_on(session: AsyncSession, scope: Scope, customer_id: int, *, field: str = "customer_id") -> None:
    """Refuse (a user error, code `forbidden`) work on a customer outside the caller's scope.

    A customer that does not exist is refused alike, so the answer never tells an agent which ids exist.
    """
    predicate = scope.customers()
    if predicate is None:
        return
    found = await session.scalar(select(Customer.id).where(Customer.id == customer_id, predicate))
    if found is None:
        raise UserError(OUT_OF_SCOPE_MESSAGE, field=field, code=FORBIDDEN)
