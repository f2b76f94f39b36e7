"""GraphQL enums: the data model's words (docs/domain.md) in upper case.

Each Python value is the stored lower-case word.
"""

from __future__ import annotations

from enum import Enum
from typing import TypeVar

import strawberry


@strawberry.enum(description="A company or a private person.")
class CustomerKind(Enum):
    COMPANY = "company"
    PERSON = "person"


@strawberry.enum(description="Company size, ordered small < medium < large < enterprise.")
class CustomerSize(Enum):
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"
    ENTERPRISE = "enterprise"


@strawberry.enum(description="Where the customer is in its life with us.")
class Lifecycle(Enum):
    PROSPECT = "prospect"
    NEW = "new"
    ACTIVE = "active"
    LOYAL = "loyal"
    AT_RISK = "at_risk"
    CHURNED = "churned"


@strawberry.enum(description="Purchasing power, ordered low < medium < high.")
class PurchasingPower(Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@strawberry.enum
class EmployeeLevel(Enum):
    JUNIOR = "junior"
    SENIOR = "senior"
    LEAD = "lead"
    SUPERVISOR = "supervisor"


@strawberry.enum
class TeamKind(Enum):
    PROFESSIONAL = "professional"
    REGIONAL = "regional"
    LIFECYCLE = "lifecycle"
    GENERAL = "general"


@strawberry.enum(description="How a team picks the account manager of a customer routed to it.")
class TeamStrategy(Enum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    MANUAL = "manual"


@strawberry.enum
class TeamRole(Enum):
    LEADER = "leader"
    MEMBER = "member"


@strawberry.enum(description="MANUAL segments are kept by hand; DYNAMIC ones by the active ruleset.")
class SegmentKind(Enum):
    MANUAL = "manual"
    DYNAMIC = "dynamic"


@strawberry.enum
class FeedbackKind(Enum):
    SURVEY = "survey"
    NPS = "nps"
    COMPLAINT = "complaint"
    SUGGESTION = "suggestion"
    PRAISE = "praise"


@strawberry.enum
class FeedbackStatus(Enum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


@strawberry.enum
class InteractionKind(Enum):
    VISIT = "visit"
    CALL = "call"
    EMAIL = "email"
    MESSAGE = "message"
    MEETING = "meeting"


@strawberry.enum(description="What changed a customer's team or manager.")
class AssignmentCause(Enum):
    RUN = "run"
    REALTIME = "realtime"
    MANUAL = "manual"


@strawberry.enum
class Role(Enum):
    ADMIN = "admin"
    MANAGER = "manager"
    AGENT = "agent"
    VIEWER = "viewer"


EnumT = TypeVar("EnumT", bound=Enum)


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
