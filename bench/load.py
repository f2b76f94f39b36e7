"""Load: many concurrent clients against real `segmenta serve` processes, then an audit of the writes.

    .venv/bin/python bench/load.py [--clients 50] [--duration 60] [--customers 2000]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres] [--servers N]
        [--apply-every 20] [--keep]

Prepares a database with `segmenta seed --customers N` and `segmenta token create --role admin`
(SQLite: a file in a new temporary directory; PostgreSQL: a new database `segmenta_load_<random>`
on the server of `--database-url`, dropped afterwards unless `--keep`), starts `--servers`
`segmenta serve` processes on it (default 1 on SQLite, 2 on PostgreSQL: two servers sharing one
database) on 127.0.0.1, saves and activates a small ruleset (so every write is also routed in real
time), then runs `--clients` concurrent clients for `--duration` seconds, each on one server in
turn, mixing:

- `list`: pages of customers (the first, sometimes the next ones) with a `where` condition and an
  `orderBy`, with team, manager, metrics and segments;
- `create`: createCustomer with a code unique to the request;
- `update`: updateCustomer of a random existing customer (city, income);
- `purchase`: recordPurchase with a product name unique to the request;
- `apply`: one extra client applies the active ruleset at the start and every `--apply-every` s.

Every answer is classified: `ok`; a deliberate limit (BUSY, TIMEOUT: retryable refusals under
load); or a failure (any other error code, HTTP 5xx, a dropped connection, a client timeout).
Afterwards the servers are stopped and the database is audited: every created customer whose
request succeeded exists exactly once, every successful purchase is stored exactly once, and a
refused write left nothing behind.  Prints requests, outcomes and p50/p99 latency per kind.

Traffic goes only to 127.0.0.1 (the servers are started here, and a database URL naming another
host is refused); the run stops by itself after `--duration` seconds plus the in-flight requests.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from segmenta.storage.engine import create_engine, normalize_url  # noqa: E402
from segmenta.storage.models import Customer, EvaluationRun, Purchase  # noqa: E402
from tests.live_server import LiveServer, segmenta  # noqa: E402 — the served process, as the tests start it

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
RETRYABLE = {"BUSY", "TIMEOUT"}
KINDS = ("list", "create", "update", "purchase", "apply")
WEIGHTS = {"list": 45, "create": 10, "update": 20, "purchase": 25}
RULES = """\
big: size >= large -> team senior_sales, tag key_account
east: region in (east, 华东) -> team east_region
north: region in (north, 华北) -> team north_region
otherwise -> team general_pool
"""
WHERES = [None, "total_spent > 1000", "region = east and size >= medium", "purchase_count >= 3", "tags contains key_account"]
ORDERS = ["NAME_ASC", "TOTAL_SPENT_DESC", "PURCHASE_COUNT_DESC", "CREATED_AT_DESC", "CODE_ASC"]
REGIONS = ["east", "west", "north", "south", "华东"]
SIZES = ["SMALL", "MEDIUM", "LARGE", "ENTERPRISE"]

LIST = """query($where: String, $order: CustomerOrder!, $after: String) {
  customers(first: 20, where: $where, orderBy: $order, after: $after) {
    totalCount
    nodes { id code name metrics { totalSpent purchaseCount } team { key } manager { name } segments { key } }
    pageInfo { hasNextPage endCursor }
  }
}"""
CREATE = """mutation($input: CustomerInput!) {
  createCustomer(input: $input) { customer { id team { key } } userErrors { field code message } }
}"""
UPDATE = """mutation($id: ID!, $input: CustomerPatch!) {
  updateCustomer(id: $id, input: $input) { customer { id } userErrors { field code message } }
}"""
PURCHASE = """mutation($input: PurchaseInput!) {
  recordPurchase(input: $input) { purchase { id } userErrors { field code message } }
}"""
SAVE = """mutation($source: String!) {
  saveRuleset(name: "load", source: $source) { ruleset { id hasErrors } userErrors { code message } }
}"""
ACTIVATE = "mutation($id: ID!) { activateRuleset(id: $id) { ruleset { id status } userErrors { code message } } }"
RUN = "query($id: ID!) { evaluationRun(id: $id) { status error } }"
APPLY = "mutation($id: ID!) { applyRuleset(id: $id) { run { id status error } userErrors { code message } } }"
CUSTOMER_PAGE = """query($after: String) {
  customers(first: 100, after: $after, orderBy: CODE_ASC) { nodes { id } pageInfo { hasNextPage endCursor } }
}"""


# ---------------------------------------------------------------------------------------------
# The database and the servers


@contextmanager
def prepared_database(arguments: argparse.Namespace) -> Iterator[str]:
    """The URL of a new database for this run (removed afterwards unless --keep)."""
    if not arguments.database_url:
        with tempfile.TemporaryDirectory(prefix="segmenta-load-") as directory:
            yield f"sqlite+aiosqlite:///{Path(directory) / 'load.db'}"
        return
    base = make_url(normalize_url(arguments.database_url))
    if base.get_backend_name() != "postgresql":
        sys.exit("--database-url: a PostgreSQL URL (SQLite runs on a temporary file without it)")
    if (base.host or "localhost") not in LOOPBACK:
        sys.exit(f"--database-url: this benchmark only talks to 127.0.0.1, not {base.host}")
    name = f"segmenta_load_{uuid.uuid4().hex[:10]}"
    asyncio.run(_postgres_admin(base.render_as_string(hide_password=False), f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        if arguments.keep:
            print(f"kept database {name}")
        else:
            asyncio.run(_postgres_admin(base.render_as_string(hide_password=False), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _postgres_admin(url: str, statement: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def start_servers(database_url: str, count: int, directory: Path) -> list[LiveServer]:
    servers: list[LiveServer] = []
    try:
        for _ in range(count):
            servers.append(LiveServer.serve(database_url, directory, timeout=120))
    except RuntimeError as error:
        stop_servers(servers)
        sys.exit(str(error))
    return servers


def stop_servers(servers: list[LiveServer]) -> None:
    for server in servers:
        server.stop()


# ---------------------------------------------------------------------------------------------
# The clients


@dataclass
class Outcome:
    kind: str
    seconds: float
    result: str  # "ok", an error code, "HTTP 5xx", or an exception name


@dataclass
class Load:
    token: str
    servers: list[LiveServer]
    customer_ids: list[str]
    deadline: float
    outcomes: list[Outcome] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)  # customer code -> result
    purchases: dict[str, str] = field(default_factory=dict)  # product -> result
    apply_runs: list[tuple[str | None, str]] = field(default_factory=list)  # (run id, final status or failure)


def classify(response: httpx.Response, root: str) -> str:
    """"ok", or what went wrong: the first error code, a userError code, or the HTTP status."""
    if response.status_code >= 500:
        return f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code} (not JSON)"
    errors = body.get("errors") or []
    if errors:
        return str((errors[0].get("extensions") or {}).get("code") or "NO_CODE")
    payload = (body.get("data") or {}).get(root)
    user_errors = payload.get("userErrors") if isinstance(payload, dict) else None
    if user_errors:
        return f"userError {user_errors[0].get('code')}"
    return "ok" if response.status_code == 200 else f"HTTP {response.status_code}"


async def call(client: httpx.AsyncClient, load: Load, server: LiveServer, kind: str, root: str,
               query: str, variables: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    started = time.perf_counter()
    body: dict[str, Any] = {}
    try:
        response = await client.post(
            f"{server.url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {load.token}"},
        )
        result = classify(response, root)
        if result == "ok":
            body = response.json()["data"][root]
    except httpx.HTTPError as error:
        result = type(error).__name__
    load.outcomes.append(Outcome(kind, time.perf_counter() - started, result))
    return result, body


async def client_loop(number: int, client: httpx.AsyncClient, load: Load) -> None:
    server = load.servers[number % len(load.servers)]
    rng = random.Random(number)
    kinds, weights = zip(*WEIGHTS.items(), strict=True)
    sequence = 0
    while time.monotonic() < load.deadline:
        sequence += 1
        kind = rng.choices(kinds, weights)[0]
        if kind == "list":
            # A first page, and as often as not the pages after it (keyset cursors), up to three.
            variables = {"where": rng.choice(WHERES), "order": rng.choice(ORDERS), "after": None}
            for _ in range(3):
                result, body = await call(client, load, server, kind, "customers", LIST, variables)
                if result != "ok" or not body["pageInfo"]["hasNextPage"] or rng.random() < 0.5:
                    break
                variables["after"] = body["pageInfo"]["endCursor"]
        elif kind == "create":
            code = f"LOAD-{number}-{sequence}"
            result, body = await call(client, load, server, kind, "createCustomer", CREATE, {"input": {
                "code": code, "name": f"Load customer {number}-{sequence}", "region": rng.choice(REGIONS),
                "size": rng.choice(SIZES), "industry": "retail"}})
            load.created[code] = result
            if result == "ok":
                load.customer_ids.append(body["customer"]["id"])
        elif kind == "update":
            await call(client, load, server, kind, "updateCustomer", UPDATE, {
                "id": rng.choice(load.customer_ids),
                "input": {"city": f"City {rng.randrange(100)}", "income": float(rng.randrange(10_000, 200_000))}})
        else:
            product = f"load-{number}-{sequence}"
            result, _ = await call(client, load, server, kind, "recordPurchase", PURCHASE, {"input": {
                "customerId": rng.choice(load.customer_ids), "amount": round(rng.uniform(5, 5000), 2),
                "product": product, "category": "load"}})
            load.purchases[product] = result


async def apply_loop(client: httpx.AsyncClient, load: Load, ruleset_id: str, every: float) -> None:
    rounds = 0
    while time.monotonic() < load.deadline:
        server = load.servers[rounds % len(load.servers)]
        rounds += 1
        result, body = await call(client, load, server, "apply", "applyRuleset", APPLY, {"id": ruleset_id})
        run = body.get("run") if result == "ok" else None
        if run is None:
            load.apply_runs.append((None, result))
        else:
            load.apply_runs.append((run["id"], f"{run['status']}{' ' + run['error'] if run.get('error') else ''}"))
        await asyncio.sleep(max(0.0, min(every, load.deadline - time.monotonic())))


async def graphql(client: httpx.AsyncClient, server: LiveServer, token: str, query: str, variables: dict[str, Any]) -> Any:
    response = await client.post(f"{server.url}/graphql", json={"query": query, "variables": variables},
                                 headers={"Authorization": f"Bearer {token}"})
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        sys.exit(f"setup request failed: {response.status_code} {body}")
    return body["data"]


async def run_load(arguments: argparse.Namespace, servers: list[LiveServer], token: str) -> Load:
    timeout = httpx.Timeout(arguments.request_timeout)
    limits = httpx.Limits(max_connections=arguments.clients + 1, max_keepalive_connections=arguments.clients + 1)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        saved = (await graphql(client, servers[0], token, SAVE, {"source": RULES}))["saveRuleset"]
        if saved["userErrors"] or saved["ruleset"]["hasErrors"]:
            sys.exit(f"the load ruleset does not compile: {saved}")
        ruleset_id = saved["ruleset"]["id"]
        await graphql(client, servers[0], token, ACTIVATE, {"id": ruleset_id})
        ids: list[str] = []
        after = None
        while len(ids) < 2000:
            page = (await graphql(client, servers[0], token, CUSTOMER_PAGE, {"after": after}))["customers"]
            ids.extend(node["id"] for node in page["nodes"])
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        if not ids:
            sys.exit("no customers to work on: seed with --customers ≥ 1")
        load = Load(token=token, servers=servers, customer_ids=ids, deadline=time.monotonic() + arguments.duration)
        tasks = [client_loop(number, client, load) for number in range(arguments.clients)]
        tasks.append(apply_loop(client, load, ruleset_id, arguments.apply_every))
        await asyncio.gather(*tasks)
        await finish_runs(client, load)
    return load


async def finish_runs(client: httpx.AsyncClient, load: Load, patience: float = 300) -> None:
    """Waits (bounded) for applies answered RUNNING, so stopping the servers does not interrupt them."""
    deadline = time.monotonic() + patience
    for index, (run_id, status) in enumerate(load.apply_runs):
        while status == "RUNNING" and run_id and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            run = (await graphql(client, load.servers[0], load.token, RUN, {"id": run_id}))["evaluationRun"]
            status = f"{run['status']}{' ' + run['error'] if run.get('error') else ''}"
        load.apply_runs[index] = (run_id, status)


# ---------------------------------------------------------------------------------------------
# The audit and the report


@dataclass
class Audit:
    created: collections.Counter[str]  # code -> rows
    purchases: collections.Counter[str]  # product -> rows
    runs: collections.Counter[str]  # status -> runs
    drifted: set[int]  # customers whose purchase_count is not their number of purchases


def drifted_customers() -> Any:
    """Customers whose stored purchase_count differs from their purchases: a lost metric update."""
    stored = select(func.count()).where(Purchase.customer_id == Customer.id).scalar_subquery()
    return select(Customer.id).where(Customer.purchase_count != stored)


async def drift(database_url: str) -> set[int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return set((await connection.scalars(drifted_customers())).all())
    finally:
        await engine.dispose()


async def audit(database_url: str) -> Audit:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            drifted = set((await connection.scalars(drifted_customers())).all())
            created = collections.Counter(dict((await connection.execute(
                select(Customer.code, func.count()).where(Customer.code.like("LOAD-%")).group_by(Customer.code))).all()))
            purchases = collections.Counter(dict((await connection.execute(
                select(Purchase.product, func.count()).where(Purchase.category == "load").group_by(Purchase.product))).all()))
            runs = collections.Counter(dict((await connection.execute(
                select(EvaluationRun.status, func.count()).where(EvaluationRun.mode == "apply")
                .group_by(EvaluationRun.status))).all()))
    finally:
        await engine.dispose()
    return Audit(created, purchases, runs, drifted)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def report(load: Load, found: Audit, drifted_before: set[int], duration: float) -> bool:
    """Prints the summary; True when nothing failed and every write is accounted for."""
    by_kind: dict[str, list[Outcome]] = collections.defaultdict(list)
    for outcome in load.outcomes:
        by_kind[outcome.kind].append(outcome)
    print(f"\n{'kind':<9}{'requests':>9}{'ok':>8}{'limits':>8}{'failed':>8}{'per s':>8}{'p50 ms':>9}{'p99 ms':>9}  outcomes other than ok")
    failures = 0
    for kind in KINDS:
        outcomes = by_kind.get(kind, [])
        results = collections.Counter(outcome.result for outcome in outcomes)
        limited = sum(count for result, count in results.items() if result in RETRYABLE)
        failed = sum(count for result, count in results.items() if result != "ok" and result not in RETRYABLE)
        failures += failed
        times = [outcome.seconds * 1000 for outcome in outcomes]
        others = ", ".join(f"{result} {count}" for result, count in results.most_common() if result != "ok")
        print(f"{kind:<9}{len(outcomes):>9}{results['ok']:>8}{limited:>8}{failed:>8}{len(outcomes) / duration:>8.1f}"
              f"{percentile(times, 0.5):>9.0f}{percentile(times, 0.99):>9.0f}  {others}")
    runs = collections.Counter(status for _, status in load.apply_runs)
    print(f"apply runs, final status: {dict(runs)}; in the database: {dict(found.runs)}")

    problems = []
    for what, sent, stored in (("created customers", load.created, found.created), ("purchases", load.purchases, found.purchases)):
        succeeded = {key for key, result in sent.items() if result == "ok"}
        missing = sorted(key for key in succeeded if stored[key] == 0)
        duplicated = sorted(key for key, rows in stored.items() if rows > 1)
        ghosts = sorted(key for key in set(sent) - succeeded if stored[key] > 0)
        unknown = sorted(set(stored) - set(sent))
        print(f"{what}: {len(succeeded)} answered ok, {sum(1 for key in succeeded if stored[key] == 1)} stored exactly once; "
              f"lost {len(missing)}, duplicated {len(duplicated)}, refused but stored {len(ghosts)}, never sent {len(unknown)}")
        for label, keys in (("lost", missing), ("duplicated", duplicated), ("refused but stored", ghosts), ("never sent", unknown)):
            if keys:
                problems.append(f"{what} {label}: {keys[:5]}{' …' if len(keys) > 5 else ''}")
    drifted = sorted(found.drifted - drifted_before)
    print(f"customers whose purchase count is not their number of purchases: {len(drifted)} "
          f"(before the load: {len(drifted_before)})")
    if drifted:
        problems.append(f"purchase counts that lost an update: customers {drifted[:5]}")
    problems += [f"apply run {status}" for status in runs if status != "SUCCEEDED" and status not in RETRYABLE]
    for problem in problems:
        print(f"  {problem}")
    return failures == 0 and not problems


def logged_exceptions(log: Path) -> collections.Counter[str]:
    """The last line of every traceback in a server log (the exception), counted."""
    found: collections.Counter[str] = collections.Counter()
    in_traceback = False
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and line and not line.startswith((" ", "\t")):
            if not line.startswith(("The above exception", "During handling")):
                found[line] += 1
                in_traceback = False
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--customers", type=int, default=2000, help="customers seeded before the load (default 2000)")
    parser.add_argument("--database-url", help="a PostgreSQL server (a new database is created on it); default SQLite")
    parser.add_argument("--servers", type=int, help="segmenta serve processes on the database (default 1 SQLite, 2 PostgreSQL)")
    parser.add_argument("--apply-every", type=float, default=20.0, help="seconds between applies (default 20)")
    parser.add_argument("--request-timeout", type=float, default=60.0, help="client-side limit per request, s (default 60)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database afterwards")
    arguments = parser.parse_args()
    if arguments.clients < 1 or arguments.duration <= 0 or arguments.customers < 1 or arguments.apply_every <= 0:
        parser.error("--clients, --customers ≥ 1; --duration, --apply-every > 0")
    count = arguments.servers or (2 if arguments.database_url else 1)
    if count < 1:
        parser.error("--servers ≥ 1")

    with prepared_database(arguments) as database_url, tempfile.TemporaryDirectory(prefix="segmenta-load-logs-") as logs:
        backend = make_url(database_url).get_backend_name()
        print(f"{backend}: seeding {arguments.customers} customers …", flush=True)
        try:
            segmenta("seed", "--customers", str(arguments.customers), "--database-url", database_url, timeout=600)
            token = segmenta(
                "token", "create", "--role", "admin", "--label", "bench/load.py", "--database-url", database_url
            ).strip()
        except RuntimeError as error:
            sys.exit(str(error))
        drifted_before = asyncio.run(drift(database_url))
        servers = start_servers(database_url, count, Path(logs))
        print(f"{count} server(s), {arguments.clients} clients, {arguments.duration:g} s, apply every {arguments.apply_every:g} s",
              flush=True)
        try:
            load = asyncio.run(run_load(arguments, servers, token))
        finally:
            stop_servers(servers)
        for server in servers:
            for exception, count in logged_exceptions(server.log_path).most_common(5):
                print(f"{server.url} logged {count}x: {exception[:300]}")
        clean = report(load, asyncio.run(audit(database_url)), drifted_before, arguments.duration)
    print("\nno failures, every write accounted for" if clean else "\nFAILURES (see above)")
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
