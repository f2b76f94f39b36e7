"""Explain one customer's routing against a ruleset (docs/python-api.md and docs/routing.md, 'Explanations').

The rule-by-rule part comes from the compiled ruleset's explainer (dsl.explain);
this module adds what only the database knows, as ``notes`` lines: the customer's
current assignment, the lock, the team's strategy and capacity, and so the manager
the customer has or would get.  It reads only: the manager a move would bring is
predicted with the team's strategy over the stored loads and round-robin
position, without taking the position or any lock.

The result describes where the customer *ends up* under the rules: ``team`` and
``manager`` are the effective ones (a locked customer keeps both; the notes say
what the rules would have chosen), ``deciding_rule``, ``segments`` and ``tags``
are the rules' own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.metrics import load_rule_values
from segmenta.domain.errors import NotFound, UserError
from segmenta.domain.routing import assignment
from segmenta.domain.routing.realtime_rules import active_rules, compiled_rules
from segmenta.domain.routing.rulesets import get_ruleset
from segmenta.domain.staff.vocabulary import AUTOMATIC_STRATEGIES
from segmenta.domain.tasks.vocabulary import OPEN
from segmenta.dsl.diagnostics import Diagnostic, RuleError
from segmenta.dsl.explain import Explanation, RuleTrace
from segmenta.dsl.ruleset import Ruleset, compile_rules
from segmenta.storage.models import Customer, Employee, Task, TaskTrigger, Team, TeamMember


class RulesHaveErrors(UserError):
    """The rules to explain with do not compile; `diagnostics` says where."""

    def __init__(self, diagnostics: list[Diagnostic], field: str) -> None:
        errors = [d for d in diagnostics if d.is_error]
        first = errors[0]
        super().__init__(
            f"the rules have {len(errors)} error(s); first at line {first.line}, column {first.column}: {first.message}",
            field=field,
            code="has_errors",
        )
        self.diagnostics = diagnostics


@dataclass
class CustomerExplanation:
    customer: Customer
    ruleset_id: int | None
    explanation: Explanation
    team: Team | None
    manager: Employee | None
    rule_team_key: str | None

    @property
    def deciding_rule(self) -> str | None:
        return self.explanation.deciding_rule

    @property
    def segments(self) -> tuple[str, ...]:
        return self.explanation.segments

    @property
    def tags(self) -> tuple[str, ...]:
        return self.explanation.tags

    @property
    def rules(self) -> list[RuleTrace]:
        return self.explanation.rules

    @property
    def notes(self) -> list[str]:
        return self.explanation.notes

    @property
    def text(self) -> str:
        return self.explanation.text


async def _rules_for(
    session: AsyncSession, ruleset_id: int | None, source: str | None
) -> tuple[Ruleset, int | None]:
    if ruleset_id is not None and source is not None:
        raise UserError("give a ruleset id or a rule source, not both", field="source", code="invalid")
    if source is not None:
        try:
            return compile_rules(source), None
        except RuleError as error:
            raise RulesHaveErrors(error.diagnostics, "source") from error
    if ruleset_id is not None:
        ruleset = await get_ruleset(session, ruleset_id)
        try:
            return compiled_rules(ruleset.id, ruleset.version, ruleset.source).rules, ruleset.id
        except RuleError as error:
            raise RulesHaveErrors(error.diagnostics, "ruleset_id") from error
    active = await active_rules(session)
    if active is None:
        raise UserError(
            "no ruleset is active; give a ruleset id or a rule source", field="ruleset_id", code="no_active_ruleset"
        )
    return active.rules, active.ruleset_id


def _name(employee: Employee | None) -> str:
    return employee.name if employee is not None else "none"


def _key(team: Team | None) -> str:
    return team.key if team is not None else "none"


async def predict_manager(session: AsyncSession, team: Team, customer: Customer) -> int | None:
    """The manager the team's strategy would give `customer` joining it now (read-only; None: nobody has room)."""
    members = (
        await session.execute(
            select(Employee.id, Employee.capacity, Employee.specialties, Employee.regions)
            .join(TeamMember, TeamMember.employee_id == Employee.id)
            .where(TeamMember.team_id == team.id, Employee.active.is_(True))
            .order_by(Employee.id)
        )
    ).all()
    loads = await assignment.current_loads(session, [row[0] for row in members])
    states = [
        assignment.MemberState(
            employee_id=employee_id,
            capacity=capacity,
            # The customer leaves its current manager when it changes team.
            load=loads.get(employee_id, 0) - (1 if employee_id == customer.manager_id else 0),
            specialties=frozenset(specialties or ()),
            regions=frozenset(regions or ()),
        )
        for employee_id, capacity, specialties, regions in members
    ]
    assigner = assignment.TeamAssigner(team.id, team.strategy, states, team.round_robin_position or 0)
    return assigner.assign(assignment.Candidate(customer.id, customer.industry, customer.region))


async def _employee(session: AsyncSession, employee_id: int | None) -> Employee | None:
    return await session.get(Employee, employee_id) if employee_id is not None else None


async def _team(session: AsyncSession, team_id: int | None) -> Team | None:
    return await session.get(Team, team_id) if team_id is not None else None


async def _task_notes(session: AsyncSession, customer_id: int, explanation: Explanation) -> list[str]:
    """Per task kind the rules give: whether an apply or real-time routing now would create it, and why not
    (docs/rule-language.md, "Tasks"); one statement for all kinds."""
    if not explanation.tasks:
        return []
    kinds = [task.kind for task in explanation.tasks]
    held = set((await session.execute(
        select(TaskTrigger.kind).where(TaskTrigger.customer_id == customer_id, TaskTrigger.kind.in_(kinds))
    )).scalars())
    open_kinds = set((await session.execute(
        select(Task.kind).where(Task.customer_id == customer_id, Task.kind.in_(kinds), Task.status == OPEN)
    )).scalars())
    notes = []
    for task in explanation.tasks:
        given = f"task {task.kind} (rule {task.rule}, due in {task.due_days} days)"
        if task.kind in open_kinds:
            notes.append(f"{given}: not created, one is already open")
        elif task.kind in held:
            notes.append(f"{given}: not created, the condition already held at the last evaluation")
        else:
            notes.append(f"{given}: would be created")
    return notes


async def explain_customer(
    session: AsyncSession,
    customer_id: int,
    *,
    ruleset_id: int | None = None,
    source: str | None = None,
    as_of: datetime | None = None,
) -> CustomerExplanation:
    """Explain `customer_id` with the saved ruleset, the source text, or (default) the active ruleset."""
    rules, used_ruleset = await _rules_for(session, ruleset_id, source)
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id, field="customer_id")
    values = (await load_rule_values(session, [customer_id]))[customer_id]
    explanation = rules.explain(values, as_of)
    current_team = await _team(session, customer.team_id)
    current_manager = await _employee(session, customer.manager_id)
    rule_team: Team | None = None
    if explanation.team is not None:
        rule_team = await session.scalar(select(Team).where(Team.key == explanation.team))

    notes = [f"Now: team {_key(current_team)}, manager {_name(current_manager)}" + (", assignment locked" if customer.assignment_locked else "")]
    team, manager = current_team, current_manager
    same_team = rule_team is not None and rule_team.id == customer.team_id
    if customer.assignment_locked:
        would = f"; rules would choose {explanation.team or 'no team'}" if not same_team else ""
        notes.append(f"assignment locked: keeps team {_key(current_team)} and manager {_name(current_manager)}{would}")
    elif explanation.team is not None and rule_team is None:
        notes.append(f"team {explanation.team} does not exist: keeps team {_key(current_team)} and manager {_name(current_manager)}")
    elif rule_team is not None and not rule_team.active:
        notes.append(
            f"team {rule_team.key} is inactive: keeps team {_key(current_team)} and manager {_name(current_manager)} "
            "(the next run passes over this rule's team)"
        )
    elif explanation.team is None:
        team, manager = None, None
        if current_team is not None:
            notes.append(f"no team rule matches: leaves team {current_team.key} and manager {_name(current_manager)}")
    elif same_team and current_manager is not None:
        notes.append(f"stays in team {_key(current_team)}: keeps manager {current_manager.name}")
    else:
        assert rule_team is not None
        team = rule_team
        verb = f"stays in team {rule_team.key}" if same_team else f"moves to team {rule_team.key}"
        if rule_team.strategy not in AUTOMATIC_STRATEGIES:
            manager = None
            notes.append(f"{verb}: the team assigns managers by hand ({rule_team.strategy} strategy): manager left empty")
        else:
            manager = await _employee(session, await predict_manager(session, rule_team, customer))
            if manager is None:
                notes.append(f"{verb}: team {rule_team.key} has no member with free capacity: manager left empty")
            else:
                notes.append(f"{verb}: manager {manager.name} ({rule_team.strategy.replace('_', ' ')})")
    notes.extend(await _task_notes(session, customer_id, explanation))
    explanation.notes.extend(notes)
    return CustomerExplanation(customer, used_ruleset, explanation, team, manager, explanation.team)
