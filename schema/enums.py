"""GraphQL enums: the data model's words (docs/domain.md) in upper case.

Each Python value is the stored lower-case word. A vocabulary has one home below the API (the rule
language's fields, domain/*/vocabulary.py, the token roles); `words_of` checks each enum against it
when this module is imported (after `strawberry.enum` has taken each value's description), so an enum
that drifts from its vocabulary stops the schema loading. Each member is a `strawberry.enum_value` (the
word and its GraphQL description); each class declares `_value_: str` so that type checkers read
`.value` as the stored word rather than as that definition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum, EnumMeta
from typing import TypeVar, get_args

import strawberry

from segmenta.domain.access.tokens import ROLES
from segmenta.domain.customers.vocabulary import FEEDBACK_KINDS, FEEDBACK_STATUSES, INTERACTION_KINDS
from segmenta.domain.routing.segments import SEGMENT_KINDS
from segmenta.domain.routing.vocabulary import ASSIGNMENT_CAUSES, RULESET_STATUSES, RUN_MODES, RUN_STATUSES
from segmenta.domain.staff.vocabulary import EMPLOYEE_LEVELS, TEAM_KINDS, TEAM_ROLES, TEAM_STRATEGIES
from segmenta.domain.tasks.vocabulary import TASK_SOURCES, TASK_STATUSES
from segmenta.dsl.diagnostics import Severity as SeverityWord
from segmenta.dsl.fields import CUSTOMER_KINDS, LIFECYCLES, PURCHASING_POWERS, SIZES

EnumT = TypeVar("EnumT", bound=Enum)
EnumClassT = TypeVar("EnumClassT", bound=EnumMeta)


# Each checked enum and the vocabulary it was checked against (tests/schema/test_enums.py reads it).
VOCABULARY_OF: dict[EnumMeta, tuple[str, ...]] = {}


class VocabularyMismatch(TypeError):
    """A GraphQL enum whose values are not the words of its vocabulary, in its order."""


def words_of(vocabulary: Sequence[str]) -> Callable[[EnumClassT], EnumClassT]:
    """Check (when the enum is defined) that its values are `vocabulary`'s words, in order."""

    def check(enum_type: EnumClassT) -> EnumClassT:
        members: list[Enum] = list(enum_type)
        values = tuple(member.value for member in members)
        if values != tuple(vocabulary):
            raise VocabularyMismatch(f"{enum_type.__name__} has {values}, its vocabulary {tuple(vocabulary)}")
        VOCABULARY_OF[enum_type] = tuple(vocabulary)
        return enum_type

    return check


@words_of(CUSTOMER_KINDS)
@strawberry.enum(description="Whether a customer is a company or a private person.")
class CustomerKind(Enum):
    _value_: str
    COMPANY = strawberry.enum_value("company", description="A business customer.")
    PERSON = strawberry.enum_value("person", description="A private person.")


@words_of(SIZES)
@strawberry.enum(
    description=(
        "Company size, ordered SMALL < MEDIUM < LARGE < ENTERPRISE: rules compare by that order (`size >= large`)."
    ),
)
class CustomerSize(Enum):
    _value_: str
    SMALL = strawberry.enum_value("small", description="The smallest size.")
    MEDIUM = strawberry.enum_value("medium", description="Above SMALL, below LARGE.")
    LARGE = strawberry.enum_value("large", description="Above MEDIUM, below ENTERPRISE.")
    ENTERPRISE = strawberry.enum_value("enterprise", description="The largest size.")


@words_of(LIFECYCLES)
@strawberry.enum(
    description=(
        "Where the customer is in its life with us, as recorded on the customer (rules read it; "
        "nothing derives it from activity)."
    )
)
class Lifecycle(Enum):
    _value_: str
    PROSPECT = strawberry.enum_value("prospect", description="Not buying yet.")
    NEW = strawberry.enum_value("new", description="Recently won.")
    ACTIVE = strawberry.enum_value("active", description="Buying regularly.")
    LOYAL = strawberry.enum_value("loyal", description="A long-standing, repeat customer.")
    AT_RISK = strawberry.enum_value("at_risk", description="Showing signs of leaving.")
    CHURNED = strawberry.enum_value("churned", description="Has stopped buying.")


@words_of(PURCHASING_POWERS)
@strawberry.enum(description="Purchasing power, ordered LOW < MEDIUM < HIGH: rules compare by that order.")
class PurchasingPower(Enum):
    _value_: str
    LOW = strawberry.enum_value("low", description="The lowest purchasing power.")
    MEDIUM = strawberry.enum_value("medium", description="Above LOW, below HIGH.")
    HIGH = strawberry.enum_value("high", description="The highest purchasing power.")


@words_of(EMPLOYEE_LEVELS)
@strawberry.enum(description="An employee's seniority, for people to read: routing does not use it.")
class EmployeeLevel(Enum):
    _value_: str
    JUNIOR = strawberry.enum_value("junior", description="Junior (the default for a new employee).")
    SENIOR = strawberry.enum_value("senior", description="Senior.")
    LEAD = strawberry.enum_value("lead", description="Leads others.")
    SUPERVISOR = strawberry.enum_value("supervisor", description="Supervises teams.")


@words_of(TEAM_KINDS)
@strawberry.enum(description="What a team is organised around, for people to read: routing does not use it.")
class TeamKind(Enum):
    _value_: str
    PROFESSIONAL = strawberry.enum_value("professional", description="Organised around industries or expertise.")
    REGIONAL = strawberry.enum_value("regional", description="Organised around regions.")
    LIFECYCLE = strawberry.enum_value(
        "lifecycle",
        description="Organised around a lifecycle stage (e.g. at-risk customers).",
    )
    GENERAL = strawberry.enum_value("general", description="Everything else (the default).")


@words_of(TEAM_STRATEGIES)
@strawberry.enum(
    description=(
        "How a team picks the account manager of a customer routed to it. Only active members with free "
        "capacity are considered, members whose specialties or regions fit the customer first."
    )
)
class TeamStrategy(Enum):
    _value_: str
    ROUND_ROBIN = strawberry.enum_value(
        "round_robin", description="Members take turns in employee order (the default)."
    )
    LEAST_LOADED = strawberry.enum_value(
        "least_loaded", description="The member managing the fewest customers (ties: the earliest employee)."
    )
    MANUAL = strawberry.enum_value(
        "manual", description="The team is set and the manager left empty for a person to choose."
    )


@words_of(TEAM_ROLES)
@strawberry.enum(description="An employee's role in a team.")
class TeamRole(Enum):
    _value_: str
    LEADER = strawberry.enum_value(
        "leader", description="Leads the team; the first team an employee leads is their home team."
    )
    MEMBER = strawberry.enum_value("member", description="An ordinary member (the default).")


@words_of(SEGMENT_KINDS)
@strawberry.enum(description="Who keeps a segment's members.")
class SegmentKind(Enum):
    _value_: str
    MANUAL = strawberry.enum_value(
        "manual", description="Members are added and removed by hand (addToSegment, removeFromSegment, moveToSegment)."
    )
    DYNAMIC = strawberry.enum_value(
        "dynamic", description="Members are kept by the active ruleset's `segment` statements; hand edits are refused."
    )


@words_of(FEEDBACK_KINDS)
@strawberry.enum(description="The kind of a piece of feedback; it decides the score it takes and its first status.")
class FeedbackKind(Enum):
    _value_: str
    SURVEY = strawberry.enum_value("survey", description="A satisfaction survey: score 1–5, starts CLOSED.")
    NPS = strawberry.enum_value("nps", description="A Net Promoter Score answer: score 0–10, starts CLOSED.")
    COMPLAINT = strawberry.enum_value(
        "complaint",
        description="A complaint: no score, starts OPEN and counts in openComplaints until RESOLVED or CLOSED.",
    )
    SUGGESTION = strawberry.enum_value("suggestion", description="A suggestion: no score, starts CLOSED.")
    PRAISE = strawberry.enum_value("praise", description="Praise: no score, starts CLOSED.")


@words_of(FEEDBACK_STATUSES)
@strawberry.enum(
    description=(
        "Where feedback is in its handling, usually OPEN → IN_PROGRESS → RESOLVED → CLOSED. OPEN and "
        "IN_PROGRESS may move to any other status, RESOLVED to CLOSED or back to OPEN, CLOSED only back to OPEN."
    )
)
class FeedbackStatus(Enum):
    _value_: str
    OPEN = strawberry.enum_value("open", description="Waiting to be handled (complaints start here).")
    IN_PROGRESS = strawberry.enum_value("in_progress", description="Being handled.")
    RESOLVED = strawberry.enum_value("resolved", description="Handled; sets resolvedAt.")
    CLOSED = strawberry.enum_value(
        "closed", description="Done (feedback other than complaints starts here); sets resolvedAt."
    )


@words_of(INTERACTION_KINDS)
@strawberry.enum(description="How an employee was in contact with a customer.")
class InteractionKind(Enum):
    _value_: str
    VISIT = strawberry.enum_value("visit", description="A visit in person.")
    CALL = strawberry.enum_value("call", description="A phone call.")
    EMAIL = strawberry.enum_value("email", description="An e-mail.")
    MESSAGE = strawberry.enum_value("message", description="A chat or text message.")
    MEETING = strawberry.enum_value("meeting", description="A meeting.")


@words_of(ASSIGNMENT_CAUSES)
@strawberry.enum(description="What changed a customer's team or manager.")
class AssignmentCause(Enum):
    _value_: str
    RUN = strawberry.enum_value("run", description="An apply run of a ruleset (applyRuleset).")
    REALTIME = strawberry.enum_value(
        "realtime", description="Real-time routing after the customer or its activity changed."
    )
    MANUAL = strawberry.enum_value("manual", description="A person, with assignManager.")


@words_of(ROLES)
@strawberry.enum(description="The role of an API token: what its requests may read and change.")
class Role(Enum):
    _value_: str
    ADMIN = strawberry.enum_value(
        "admin", description="Reads and changes everything: staff, rulesets, API tokens included."
    )
    MANAGER = strawberry.enum_value(
        "manager",
        description="Reads everything; changes customers, feedback status, segments and assignments; previews rules.",
    )
    AGENT = strawberry.enum_value(
        "agent",
        description=(
            "Bound to an employee: reads only their customers (managed by them or in their teams) and records "
            "purchases, interactions and feedback for them."
        ),
    )
    VIEWER = strawberry.enum_value("viewer", description="Reads everything, changes nothing.")


@words_of(RULESET_STATUSES)
@strawberry.enum(description="Where a ruleset version is in its life; one version at a time is ACTIVE.")
class RulesetStatus(Enum):
    _value_: str
    DRAFT = strawberry.enum_value("draft", description="Saved, not in use.")
    ACTIVE = strawberry.enum_value(
        "active", description="The version real-time routing and applyRuleset use (at most one)."
    )
    ARCHIVED = strawberry.enum_value("archived", description="Was active, replaced by another activation.")


@words_of(RUN_MODES)
@strawberry.enum(description="What an evaluation run does with what it finds.")
class RunMode(Enum):
    _value_: str
    PREVIEW = strawberry.enum_value("preview", description="Reports the changes and writes none (previewRuleset).")
    APPLY = strawberry.enum_value("apply", description="Writes the changes, in one transaction (applyRuleset).")
    REALTIME = strawberry.enum_value(
        "realtime", description="One per day: collects the changes real-time routing made that day."
    )


@words_of(RUN_STATUSES)
@strawberry.enum(description="A run is RUNNING until it SUCCEEDED or FAILED.")
class RunStatus(Enum):
    _value_: str
    RUNNING = strawberry.enum_value("running", description="Still evaluating or writing.")
    SUCCEEDED = strawberry.enum_value("succeeded", description="Finished; its summary and changes are complete.")
    FAILED = strawberry.enum_value(
        "failed", description="Stopped; `error` says why, and an apply changed nothing."
    )


@words_of(get_args(SeverityWord))
@strawberry.enum(description="How serious a diagnostic is.")
class Severity(Enum):
    _value_: str
    ERROR = strawberry.enum_value(
        "error", description="The rules cannot be used as written (a ruleset with one has hasErrors true)."
    )
    WARNING = strawberry.enum_value(
        "warning",
        description="Probably a mistake, such as a value no customer has; the rules still work.",
    )
    INFO = strawberry.enum_value("info", description="For information only.")


@words_of(TASK_STATUSES)
@strawberry.enum(description="Where a follow-up task is: OPEN until DONE or CANCELLED (at most one OPEN per customer and kind).")
class TaskStatus(Enum):
    _value_: str
    OPEN = strawberry.enum_value("open", description="To do; overdue once past its due time.")
    DONE = strawberry.enum_value("done", description="Completed (completeTask); an interaction was recorded.")
    CANCELLED = strawberry.enum_value("cancelled", description="Dropped (cancelTask).")


@words_of(TASK_SOURCES)
@strawberry.enum(description="Who made a task.")
class TaskSource(Enum):
    _value_: str
    RULE = strawberry.enum_value("rule", description="A rule's `-> task KIND` action (docs/rule-language.md).")
    MANUAL = strawberry.enum_value("manual", description="createTask.")
    SYSTEM = strawberry.enum_value("system", description="Segmenta itself (e.g. the demo data).")


def to_enum(enum_type: type[EnumT], stored: str | None) -> EnumT | None:
    """The enum member of a stored word; None for a missing or unknown word (never fails a read)."""
    if stored is None:
        return None
    try:
        return enum_type(stored)
    except ValueError:
        return None


def to_word(member: Enum | None) -> str | None:
    return None if member is None else str(member.value)
