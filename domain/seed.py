"""The demo dataset: a realistic, deterministic customer base for trying Segmenta.

`generate_dataset` is pure (same count, seed and `as_of` give the same rows);
`seed_database` writes it with bulk Core inserts in the caller's transaction and
then recomputes the maintained metric columns in one set-based pass, so 5,000
customers with their purchase history take seconds, not minutes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import exists, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from segmenta.domain.customers.metrics import recompute_metrics
from segmenta.domain.customers.vocabulary import FEEDBACK_KINDS, FEEDBACK_STATUSES, INTERACTION_KINDS
from segmenta.domain.errors import Conflict, UserError
from segmenta.domain.staff.vocabulary import EMPLOYEE_LEVELS
from segmenta.dsl.fields import SIZES
from segmenta.storage.models import (
    ApiToken,
    Base,
    Customer,
    CustomerAttribute,
    CustomerTag,
    Employee,
    Feedback,
    Interaction,
    Purchase,
    SchedulerLock,
    Segment,
    SegmentMember,
    Team,
    TeamMember,
)

SAMPLE_RULES_PATH = Path(__file__).with_name("sample_rules.seg")

# (step name, rows done, rows in the step) — lets a CLI draw a progress bar.
ProgressCallback = Callable[[str, int, int], None]

INSERT_BATCH = 2000

INDUSTRIES = (
    "finance",
    "insurance",
    "retail",
    "manufacturing",
    "technology",
    "healthcare",
    "education",
    "logistics",
    "energy",
    "hospitality",
)
INDUSTRY_WEIGHTS = (12, 7, 16, 14, 15, 9, 7, 9, 5, 6)

# Region -> (country, cities).  English regions are US cities, Chinese ones Chinese cities.
REGIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "east": ("United States", ("New York", "Boston", "Philadelphia", "Washington")),
    "west": ("United States", ("San Francisco", "Los Angeles", "Seattle", "Denver")),
    "north": ("United States", ("Chicago", "Minneapolis", "Detroit", "Milwaukee")),
    "south": ("United States", ("Houston", "Atlanta", "Miami", "Dallas")),
    "华东": ("中国", ("上海", "杭州", "南京", "苏州", "宁波")),
    "华北": ("中国", ("北京", "天津", "石家庄", "太原")),
    "华南": ("中国", ("广州", "深圳", "南宁", "海口")),
}
CHINESE_REGIONS = ("华东", "华北", "华南")
REGION_WEIGHTS = {"east": 16, "west": 13, "north": 11, "south": 12, "华东": 20, "华北": 15, "华南": 13}

SIZE_WEIGHTS = (45, 30, 18, 7)
CHANNELS = ("online", "store", "partner", "direct", "phone", "wechat")
GENDERS = ("female", "male")
OCCUPATIONS = (
    "engineer",
    "teacher",
    "doctor",
    "designer",
    "accountant",
    "lawyer",
    "nurse",
    "student",
    "entrepreneur",
    "consultant",
    "retired",
)
MANUAL_TAGS = (
    "newsletter",
    "trade_show",
    "referral",
    "needs_integration",
    "key_contact",
    "early_adopter",
    "重点客户",
    "price_sensitive",
)
TIERS = ("bronze", "silver", "gold", "platinum")
SOURCES = ("web", "referral", "event", "cold_call", "partner", "wechat")

CATEGORIES: dict[str, tuple[tuple[str, ...], float]] = {
    # category -> (products, typical amount)
    "software": (("CRM Suite", "Analytics Pro", "Office Cloud", "Security Shield"), 4000.0),
    "hardware": (("Server Rack", "Laptop Fleet", "Network Switch", "POS Terminal"), 6000.0),
    "services": (("Installation", "Data Migration", "Custom Integration"), 3000.0),
    "consulting": (("Strategy Workshop", "Process Audit", "Digital Roadmap"), 8000.0),
    "training": (("Onboarding Course", "Admin Certification", "Team Training"), 1200.0),
    "support": (("Standard Support", "Premium Support", "24x7 Support"), 1500.0),
    "subscription": (("Basic Plan", "Business Plan", "Enterprise Plan"), 900.0),
}
SIZE_SPEND_FACTOR = {"small": 0.35, "medium": 1.0, "large": 2.6, "enterprise": 6.0, None: 0.12}

ENGLISH_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Susan", "Richard", "Jessica", "Joseph", "Sarah", "Thomas", "Karen",
    "Daniel", "Emily", "Matthew", "Olivia", "Anthony", "Sophia", "Mark", "Grace", "Steven", "Chloe",
)
ENGLISH_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson",
    "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker",
)
CHINESE_SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林")
CHINESE_GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "晓东", "嘉怡", "子轩", "雨桐", "浩然", "思远")
PINYIN_SURNAMES = {
    "王": "wang", "李": "li", "张": "zhang", "刘": "liu", "陈": "chen", "杨": "yang", "黄": "huang",
    "赵": "zhao", "吴": "wu", "周": "zhou", "徐": "xu", "孙": "sun", "马": "ma", "朱": "zhu",
    "胡": "hu", "郭": "guo", "何": "he", "林": "lin",
}
ENGLISH_COMPANY_WORDS = (
    "Acme", "Summit", "Blue River", "Northwind", "Evergreen", "Pioneer", "Silverline", "Brightway",
    "Cobalt", "Harbor", "Keystone", "Redwood", "Granite", "Lakeside", "Meridian", "Orion", "Vertex",
)
ENGLISH_INDUSTRY_WORDS = {
    "finance": "Capital", "insurance": "Assurance", "retail": "Stores", "manufacturing": "Industries",
    "technology": "Systems", "healthcare": "Health", "education": "Learning", "logistics": "Freight",
    "energy": "Energy", "hospitality": "Hotels",
}
ENGLISH_SUFFIXES = ("Inc.", "LLC", "Ltd.", "Group", "Co.", "Corp.")
CHINESE_COMPANY_WORDS = ("华信", "远航", "恒通", "鼎盛", "蓝海", "中联", "新世纪", "东方", "金桥", "瑞丰", "天成", "宏达", "海纳", "长城", "嘉禾")
CHINESE_INDUSTRY_WORDS = {
    "finance": "金融", "insurance": "保险", "retail": "商贸", "manufacturing": "制造", "technology": "科技",
    "healthcare": "医疗", "education": "教育", "logistics": "物流", "energy": "能源", "hospitality": "酒店",
}
ENGLISH_STREETS = ("Main St", "Oak Ave", "Maple Dr", "Park Blvd", "Market St", "Lake Rd", "Elm St")
CHINESE_STREETS = ("人民路", "中山路", "解放路", "建设路", "南京路", "长安街", "滨江大道")

COMPLAINT_COMMENTS = (
    "Delivery arrived late", "Invoice amount was wrong", "Support did not call back",
    "Product stopped working after a week", "发票信息有误", "售后响应太慢", "安装人员迟到",
)
SUGGESTION_COMMENTS = ("Add a mobile app", "Offer monthly billing", "希望增加培训课程", "More reporting options")
PRAISE_COMMENTS = ("Great onboarding", "Very helpful account manager", "服务非常专业", "Fast delivery")
SURVEY_COMMENTS = ("", "Overall fine", "Could be better", "满意", "Excellent service")
INTERACTION_WEIGHTS = (10, 30, 30, 15, 15)
INTERACTION_SUMMARIES = {
    "visit": ("On-site visit", "Quarterly business review on site", "上门拜访"),
    "call": ("Follow-up call", "Renewal call", "电话回访"),
    "email": ("Sent proposal", "Answered a billing question", "发送报价"),
    "message": ("Chat about delivery", "微信沟通需求"),
    "meeting": ("Product demo", "Contract negotiation", "需求调研会议"),
}


@dataclass(frozen=True)
class TeamSpec:
    key: str
    name: str
    description: str
    kind: str
    strategy: str
    monthly_target: float
    # Which employees join: predicate on the generated employee row.
    members: Callable[[dict[str, Any]], bool]


def _covers(row: dict[str, Any], regions: Sequence[str]) -> bool:
    return any(region in row["regions"] for region in regions)


TEAMS: tuple[TeamSpec, ...] = (
    TeamSpec("senior_sales", "Senior Sales", "Large and enterprise accounts with high value", "professional",
             "least_loaded", 900_000.0, lambda e: e["level"] in ("senior", "lead", "supervisor") and e["index"] % 3 == 0),
    TeamSpec("technical_support", "Technical Support", "Integration-heavy technology and manufacturing accounts",
             "professional", "least_loaded", 300_000.0, lambda e: bool({"technology", "manufacturing"} & set(e["specialties"]))),
    TeamSpec("standard_service", "Standard Service", "Small and medium customers", "general", "round_robin",
             400_000.0, lambda e: e["level"] in ("junior", "senior") and e["index"] % 2 == 1),
    TeamSpec("east_region", "East / 华东 Regional", "Regional team for east and 华东", "regional", "round_robin",
             500_000.0, lambda e: _covers(e, ("east", "华东"))),
    TeamSpec("north_region", "North / 华北 Regional", "Regional team for north and 华北", "regional", "round_robin",
             350_000.0, lambda e: _covers(e, ("north", "华北"))),
    TeamSpec("customer_success", "Customer Success", "Unhappy and at-risk customers", "lifecycle", "least_loaded",
             200_000.0, lambda e: e["index"] % 5 == 2),
    TeamSpec("low_value_upgrade", "Low-Value Upgrade", "Customers with buying power who spend little",
             "lifecycle", "round_robin", 150_000.0, lambda e: e["index"] % 6 == 4),
    TeamSpec("general_pool", "General Pool", "Everyone no other rule took", "general", "least_loaded",
             250_000.0, lambda e: e["level"] == "junior" or e["index"] % 4 == 0),
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


@dataclass(frozen=True)
class SeedSummary:
    customers: int
    purchases: int
    feedback: int
    interactions: int
    employees: int
    teams: int
    segments: int


def default_as_of() -> datetime:
    """Midnight UTC today: seeding twice on one day gives identical data."""
    return datetime.combine(datetime.now(UTC).date(), time())


def sample_rules() -> str:
    """The sample rule file routing the demo customers to the demo teams."""
    return SAMPLE_RULES_PATH.read_text(encoding="utf-8")


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
                    "monthly_target": float({"junior": 40_000, "senior": 80_000, "lead": 120_000, "supervisor": 150_000}[level]),
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
                amount = round(rng.lognormvariate(math.log(typical * spend_factor), 0.7), 2)
                self.data.purchases.append(
                    {
                        "customer_code": code,
                        "amount": max(amount, 9.9),
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


# Credentials and scheduler bookkeeping are not business data: a database holding only
# those (say, after `segmenta token create`) still counts as empty.
NOT_DATA_TABLES = frozenset({ApiToken.__tablename__, SchedulerLock.__tablename__})


async def database_is_empty(session: AsyncSession) -> bool:
    """True when no table holding business data has a row."""
    for table in Base.metadata.sorted_tables:
        if table.name in NOT_DATA_TABLES:
            continue
        if (await session.execute(select(exists().select_from(table)))).scalar():
            return False
    return True


async def wipe_database(session: AsyncSession) -> None:
    """Delete every row of every model table, children first."""
    for table in reversed(Base.metadata.sorted_tables):
        await session.execute(table.delete())


async def _bulk_insert(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]], step: str, progress: ProgressCallback | None
) -> None:
    for start in range(0, len(rows), INSERT_BATCH):
        batch = rows[start : start + INSERT_BATCH]
        await session.execute(insert(table), batch)
        if progress is not None:
            progress(step, start + len(batch), len(rows))
    if not rows and progress is not None:
        progress(step, 0, 0)


async def _ids(session: AsyncSession, key_column: Any, id_column: Any) -> dict[Any, int]:
    return {key: ident for key, ident in (await session.execute(select(key_column, id_column))).all()}


async def insert_dataset(session: AsyncSession, data: Dataset, progress: ProgressCallback | None = None) -> None:
    """Bulk-insert a generated dataset into an empty database (caller's transaction)."""
    employees = [{k: v for k, v in row.items() if k != "index"} for row in data.employees]
    await _bulk_insert(session, Employee.__table__, employees, "employees", progress)
    await _bulk_insert(session, Team.__table__, data.teams, "teams", progress)
    employee_ids = await _ids(session, Employee.email, Employee.id)
    team_ids = await _ids(session, Team.key, Team.id)
    members = [
        {"team_id": team_ids[team], "employee_id": employee_ids[email], "role": role}
        for team, email, role in data.team_members
    ]
    await _bulk_insert(session, TeamMember.__table__, members, "team members", progress)

    await _bulk_insert(session, Customer.__table__, data.customers, "customers", progress)
    customer_ids = await _ids(session, Customer.code, Customer.id)
    tags = [{"customer_id": customer_ids[code], "tag": tag, "source": "manual"} for code, tag in data.tags]
    await _bulk_insert(session, CustomerTag.__table__, tags, "tags", progress)
    attributes = [
        {"customer_id": customer_ids[code], "key": key, "text_value": text, "number_value": number}
        for code, key, text, number in data.attributes
    ]
    await _bulk_insert(session, CustomerAttribute.__table__, attributes, "attributes", progress)

    def resolve(row: dict[str, Any]) -> dict[str, Any]:
        resolved = {k: v for k, v in row.items() if k not in ("customer_code", "employee_email")}
        resolved["customer_id"] = customer_ids[row["customer_code"]]
        if "employee_email" in row:
            email = row["employee_email"]
            resolved["employee_id"] = employee_ids[email] if email is not None else None
        return resolved

    await _bulk_insert(session, Purchase.__table__, [resolve(r) for r in data.purchases], "purchases", progress)
    await _bulk_insert(session, Feedback.__table__, [resolve(r) for r in data.feedback], "feedback", progress)
    await _bulk_insert(session, Interaction.__table__, [resolve(r) for r in data.interactions], "interactions", progress)

    await _bulk_insert(session, Segment.__table__, data.segments, "segments", progress)
    segment_ids = await _ids(session, Segment.key, Segment.id)
    segment_members = [
        {"segment_id": segment_ids[key], "customer_id": customer_ids[code]} for key, code in data.segment_members
    ]
    await _bulk_insert(session, SegmentMember.__table__, segment_members, "segment members", progress)


async def analyze_tables(session: AsyncSession) -> None:
    """Refresh the planner statistics after a bulk load.

    Without them SQLite picks the low-selectivity `feedback.kind` index for the
    per-customer subqueries of the metric recomputation, which then takes minutes.
    """
    preparer = session.get_bind().dialect.identifier_preparer
    for table in Base.metadata.sorted_tables:
        await session.execute(text(f"ANALYZE {preparer.format_table(table)}"))


async def seed_database(
    session: AsyncSession,
    *,
    customers: int = 5000,
    seed: int = 42,
    as_of: datetime | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
) -> SeedSummary:
    """Fill an empty database with the demo dataset and compute its metrics (caller's transaction).

    A non-empty database is refused with Conflict unless `force`, which wipes it first.
    """
    if not await database_is_empty(session):
        if not force:
            raise Conflict("the database already holds data; use --force to wipe it and seed again")
        await wipe_database(session)
    data = generate_dataset(customers, seed, as_of)
    await insert_dataset(session, data, progress)
    await analyze_tables(session)
    if progress is not None:
        progress("metrics", 0, 1)
    await recompute_metrics(session)
    if progress is not None:
        progress("metrics", 1, 1)
    return SeedSummary(
        customers=len(data.customers),
        purchases=len(data.purchases),
        feedback=len(data.feedback),
        interactions=len(data.interactions),
        employees=len(data.employees),
        teams=len(data.teams),
        segments=len(data.segments),
    )
