"""The worked example of docs/sql-compilation.md ('Packed outcome codes'), computed.

The rule file is read from the page itself, and every number the page shows (bit
positions, masks, the customer's integer in decimal and binary, the decoded team,
rule, segments and tags) is checked here, so the page cannot drift from the code.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from sqlalchemy import BigInteger, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from segmenta.dsl.parser import parse
from segmenta.dsl.sql_compiler import BitPosition, DecidingRule, compile_packed
from segmenta.storage.models import Customer
from segmenta.storage.rule_fields import CustomerFields
from tests.dsl.test_sql_compiler import Person, insert_people

PAGE = Path(__file__).parents[2] / "docs" / "sql-compilation.md"
AS_OF = datetime(2026, 3, 1, 12, 0)


def worked_example() -> tuple[str, str]:
    """The example's section of the page, and its rule file."""
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("### Worked example") :]
    section = section[: section.index("\nCost, for")]
    rules = re.search(r"```segmenta\n(.*?)```", section, re.DOTALL)
    assert rules is not None
    return section, rules.group(1)


def unsettled(decision: DecidingRule | None) -> ColumnElement[int]:
    """The run's `extra` bit for a customer with no team yet: always 1 (unsettled)."""
    return literal(1, BigInteger)


async def test_the_worked_example_of_the_packed_layout(session: AsyncSession) -> None:
    section, source = worked_example()
    rule_file, diagnostics = parse(source)
    assert not diagnostics
    packed = compile_packed(rule_file, CustomerFields(), as_of=AS_OF, extra=unsettled, extra_bits=1)

    assert packed.decisions == (
        DecidingRule("senior", "vip"),
        DecidingRule("east_desk", "east"),
        DecidingRule("general", "line 5"),
    )
    assert (packed.extra_bits, packed.decision_bits) == (1, 2)
    assert packed.segments == {"big": BitPosition(0, 8)}
    assert packed.tags == {"vip": BitPosition(0, 16), "spender": BitPosition(0, 32), "unrouted": BitPosition(0, 64)}
    assert len(packed.codes) == 1
    for row in ("| 3 | segment `big` | mask 8 |", "| 4 | tag `vip` | mask 16 |", "| 5 | tag `spender` | mask 32 |",
                "| 6 | tag `unrouted` | mask 64 |"):
        assert row in section

    ids = await insert_people(session, [Person("west", {"region": "west", "total_spent": 5000.0})])
    code = (await session.execute(select(*packed.codes).where(Customer.id == ids["west"]))).scalar_one()
    assert (code, bin(code)) == (111, "0b1101111")
    assert "codes[0] = 111 = 0b1101111" in section
    assert code == 1 + (3 << 1) + 8 + 32 + 64

    assert packed.extra(code) == 1
    assert packed.decision(code) == 3
    assert packed.decision_of(3) == DecidingRule("general", "line 5")
    assert [key for key, position in packed.segments.items() if packed.has([code], position)] == ["big"]
    assert [key for key, position in packed.tags.items() if packed.has([code], position)] == ["spender", "unrouted"]
