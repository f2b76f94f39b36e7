"""SQLAlchemy 2 models for every entity of the data model (docs/domain.md, 'Data model').

Customer metrics (docs/domain.md, 'Maintained metrics') are maintained columns on ``customers`` — updated by
the domain services in the same transaction as the purchase, feedback or
interaction that changes them — so that rules read one row per customer, with
no aggregate joins (see docs/architecture.md).  Day-based metrics are never
stored: they are derived from the stored dates at the evaluation's ``as_of``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from segmenta.storage.money_type import Money

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Naive UTC: both back ends store timestamps without a zone."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}

    if TYPE_CHECKING:
        # Every model here is mapped to a Table (none to a join or subquery); DeclarativeBase types
        # __table__ as the wider FromClause, which insert()/update()/delete() do not accept.
        __table__: ClassVar[Table]


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(20))  # words: dsl/fields.py (like size, lifecycle, purchasing_power)
    industry: Mapped[str | None] = mapped_column(String(100), index=True)
    size: Mapped[str | None] = mapped_column(String(20), index=True)
    region: Mapped[str | None] = mapped_column(String(100), index=True)
    city: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(100))
    lifecycle: Mapped[str | None] = mapped_column(String(20), index=True)
    purchasing_power: Mapped[str | None] = mapped_column(String(20))
    channel: Mapped[str | None] = mapped_column(String(50))
    email: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(Text)
    age: Mapped[float | None] = mapped_column(Float)
    gender: Mapped[str | None] = mapped_column(String(20))
    income: Mapped[float | None] = mapped_column(Float)
    occupation: Mapped[str | None] = mapped_column(String(100))
    birthday: Mapped[date | None] = mapped_column(Date)
    # month * 100 + day of ``birthday``: lets days_to_birthday become a range test.
    birthday_md: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    # Assignment (outputs of routing; rules never read them).
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("employees.id", ondelete="SET NULL"), index=True
    )
    assignment_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    deciding_rule: Mapped[str | None] = mapped_column(String(200))
    # Raised by every real-time re-evaluation and every apply that re-routes the customer: an
    # apply leaves alone the customers whose version moved after its snapshot (domain/routing/runs.py).
    routing_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # Maintained metrics (docs/domain.md).  Counts and sums default to 0.
    purchase_count: Mapped[int] = mapped_column(Integer, default=0, index=True)
    # Money columns hold whole cents (storage/money_type.py): exact, and the same on both back ends.
    total_spent: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), index=True)
    first_purchase_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_purchase_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
    survey_count: Mapped[int] = mapped_column(Integer, default=0)
    survey_sum: Mapped[float] = mapped_column(Float, default=0.0)
    nps_count: Mapped[int] = mapped_column(Integer, default=0)
    nps_sum: Mapped[float] = mapped_column(Float, default=0.0)
    feedback_count: Mapped[int] = mapped_column(Integer, default=0)
    complaint_count: Mapped[int] = mapped_column(Integer, default=0)
    open_complaints: Mapped[int] = mapped_column(Integer, default=0)
    interaction_count: Mapped[int] = mapped_column(Integer, default=0)
    last_contact_at: Mapped[datetime | None] = mapped_column(DateTime)

    team: Mapped[Team | None] = relationship(foreign_keys=[team_id], lazy="raise")
    manager: Mapped[Employee | None] = relationship(foreign_keys=[manager_id], lazy="raise")


class CustomerTag(Base):
    """Manual tags (source='manual') and rule-made tags (source='rule')."""

    __tablename__ = "customer_tags"
    __table_args__ = (UniqueConstraint("customer_id", "tag", "source", name="uq_customer_tags"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    tag: Mapped[str] = mapped_column(String(100), index=True)
    source: Mapped[str] = mapped_column(String(10), default="manual")


class CustomerAttribute(Base):
    """Custom attributes: exactly one of text_value / number_value is set."""

    __tablename__ = "customer_attributes"
    __table_args__ = (
        UniqueConstraint("customer_id", "key", name="uq_customer_attributes"),
        Index("ix_customer_attributes_key_text", "key", "text_value"),
        Index("ix_customer_attributes_key_number", "key", "number_value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    text_value: Mapped[str | None] = mapped_column(Text)
    number_value: Mapped[float | None] = mapped_column(Float)


class Purchase(Base):
    __tablename__ = "purchases"
    __table_args__ = (
        Index("ix_purchases_customer_category", "customer_id", "category"),
        # A customer's purchases in a time window (retention, docs/performance.md).
        Index("ix_purchases_customer_purchased_at", "customer_id", "purchased_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    category: Mapped[str | None] = mapped_column(String(100))
    product: Mapped[str | None] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(50))
    purchased_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Interaction(Base):
    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    employee_id: Mapped[int | None] = mapped_column(
        ForeignKey("employees.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))  # words: domain/customers/vocabulary.py
    # Indexed for the interactions of a period (docs/performance.md).
    occurred_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    summary: Mapped[str | None] = mapped_column(Text)


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    employee_id: Mapped[int | None] = mapped_column(
        ForeignKey("employees.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20), index=True)  # words: domain/customers/vocabulary.py
    score: Mapped[float | None] = mapped_column(Float)
    comment: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    status_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)


class Employee(Base):
    __tablename__ = "employees"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200), unique=True)
    level: Mapped[str] = mapped_column(String(20), default="junior")  # words: domain/staff/vocabulary.py
    specialties: Mapped[list[str]] = mapped_column(JSON, default=list)
    regions: Mapped[list[str]] = mapped_column(JSON, default=list)
    capacity: Mapped[int | None] = mapped_column(Integer)  # None = unlimited
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    monthly_target: Mapped[Decimal | None] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20), default="general")  # words: domain/staff/vocabulary.py
    strategy: Mapped[str] = mapped_column(String(20), default="round_robin")  # words: domain/staff/vocabulary.py
    monthly_target: Mapped[Decimal | None] = mapped_column(Money)
    # Shared across server processes: the next member position for round_robin.
    round_robin_position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # An inactive team takes no customers: runs pass over rules naming it, real-time routing
    # leaves customers where they are (docs/domain.md, "Inactive teams").
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "employee_id", name="uq_team_members"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10), default="member")  # words: domain/staff/vocabulary.py
    joined_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Segment(Base):
    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10), default="manual")  # words: domain/routing/segments.py
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SegmentMember(Base):
    __tablename__ = "segment_members"
    __table_args__ = (UniqueConstraint("segment_id", "customer_id", name="uq_segment_members"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RulesetVersion(Base):
    """One saved version of a named rule file (the compiled form is segmenta.dsl.ruleset.Ruleset)."""

    __tablename__ = "rulesets"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_rulesets_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="draft")  # words: domain/routing/vocabulary.py
    diagnostics: Mapped[list[Any]] = mapped_column(JSON, default=list)
    has_errors: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime)


class EvaluationRun(Base):
    __tablename__ = "evaluation_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ruleset_id: Mapped[int | None] = mapped_column(ForeignKey("rulesets.id", ondelete="SET NULL"))
    mode: Mapped[str] = mapped_column(String(10))  # words: domain/routing/vocabulary.py
    status: Mapped[str] = mapped_column(String(10), default="running")  # words: domain/routing/vocabulary.py
    as_of: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)
    # evaluated, changed, unmatched, locked, team_counts, rule_hits, segment_counts, ...
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Which process executes a running run and when it last said so (domain/routing/run_tasks.py).
    owner: Mapped[str | None] = mapped_column(String(100))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)


class EvaluationChange(Base):
    __tablename__ = "evaluation_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    team_before_id: Mapped[int | None] = mapped_column(Integer)
    team_after_id: Mapped[int | None] = mapped_column(Integer)
    manager_before_id: Mapped[int | None] = mapped_column(Integer)
    manager_after_id: Mapped[int | None] = mapped_column(Integer)
    segments_added: Mapped[list[str]] = mapped_column(JSON, default=list)
    segments_removed: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags_added: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags_removed: Mapped[list[str]] = mapped_column(JSON, default=list)
    deciding_rule: Mapped[str | None] = mapped_column(String(200))
    locked: Mapped[bool] = mapped_column(Boolean, default=False)


class AssignmentHistory(Base):
    __tablename__ = "assignment_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    team_before_id: Mapped[int | None] = mapped_column(Integer)
    team_after_id: Mapped[int | None] = mapped_column(Integer)
    manager_before_id: Mapped[int | None] = mapped_column(Integer)
    manager_after_id: Mapped[int | None] = mapped_column(Integer)
    cause: Mapped[str] = mapped_column(String(20))  # words: domain/routing/vocabulary.py
    run_id: Mapped[int | None] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="SET NULL"))
    rule: Mapped[str | None] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class Task(Base):
    """A follow-up task on one customer (docs/tasks.md): for an employee, or a team's queue.

    At most one OPEN task per (customer, kind): the partial unique index below, which makes the
    rule action `-> task KIND` idempotent when an apply, the schedule and real time insert it with
    INSERT … ON CONFLICT DO NOTHING (storage/dml.py).  Status and source words: domain/tasks/vocabulary.py.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        Index(
            "uq_tasks_open_customer_kind", "customer_id", "kind", unique=True,
            sqlite_where=text("status = 'open'"), postgresql_where=text("status = 'open'"),
        ),
        # My/an employee's open tasks by due date; overdue = open and due_at < now.
        Index("ix_tasks_employee_status_due", "employee_id", "status", "due_at"),
        Index("ix_tasks_team_status_due", "team_id", "status", "due_at"),
        Index("ix_tasks_status_due", "status", "due_at"),
        Index("ix_tasks_customer_status", "customer_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # The assignee: an employee, or (employee NULL) the queue of team_id.  Both NULL: nobody yet.
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(10), default="open", server_default="open")
    source: Mapped[str] = mapped_column(String(10), default="manual", server_default="manual")
    # Set when source = 'rule': the rule's label and the ruleset version (and run) that created it.
    rule: Mapped[str | None] = mapped_column(String(200))
    ruleset_id: Mapped[int | None] = mapped_column(ForeignKey("rulesets.id", ondelete="SET NULL"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # When it was done or cancelled, and by whom.
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id", ondelete="SET NULL"))
    outcome: Mapped[str | None] = mapped_column(Text)


class TaskTrigger(Base):
    """(customer, kind) whose rule condition held at the last evaluation that looked at it.

    A rule's `-> task KIND` creates a task only where the condition holds and no row is here (it
    just became true), then writes the row; an evaluation that finds the condition false deletes it
    (re-arms).  So a task completed while the condition still holds is not created again until the
    condition has stopped holding and holds again (docs/rule-language.md, "Tasks").
    """

    __tablename__ = "task_triggers"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(100), primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # SHA-256 of the token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(10))  # words: domain/access/tokens.py (ROLES)
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    # When the token last authenticated, to the minute: written at most once a minute
    # (domain/access/tokens.py, LAST_USED_GRANULARITY), so a request does not write every time.
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)


class SchedulerLock(Base):
    """One row per named job; the holder and lease make it safe across processes."""

    __tablename__ = "scheduler_locks"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime)


class EventLog(Base):
    """Events on their way between the server processes of one SQLite database (storage/event_log.py).

    Rows are appended in id order (SQLite writes one transaction at a time, and AUTOINCREMENT never
    reuses an id), read by every process after the last id it saw, and pruned by age."""

    __tablename__ = "event_log"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    origin: Mapped[str] = mapped_column(String(100), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)


class PerformanceTarget(Base):
    """A revenue target for one month ('YYYY-MM') of one employee or one team (exactly one of the two):
    it overrides the owner's monthly_target for that month (docs/performance.md, "Targets")."""

    __tablename__ = "performance_targets"
    __table_args__ = (
        UniqueConstraint("employee_id", "month", name="uq_performance_targets_employee_month"),
        UniqueConstraint("team_id", "month", name="uq_performance_targets_team_month"),
        CheckConstraint("(employee_id IS NULL) <> (team_id IS NULL)", name="one_owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    employee_id: Mapped[int | None] = mapped_column(ForeignKey("employees.id", ondelete="CASCADE"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))
    amount: Mapped[Decimal] = mapped_column(Money)
    set_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
