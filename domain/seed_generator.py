"""The demo dataset: a realistic, deterministic customer base for trying Segmenta.

`generate_dataset` is pure: the same count, seed and `as_of` give the same rows (domain/seed.py
writes them).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from segmenta.domain.customers.vocabulary import FEEDBACK_KINDS, FEEDBACK_STATUSES, INTERACTION_KINDS
from segmenta.domain.errors import UserError
from segmenta.domain.seed_words import (
    CATEGORIES,
    CHANNELS,
    CHINESE_COMPANY_WORDS,
    CHINESE_GIVEN,
    CHINESE_INDUSTRY_WORDS,
    CHINESE_REGIONS,
    CHINESE_STREETS,
    CHINESE_SURNAMES,
    COMPLAINT_COMMENTS,
    ENGLISH_COMPANY_WORDS,
    ENGLISH_FIRST,
    ENGLISH_INDUSTRY_WORDS,
    ENGLISH_LAST,
    ENGLISH_STREETS,
    ENGLISH_SUFFIXES,
    GENDERS,
    INDUSTRIES,
    INDUSTRY_WEIGHTS,
    INTERACTION_SUMMARIES,
    INTERACTION_WEIGHTS,
    MANUAL_TAGS,
    OCCUPATIONS,
    PINYIN_SURNAMES,
    PRAISE_COMMENTS,
    REGION_WEIGHTS,
    REGIONS,
    SIZE_SPEND_FACTOR,
    SIZE_WEIGHTS,
    SOURCES,
    SUGGESTION_COMMENTS,
    SURVEY_COMMENTS,
    TIERS,
)
from segmenta.domain.staff.vocabulary import EMPLOYEE_LEVELS
from segmenta.dsl.fields import SIZES
from segmenta.dsl.money import to_cent, to_decimal


@dataclass(frozen=True)
class TeamSpec:
    key: str
    name: str
    description: str
    kind: str
    strategy: str
    monthly_target: Decimal
    # Which employees join: predicate on the generated employee row.
    members: Callable[[dict[str, Any]], bool]


def _covers(row: dict[str, Any], regions: Sequence[str]) -> bool:
    return any(region in row["regions"] for region in regions)


# The smallest purchase the demo data makes.
MINIMUM_AMOUNT = Decimal("9.90")

TEAMS: tuple[TeamSpec, ...] = (
    TeamSpec("senior_sales", "Senior Sales", "Large and enterprise accounts with high value", "professional",
             "least_loaded", Decimal(900_000), lambda e: e["level"] in ("senior", "lead", "supervisor") and e["index"] % 3 == 0),
    TeamSpec("technical_support", "Technical Support", "Integration-heavy technology and manufacturing accounts",
             "professional", "least_loaded", Decimal(300_000), lambda e: bool({"technology", "manufacturing"} & set(e["specialties"]))),
    TeamSpec("standard_service", "Standard Service", "Small and medium customers", "general", "round_robin",
             Decimal(400_000), lambda e: e["level"] in ("junior", "senior") and e["index"] % 2 == 1),
    TeamSpec("east_region", "East / 华东 Regional", "Regional team for east and 华东", "regional", "round_robin",
             Decimal(500_000), lambda e: _covers(e, ("east", "华东"))),
    TeamSpec("north_region", "North / 华北 Regional", "Regional team for north and 华北", "regional", "round_robin",
             Decimal(350_000), lambda e: _covers(e, ("north", "华北"))),
    TeamSpec("customer_success", "Customer Success", "Unhappy and at-risk customers", "lifecycle", "least_loaded",
             Decimal(200_000), lambda e: e["index"] % 5 == 2),
    TeamSpec("low_value_upgrade", "Low-Value Upgrade", "Customers with buying power who spend little",
             "lifecycle", "round_robin", Decimal(150_000), lambda e: e["index"] % 6 == 4),
    TeamSpec("general_pool", "General Pool", "Everyone no other rule took", "general", "least_loaded",
             Decimal(250_000), lambda e: e["level"] == "junior" or e["index"] % 4 == 0),
)

MANUAL_SEGMENTS = (
    ("key_accounts", "Key accounts", "Hand-picked strategic accounts"),
    ("pilot_program", "Pilot program", "Customers trying the new analytics module"),
    ("trade_show_leads", "Trade show leads", "Met at the 2025 trade shows"),
)


@dataclass
class Dataset:
    """Rows keyed by natural keys (code, email, team key); ids are resolved at insert time."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)  # (customer code, tag)
    attributes: list[tuple[str, str, str | None, float | None]] = field(default_factory=list)
    purchases: list[dict[str, Any]] = field(default_factory=list)  # has "customer_code"
    feedback: list[dict[str, Any]] = field(default_factory=list)  # "customer_code", "employee_email"
    interactions: list[dict[str, Any]] = field(default_factory=list)  # "customer_code", "employee_email"
    employees: list[dict[str, Any]] = field(default_factory=list)
    teams: list[dict[str, Any]] = field(default_factory=list)
    team_members: list[tuple[str, str, str]] = field(default_factory=list)  # (team key, email, role)
    segments: list[dict[str, Any]] = field(default_factory=list)
    segment_members: list[tuple[str, str]] = field(default_factory=list)  # (segment key, customer code)


def default_as_of() -> datetime:
    """Midnight UTC today: seeding twice on one day gives identical data."""
    return datetime.combine(datetime.now(UTC).date(), time())


class _Generator:
    def __init__(self, seed: int, as_of: datetime) -> None:
        self.rng = random.Random(seed)
        self.as_of = as_of
        self.data = Dataset()

    def weighted(self, values: Sequence[Any], weights: Sequence[float]) -> Any:
        return self.rng.choices(values, weights=weights, k=1)[0]

    def moment_after(self, start: datetime) -> datetime:
        """A random second between `start` and `as_of`."""
        span = max(int((self.as_of - start).total_seconds()), 1)
        return start + timedelta(seconds=self.rng.randrange(span))

    # -- staff -------------------------------------------------------------------------------

    def employees(self, count: int) -> None:
        regions = list(REGIONS)
        for index in range(count):
            chinese = index % 2 == 0
            if chinese:
                surname = self.rng.choice(CHINESE_SURNAMES)
                name = surname + self.rng.choice(CHINESE_GIVEN)
                local = f"{PINYIN_SURNAMES[surname]}.{index + 1:02d}"
            else:
                first, last = self.rng.choice(ENGLISH_FIRST), self.rng.choice(ENGLISH_LAST)
                name = f"{first} {last}"
                local = f"{first.lower()}.{last.lower()}.{index + 1:02d}"
            level = self.weighted(EMPLOYEE_LEVELS, (45, 30, 15, 10))
            home = regions[index % len(regions)]
            extra = self.rng.choice(regions)
            specialties = sorted(set(self.rng.choices(INDUSTRIES, weights=INDUSTRY_WEIGHTS, k=2)))
            capacity = None if level == "supervisor" else {"junior": 120, "senior": 180, "lead": 220}[level] + self.rng.randrange(0, 60, 10)
            self.data.employees.append(
                {
                    "index": index,
                    "name": name,
                    "email": f"{local}@segmenta.example",
                    "level": level,
                    "specialties": specialties,
                    "regions": sorted({home, extra}),
                    "capacity": capacity,
                    "active": index % 17 != 16,
                    "monthly_target": Decimal({"junior": 40_000, "senior": 80_000, "lead": 120_000, "supervisor": 150_000}[level]),
                    "created_at": self.as_of - timedelta(days=self.rng.randrange(200, 1500)),
                }
            )

    def teams(self) -> None:
        for spec in TEAMS:
            self.data.teams.append(
                {
                    "key": spec.key,
                    "name": spec.name,
                    "description": spec.description,
                    "kind": spec.kind,
                    "strategy": spec.strategy,
                    "monthly_target": spec.monthly_target,
                    "created_at": self.as_of - timedelta(days=900),
                }
            )
            members = [e for e in self.data.employees if spec.members(e)]
            leader = max(members, key=lambda e: (EMPLOYEE_LEVELS.index(e["level"]), -e["index"]))
            for employee in members:
                role = "leader" if employee is leader else "member"
                self.data.team_members.append((spec.key, employee["email"], role))

    # -- customers ---------------------------------------------------------------------------

    def customer(self, index: int) -> None:
        rng = self.rng
        code = f"C{index + 1:05d}"
        region = self.weighted(list(REGION_WEIGHTS), list(REGION_WEIGHTS.values()))
        country, cities = REGIONS[region]
        city = rng.choice(cities)
        chinese = region in CHINESE_REGIONS
        kind = "company" if rng.random() < 0.65 else "person"
        industry = self.weighted(INDUSTRIES, INDUSTRY_WEIGHTS)
        row: dict[str, Any] = {
            "code": code,
            "kind": kind,
            "industry": industry if kind == "company" or rng.random() < 0.3 else None,
            "region": region,
            "city": city,
            "country": country,
            "channel": rng.choice(CHANNELS[:5] if not chinese else CHANNELS),
            "size": None,
            "age": None,
            "gender": None,
            "income": None,
            "occupation": None,
            "birthday": None,
            "birthday_md": None,
        }
        if kind == "company":
            size = self.weighted(SIZES, SIZE_WEIGHTS)
            row["size"] = size
            row["name"] = self.company_name(chinese, industry, city)
            row["purchasing_power"] = self.weighted(
                ("low", "medium", "high"),
                {"small": (55, 35, 10), "medium": (25, 50, 25), "large": (8, 42, 50), "enterprise": (3, 27, 70)}[size],
            )
        else:
            row["name"] = self.person_name(chinese)
            age = rng.randint(19, 74)
            birthday = (self.as_of.date() - timedelta(days=age * 365 + rng.randrange(365)))
            income = round(max(8_000.0, rng.lognormvariate(math.log(60_000 if not chinese else 150_000), 0.5)), -2)
            row.update(
                age=float(age),
                gender=rng.choice(GENDERS),
                income=income,
                occupation="retired" if age >= 65 else rng.choice(OCCUPATIONS[:-1]),
                birthday=birthday,
                birthday_md=birthday.month * 100 + birthday.day,
                purchasing_power="high" if income > (120_000 if not chinese else 300_000) else ("medium" if income > (45_000 if not chinese else 100_000) else "low"),
            )
        slug = code.lower()
        row["email"] = f"contact.{slug}@{'example.cn' if chinese else 'example.com'}" if rng.random() < 0.9 else None
        row["phone"] = (
            f"+86 1{rng.randint(30, 89)}{rng.randint(0, 99_999_999):08d}" if chinese else f"+1 {rng.randint(201, 989)}-555-{rng.randint(0, 9999):04d}"
        ) if rng.random() < 0.85 else None
        row["address"] = (
            f"{city}{rng.choice(CHINESE_STREETS)}{rng.randint(1, 999)}号" if chinese else f"{rng.randint(1, 9999)} {rng.choice(ENGLISH_STREETS)}, {city}"
        )
        created_at = self.as_of - timedelta(days=rng.randrange(5, 3 * 365), seconds=rng.randrange(86_400))
        row["created_at"] = created_at
        row["updated_at"] = created_at
        row["lifecycle"] = self.lifecycle(created_at)
        self.data.customers.append(row)
        self.customer_extras(row)
        self.activity(row)

    def company_name(self, chinese: bool, industry: str, city: str) -> str:
        if chinese:
            suffix = self.rng.choice(("有限公司", "股份有限公司", "集团"))
            return f"{city}{self.rng.choice(CHINESE_COMPANY_WORDS)}{CHINESE_INDUSTRY_WORDS[industry]}{suffix}"
        return f"{self.rng.choice(ENGLISH_COMPANY_WORDS)} {ENGLISH_INDUSTRY_WORDS[industry]} {self.rng.choice(ENGLISH_SUFFIXES)}"

    def person_name(self, chinese: bool) -> str:
        if chinese:
            return self.rng.choice(CHINESE_SURNAMES) + self.rng.choice(CHINESE_GIVEN)
        return f"{self.rng.choice(ENGLISH_FIRST)} {self.rng.choice(ENGLISH_LAST)}"

    def lifecycle(self, created_at: datetime) -> str:
        age_days = (self.as_of - created_at).days
        if age_days < 90:
            return self.weighted(("prospect", "new"), (40, 60))
        return self.weighted(("prospect", "active", "loyal", "at_risk", "churned"), (8, 42, 25, 15, 10))

    def customer_extras(self, row: dict[str, Any]) -> None:
        rng = self.rng
        code = row["code"]
        for tag in MANUAL_TAGS:
            if rng.random() < 0.07:
                self.data.tags.append((code, tag))
        if rng.random() < 0.7:
            tier = self.weighted(TIERS, (40, 35, 20, 5))
            self.data.attributes.append((code, "tier", tier, None))
        if rng.random() < 0.8:
            self.data.attributes.append((code, "source", rng.choice(SOURCES), None))
        if row["kind"] == "company" and rng.random() < 0.6:
            headcount = {"small": 30, "medium": 250, "large": 2000, "enterprise": 15000}[row["size"]]
            self.data.attributes.append((code, "employees", None, float(int(headcount * rng.uniform(0.3, 2.0)))))
        if rng.random() < 0.15:
            self.data.attributes.append((code, "credit_limit", None, float(rng.randrange(10, 500) * 1000)))

    # -- activity ----------------------------------------------------------------------------

    def purchase_window(self, row: dict[str, Any]) -> tuple[datetime, datetime] | None:
        """When this customer bought, given its lifecycle: churned customers stopped long ago."""
        lifecycle = row["lifecycle"]
        start = max(row["created_at"], self.as_of - timedelta(days=730))
        if lifecycle == "prospect":
            return None
        if lifecycle == "churned":
            end = self.as_of - timedelta(days=self.rng.randrange(370, 540))
        elif lifecycle == "at_risk":
            end = self.as_of - timedelta(days=self.rng.randrange(185, 360))
        else:
            end = self.as_of - timedelta(days=self.rng.randrange(0, 60))
        if end <= start:
            end = start + timedelta(days=1)
        return start, min(end, self.as_of)

    def activity(self, row: dict[str, Any]) -> None:
        rng = self.rng
        code = row["code"]
        window = self.purchase_window(row)
        if window is not None:
            start, end = window
            base = {"new": 2, "active": 6, "loyal": 16, "at_risk": 4, "churned": 3}[row["lifecycle"]]
            count = max(1, min(60, int(rng.lognormvariate(math.log(base), 0.6))))
            spend_factor = SIZE_SPEND_FACTOR[row["size"]] * {"low": 0.6, "medium": 1.0, "high": 1.8}[row["purchasing_power"]]
            span = max(int((end - start).total_seconds()), 1)
            for _ in range(count):
                category = rng.choice(list(CATEGORIES))
                products, typical = CATEGORIES[category]
                amount = to_cent(to_decimal(round(rng.lognormvariate(math.log(typical * spend_factor), 0.7), 2)))
                self.data.purchases.append(
                    {
                        "customer_code": code,
                        "amount": max(amount, MINIMUM_AMOUNT),
                        "category": category,
                        "product": rng.choice(products),
                        "channel": row["channel"],
                        "purchased_at": start + timedelta(seconds=rng.randrange(span)),
                    }
                )
        self.feedback(row)
        self.interactions(row)

    def employee_email(self) -> str:
        return self.rng.choice(self.data.employees)["email"]

    def feedback(self, row: dict[str, Any]) -> None:
        rng = self.rng
        code = row["code"]
        unhappy = row["lifecycle"] in ("at_risk", "churned")
        for _ in range(rng.choices((0, 1, 2, 3, 4), weights=(30, 30, 20, 12, 8))[0]):
            kind = self.weighted(FEEDBACK_KINDS,
                                 (35, 25, 25 if unhappy else 10, 10, 6 if unhappy else 15))
            created_at = self.moment_after(max(row["created_at"], self.as_of - timedelta(days=730)))
            score: float | None = None
            comment: str | None
            status, resolved_at = "closed", None
            if kind == "survey":
                score = float(self.weighted((1, 2, 3, 4, 5), (8, 12, 25, 35, 20) if not unhappy else (25, 30, 25, 15, 5)))
                comment = rng.choice(SURVEY_COMMENTS) or None
            elif kind == "nps":
                score = float(rng.randint(0, 6) if unhappy and rng.random() < 0.7 else rng.randint(5, 10))
                comment = None
            elif kind == "complaint":
                comment = rng.choice(COMPLAINT_COMMENTS)
                recent = (self.as_of - created_at).days < 60
                status = self.weighted(FEEDBACK_STATUSES, (45, 25, 20, 10) if recent else (5, 5, 50, 40))
                if status in ("resolved", "closed"):
                    resolved_at = min(created_at + timedelta(days=rng.randint(1, 20)), self.as_of)
            elif kind == "suggestion":
                comment = rng.choice(SUGGESTION_COMMENTS)
            else:
                comment = rng.choice(PRAISE_COMMENTS)
            self.data.feedback.append(
                {
                    "customer_code": code,
                    "employee_email": self.employee_email() if rng.random() < 0.5 else None,
                    "kind": kind,
                    "score": score,
                    "comment": comment,
                    "channel": rng.choice(("email", "phone", "web", "wechat")),
                    "status": status,
                    "created_at": created_at,
                    "resolved_at": resolved_at,
                }
            )

    def interactions(self, row: dict[str, Any]) -> None:
        rng = self.rng
        count = rng.choices((0, 1, 2, 4, 8, 15), weights=(15, 25, 25, 20, 10, 5))[0]
        start = max(row["created_at"], self.as_of - timedelta(days=730))
        for _ in range(count):
            kind = self.weighted(INTERACTION_KINDS, INTERACTION_WEIGHTS)
            self.data.interactions.append(
                {
                    "customer_code": row["code"],
                    "employee_email": self.employee_email(),
                    "kind": kind,
                    "occurred_at": self.moment_after(start),
                    "summary": rng.choice(INTERACTION_SUMMARIES[kind]),
                }
            )

    def segments(self) -> None:
        for key, name, description in MANUAL_SEGMENTS:
            self.data.segments.append({"key": key, "name": name, "description": description, "kind": "manual",
                                       "created_at": self.as_of - timedelta(days=200)})
        codes_by_size = [c["code"] for c in self.data.customers if c["size"] in ("large", "enterprise")]
        for code in codes_by_size[: max(1, len(codes_by_size) // 8)]:
            self.data.segment_members.append(("key_accounts", code))
        for customer in self.data.customers:
            if customer["industry"] == "technology" and self.rng.random() < 0.15:
                self.data.segment_members.append(("pilot_program", customer["code"]))
        for code, tag in self.data.tags:
            if tag == "trade_show":
                self.data.segment_members.append(("trade_show_leads", code))


def generate_dataset(customers: int = 5000, seed: int = 42, as_of: datetime | None = None, employees: int = 40) -> Dataset:
    """The demo rows; a pure function of its arguments."""
    if customers < 0:
        raise UserError("the number of customers cannot be negative", field="customers")
    generator = _Generator(seed, as_of or default_as_of())
    generator.employees(employees)
    generator.teams()
    for index in range(customers):
        generator.customer(index)
    generator.segments()
    return generator.data
