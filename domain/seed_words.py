"""The words and weights the demo dataset (domain/seed_generator.py) draws from: industries, regions
and cities, names, company words, streets, comments and interaction summaries, in English and
Chinese.  The words of the data model itself (sizes, levels, feedback and interaction kinds) come
from their vocabularies, not from here.
"""

from __future__ import annotations

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
