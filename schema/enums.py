"""GraphQL enums: the data model's words (docs/domain.md) in upper case.

Each Python value is the stored lower-case word. A vocabulary has one home below the API (the rule
language's fields, domain/*/vocabulary.py, the token roles); `words_of` checks each enum against it
when this module is imported, so an enum that drifts from its vocabulary stops the schema loading.
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


@strawberry.enum(description="A company or a private person.")
@words_of(CUSTOMER_KINDS)
class CustomerKind(Enum):
    COMPANY = "company"
    PERSON = "person"


@strawberry.enum(description="Company size, ordered small < medium < large < enterprise.")
@words_of(SIZES)
class CustomerSize(Enum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"
    ENTERPRISE = "enterprise"


@strawberry.enum(description="Where the customer is in its life with us.")
@words_of(LIFECYCLES)
class Lifecycle(Enum):
    PROSPECT = "prospect"
    NEW = "new"
    ACTIVE = "active"
    LOYAL = "loyal"
    AT_RISK = "at_risk"
    CHURNED = "churned"


@strawberry.enum(description="Purchasing power, ordered low < medium < high.")
@words_of(PURCHASING_POWERS)
class PurchasingPower(Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@strawberry.enum
@words_of(EMPLOYEE_LEVELS)
class EmployeeLevel(Enum):
    JUNIOR = "junior"
    SENIOR = "senior"
    LEAD = "lead"
    SUPERVISOR = "supervisor"


@strawberry.enum
@words_of(TEAM_KINDS)
class TeamKind(Enum):
    PROFESSIONAL = "professional"
    REGIONAL = "regional"
    LIFECYCLE = "lifecycle"
    GENERAL = "general"


@strawberry.enum(description="How a team picks the account manager of a customer routed to it.")
@words_of(TEAM_STRATEGIES)
class TeamStrategy(Enum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    MANUAL = "manual"


@strawberry.enum
@words_of(TEAM_ROLES)
class TeamRole(Enum):
    LEADER = "leader"
    MEMBER = "member"


@strawberry.enum(description="MANUAL segments are kept by hand; DYNAMIC ones by the active ruleset.")
@words_of(SEGMENT_KINDS)
class SegmentKind(Enum):
    MANUAL = "manual"
    DYNAMIC = "dynamic"


@strawberry.enum
@words_of(FEEDBACK_KINDS)
class FeedbackKind(Enum):
    SURVEY = "survey"
    NPS = "nps"
    COMPLAINT = "complaint"
    SUGGESTION = "suggestion"
    PRAISE = "praise"


@strawberry.enum
@words_of(FEEDBACK_STATUSES)
class FeedbackStatus(Enum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


@strawberry.enum
@words_of(INTERACTION_KINDS)
class InteractionKind(Enum):
    VISIT = "visit"
    CALL = "call"
    EMAIL = "email"
    MESSAGE = "message"
    MEETING = "meeting"


@strawberry.enum(description="What changed a customer's team or manager.")
@words_of(ASSIGNMENT_CAUSES)
class AssignmentCause(Enum):
    RUN = "run"
    REALTIME = "realtime"
    MANUAL = "manual"


@strawberry.enum
@words_of(ROLES)
class Role(Enum):
    ADMIN = "admin"
    MANAGER = "manager"
    AGENT = "agent"
    VIEWER = "viewer"


@strawberry.enum(description="DRAFT when saved, ACTIVE when activated (one at a time), ARCHIVED when replaced.")
@words_of(RULESET_STATUSES)
class RulesetStatus(Enum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


@strawberry.enum
@words_of(RUN_MODES)
class RunMode(Enum):
    PREVIEW = "preview"
    APPLY = "apply"
    REALTIME = "realtime"


@strawberry.enum(description="A run is RUNNING until it SUCCEEDED or FAILED (then `error` says why).")
@words_of(RUN_STATUSES)
class RunStatus(Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@strawberry.enum
@words_of(get_args(SeverityWord))
class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


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
