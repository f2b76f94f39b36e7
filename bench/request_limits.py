"""Request limits benchmark: what a unit of query cost takes on the served process, and how fast
the cost pass refuses the fragment fan-out.

    .venv/bin/python bench/request_limits.py [--customers 300]

1. Prepares routed demo data (`segmenta demo --no-serve`) in a temporary SQLite file, serves it
   with `segmenta serve` (cost and depth limits raised so every query below runs) and times
   queries of nested customer pages, printing each one's cost, seconds and µs per unit of cost:
   the figures behind the default SEGMENTA_MAX_QUERY_COST (docs/security.md, Request limits).
2. Times the cost pass (schema/cost.py) on the 2 KB document whose 40 fragments each spread the
   one below twice, on GraphiQL's introspection query and on 200 fragments spread side by side,
   and graphql-core's validation of the last (why SEGMENTA_MAX_DUPLICATE_FIELDS exists).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from graphql import get_introspection_query, parse, validate  # noqa: E402

from segmenta.schema import schema  # noqa: E402
from segmenta.schema.cost import measure_operation  # noqa: E402
from tests.live_server import LiveServer, segmenta  # noqa: E402

RAISED = {"SEGMENTA_MAX_QUERY_COST": "1000000000", "SEGMENTA_MAX_QUERY_DEPTH": "20", "SEGMENTA_REQUEST_TIMEOUT": "600"}


def nested_customers(levels: int, first: int) -> str:
    selection = "code"
    for level in range(levels):
        inner = f"team {{ {selection} }}" if level else selection
        selection = f"customers(first: {first}) {{ nodes {{ code {inner} }} }}"
    return "{ " + selection + " }"


WIDE_PAGE = (
    "{ customers(first: 100) { totalCount edges { cursor node { id code name industry size region lifecycle "
    "createdAt tags manualTags ruleTags team { key name } manager { name email } segments { key name } } } } }"
)


def fan_out(levels: int = 40) -> str:
    lines = ["fragment F0 on Query { stats { customerCount } }"]
    lines += [f"fragment F{index} on Query {{ ...F{index - 1} ...F{index - 1} }}" for index in range(1, levels + 1)]
    return "\n".join(lines) + f"\n{{ ...F{levels} }}"


def cost_of(document: str) -> int:
    return measure_operation(schema._schema, parse(document)).cost


def time_queries(customers: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'live.db'}"
        segmenta("demo", "--no-serve", "--customers", str(customers), "--database-url", url)
        server = LiveServer.start(Path(folder), env=RAISED, roles=("viewer",), database_url=url, seed=False)
        try:
            queries = {
                "page of 100, 15 fields + team, manager, segments": WIDE_PAGE,
                "2 nested pages of 100": nested_customers(2, 100),
                "3 nested pages of 10": nested_customers(3, 10),
                "3 nested pages of 20": nested_customers(3, 20),
                "3 nested pages of 30": nested_customers(3, 30),
            }
            print(f"{'query':<50} {'cost':>9} {'seconds':>8} {'µs/cost':>8}")
            for name, document in queries.items():
                cost = cost_of(document)
                started = time.perf_counter()
                status, body = server.query(document, role="viewer")
                elapsed = time.perf_counter() - started
                assert status == 200 and "errors" not in body, body
                print(f"{name:<50} {cost:>9} {elapsed:>8.2f} {elapsed / cost * 1e6:>8.1f}")
        finally:
            server.stop()


def side_by_side(count: int) -> str:
    """`count` fragments that each select `stats`, all spread at the root."""
    fragments = "\n".join(f"fragment F{index} on Query {{ stats {{ customerCount }} }}" for index in range(count))
    return fragments + "\n{ " + " ".join(f"...F{index}" for index in range(count)) + " }"


def time_cost_pass() -> None:
    documents = {
        "fan-out of 40 fragments": fan_out(),
        "introspection": get_introspection_query(),
        "200 fragments side by side": side_by_side(200),
    }
    for name, document in documents.items():
        parsed = parse(document)
        started = time.perf_counter()
        measured = measure_operation(schema._schema, parsed)
        elapsed = time.perf_counter() - started
        print(f"cost pass, {name} ({len(document)} bytes): {elapsed * 1000:.1f} ms, {measured}")
    parsed = parse(side_by_side(200))
    started = time.perf_counter()
    validate(schema._schema, parsed)
    print(f"graphql-core validation, 200 fragments side by side: {time.perf_counter() - started:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300)
    arguments = parser.parse_args()
    time_queries(arguments.customers)
    time_cost_pass()


if __name__ == "__main__":
    main()
