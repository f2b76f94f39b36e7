"""API cost: `segmenta serve` against a hand-written floor on the same data, in one run.

    .venv/bin/python bench/api.py [--customers 5000] [--repeat 300] [--duration 10] [--workers N]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres] [--backends sqlite,postgresql]
        [--quick] [--sequential-only]

Prepares the demo data with `segmenta demo --no-serve --customers N` (SQLite: a file in a new
temporary directory; PostgreSQL: a new database `segmenta_api_<random>` on the server of
`--database-url`, dropped afterwards) and uses the admin token it prints.  Then starts, on that
database, the real `segmenta serve` and the **floor**: a minimal Starlette app under uvicorn,
written below, that answers the same HTTP requests (POST /graphql, same JSON body, same JSON
answer) with plain SQL (`sqlite3` or `asyncpg`) and stdlib `json`.  Three requests:

- `one`: one customer by ID: name, team key, total spent;
- `page`: the first page of 100 customers (by name) with team, manager, segments, tags and
  four metrics (totalSpent, purchaseCount, avgSatisfaction, daysSincePurchase);
- `purchase`: the `recordPurchase` mutation for a customer, answering the purchase and the
  customer's new purchase count and total.

Before measuring, the bench checks that both answer the same data for `one` and `page` (it
stops if they differ).  Then:

1. **Sequential latency**: a warm-up, then `--repeat` rounds, each sending every request once
   to each side (alternating which goes first), over one keep-alive connection per side
   (`http.client`, so the client adds little).  Median, p99 and the ratio Segmenta / floor.
2. **Concurrency**: `one`, `page` and `purchase` at 1, 10 and 50 concurrent clients (asyncio
   tasks, one keep-alive connection each, a minimal HTTP/1.1 client: see RawConnection for why
   not httpx), `--duration` seconds per level after a short warm-up, against both sides with 1
   worker process and then with `--workers` processes (default: the number of cores), once
   every worker has answered /health (a worker still starting would get none of a level's
   keep-alive connections).  Requests per second, p50, p99.  Segmenta's workers come from
   `segmenta serve --workers N` (one listening socket per worker, so the kernel spreads the
   connections evenly) when its `--help` lists that option, otherwise from `uvicorn
   segmenta.server:app --workers N` with SEGMENTA_DATABASE_URL (the run says which).  The
   floor's workers share uvicorn's one socket.

`--backends sqlite,postgresql` makes one complete run on each, one after the other (PostgreSQL
on `--database-url`'s server, by default the local one).

3. **graphql-core's own cost**: the page document executed by graphql-core alone, in the bench's
   process, over the floor's answer as in-memory data (a schema built from schema.graphql, no
   resolvers, the document parsed and validated once): the per-field work no resolver or SQL
   change can remove, next to the floor's and Segmenta's page.  `--sequential-only` skips step 2.

Every answer is checked: HTTP 200, JSON, no GraphQL `errors`, no `userErrors`; anything else is
an error, counted per side (the target is zero).  Finally a table puts the figures next to the
targets of the API-speed issue: one customer ≤ 2× the floor, the page ≤ 5×, with 50 clients
N workers serve at least 1.7× the requests per second of one worker (for the two reads; writes
are reported, with no target), p99 < 10× p50 there, zero errors.

What the floor does, so the ratio is read honestly: it checks the bearer token against
`api_tokens` on every request (SHA-256 of the token, not revoked, not expired, an agent's
employee active: the same lookup as Segmenta, never cached), reads the body as JSON, picks
the request by `operationName`, decodes the base64 IDs and runs 1 statement for `one`, 3 for
`page` (customers with team and manager joined, their segments, their tags) and 2 in one
transaction for `purchase` (update the customer's total_spent, purchase_count and purchase
dates; insert the purchase).  What it does **not** do: parse or validate GraphQL (it knows
three fixed documents), check roles per field, limit query depth/cost/body size or statement
time, enforce an agent's scope, validate inputs beyond what its SQL needs, re-route the
customer in real time after a purchase (Segmenta evaluates the active sample ruleset: team,
manager, segments, tags, history), publish subscription events, or record the token's last
use.  So Segmenta's extra time is the price of all that plus its GraphQL machinery.  Both run
under uvicorn with its default access log (to a file), on the same machine as the clients: the
load generator is one Python process sharing the cores, so at high rates it bounds the floor's
throughput more than Segmenta's, and on a busy machine every figure is noisy.

`--quick` is a smoke test (500 customers, 30 rounds, 2 s per level).  Traffic goes only to
127.0.0.1, and a database URL naming another host is refused.

Why one module: the floor is part of the measurement and must be read next to the requests it
answers and the checks that it answers the same data; uvicorn imports it from this file
(`api:floor_app`, the bench directory on its path), so a reader sees in one place everything
the ratio compares.  The floor imports nothing of Segmenta.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import http.client
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

if TYPE_CHECKING:
    from tests.live_server import LiveServer

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# A server's start-up may include the migrations of a fresh database, on a loaded machine.
SERVER_START_TIMEOUT = 180
FLOOR_DATABASE_VARIABLE = "BENCH_API_FLOOR_DATABASE"  # the floor process's database (a path or a DSN)
CONCURRENCY = (1, 10, 50)
CONCURRENT_KINDS = ("one", "page", "purchase")
ROLES = ("admin", "manager", "agent", "viewer")
TOKEN_PREFIX = "sgm_"

ONE = "query OneCustomer($id: ID!) { customer(id: $id) { name team { key } metrics { totalSpent } } }"
PAGE = """query CustomerPage {
  customers(first: 100) {
    nodes {
      id name team { key name } manager { name } segments { key } tags
      metrics { totalSpent purchaseCount avgSatisfaction daysSincePurchase }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""
PURCHASE = """mutation RecordPurchase($input: PurchaseInput!) {
  recordPurchase(input: $input) {
    purchase { id amount customer { metrics { purchaseCount totalSpent } } }
    userErrors { field code message }
  }
}"""
ROOTS = {"one": "customer", "page": "customers", "purchase": "recordPurchase"}


# =============================================================================================
# The floor: what answering these three requests costs with nothing but SQL and json


def global_id(kind: str, key: int) -> str:
    return base64.b64encode(f"{kind}:{key}".encode()).decode()


def key_of(kind: str, value: object) -> int | None:
    """The key of a `Kind:key` base64 ID, or None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except ValueError:
        return None
    prefix, _, key = decoded.partition(":")
    return int(key) if prefix == kind and key.isdigit() and 0 < int(key) < 2**31 else None


def mean(total: float | None, count: int | None) -> float | None:
    return float(total or 0.0) / count if count else None


def stamp(value: datetime | str | None) -> datetime | None:
    """A stored timestamp as a naive UTC datetime (SQLite stores text)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def days_since(value: datetime | str | None, now: datetime) -> int | None:
    moment = stamp(value)
    return None if moment is None else (now - moment) // timedelta(days=1)


def money_text(cents: int | None) -> str:
    """An amount as the API shows it (the Money scalar): money columns hold whole cents."""
    return f"{Decimal(int(cents or 0)).scaleb(-2):f}"


def page_node(row: Sequence[Any], segments: list[str], tags: list[str], now: datetime) -> dict[str, Any]:
    customer_id, name, total_spent, purchase_count, survey_sum, survey_count, last_purchase_at, team_key, team_name, manager = row
    return {
        "id": global_id("Customer", customer_id),
        "name": name,
        "team": None if team_key is None else {"key": team_key, "name": team_name},
        "manager": None if manager is None else {"name": manager},
        "segments": [{"key": key} for key in segments],
        "tags": tags,
        "metrics": {
            "totalSpent": money_text(total_spent),
            "purchaseCount": purchase_count or 0,
            "avgSatisfaction": mean(survey_sum, survey_count),
            "daysSincePurchase": days_since(last_purchase_at, now),
        },
    }


def naive_utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


TOKEN_SQL = """SELECT t.role, t.employee_id, e.active FROM api_tokens t LEFT JOIN employees e ON e.id = t.employee_id
WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)"""
ONE_SQL = """SELECT c.name, t.key, c.total_spent FROM customers c LEFT JOIN teams t ON t.id = c.team_id WHERE c.id = $1"""
# The page first, then its teams and managers: joining before the LIMIT would join every customer.
PAGE_SQL = """SELECT c.id, c.name, c.total_spent, c.purchase_count, c.survey_sum, c.survey_count, c.last_purchase_at,
       t.key, t.name, e.name
FROM (SELECT id, name, total_spent, purchase_count, survey_sum, survey_count, last_purchase_at, team_id, manager_id
      FROM customers ORDER BY name, id LIMIT $1) c
LEFT JOIN teams t ON t.id = c.team_id LEFT JOIN employees e ON e.id = c.manager_id
ORDER BY c.name, c.id"""
SEGMENTS_SQL = """SELECT m.customer_id, s.key FROM segment_members m JOIN segments s ON s.id = m.segment_id
WHERE m.customer_id IN ({ids}) ORDER BY s.key"""
TAGS_SQL = "SELECT customer_id, tag FROM customer_tags WHERE customer_id IN ({ids})"
BUY_SQL = """UPDATE customers SET total_spent = total_spent + $1, purchase_count = purchase_count + 1,
    first_purchase_at = COALESCE(first_purchase_at, $2),
    last_purchase_at = CASE WHEN last_purchase_at IS NULL OR last_purchase_at < $2 THEN $2 ELSE last_purchase_at END,
    updated_at = $2
WHERE id = $3 RETURNING purchase_count, total_spent"""
INSERT_PURCHASE_SQL = """INSERT INTO purchases (customer_id, amount, category, product, channel, purchased_at)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"""


@dataclass(frozen=True)
class Bought:
    purchase_id: int
    purchase_count: int
    total_spent: str


class FloorStore(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def role(self, token_hash: str, now: datetime) -> str | None: ...
    async def one(self, customer_id: int) -> tuple[str, str | None, int] | None: ...
    async def page(self, first: int) -> tuple[list[Sequence[Any]], dict[int, list[str]], dict[int, list[str]]]: ...
    async def buy(self, customer_id: int, cents: int, category: str | None, product: str | None,
                  channel: str | None, now: datetime) -> Bought | None: ...


def checked_role(row: Sequence[Any] | None) -> str | None:
    if row is None or row[0] not in ROLES:
        return None
    if row[0] == "agent" and (row[1] is None or not row[2]):
        return None
    return str(row[0])


def grouped(rows: Sequence[Sequence[Any]]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for customer_id, value in rows:
        found.setdefault(customer_id, []).append(value)
    return found


class SqliteFloor:
    """One sqlite3 connection per process, used from the event loop's thread (each call is short)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db: sqlite3.Connection | None = None

    @staticmethod
    def sql(statement: str) -> str:
        return re.sub(r"\$(\d+)", r"?\1", statement)

    @staticmethod
    def text_time(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")  # how SQLAlchemy stores a DateTime in SQLite

    @property
    def connection(self) -> sqlite3.Connection:
        assert self.db is not None, "the floor's store is not open"
        return self.db

    async def open(self) -> None:
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout=5000")

    async def close(self) -> None:
        self.connection.close()

    async def role(self, token_hash: str, now: datetime) -> str | None:
        return checked_role(self.connection.execute(self.sql(TOKEN_SQL), (token_hash, self.text_time(now))).fetchone())

    async def one(self, customer_id: int) -> tuple[str, str | None, int] | None:
        row = self.connection.execute(self.sql(ONE_SQL), (customer_id,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    async def page(self, first: int) -> tuple[list[Sequence[Any]], dict[int, list[str]], dict[int, list[str]]]:
        rows = self.connection.execute(self.sql(PAGE_SQL), (first + 1,)).fetchall()
        ids = ",".join(str(int(row[0])) for row in rows[:first]) or "NULL"
        segments = grouped(self.connection.execute(SEGMENTS_SQL.format(ids=ids)).fetchall())
        tags = grouped(self.connection.execute(TAGS_SQL.format(ids=ids)).fetchall())
        return rows, segments, tags

    async def buy(self, customer_id: int, cents: int, category: str | None, product: str | None,
                  channel: str | None, now: datetime) -> Bought | None:
        db, moment = self.connection, self.text_time(now)
        db.execute("BEGIN IMMEDIATE")
        try:
            updated = db.execute(self.sql(BUY_SQL), (cents, moment, customer_id)).fetchone()
            if updated is None:
                db.execute("ROLLBACK")
                return None
            (purchase_id,) = db.execute(
                self.sql(INSERT_PURCHASE_SQL), (customer_id, cents, category, product, channel, moment)
            ).fetchone()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return Bought(purchase_id, updated[0], money_text(updated[1]))


class PostgresFloor:
    """An asyncpg pool per process (prepared statements cached by asyncpg)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: Any = None

    async def open(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=15)  # as SQLAlchemy: 5 + 10 overflow

    async def close(self) -> None:
        await self.pool.close()

    async def role(self, token_hash: str, now: datetime) -> str | None:
        return checked_role(await self.pool.fetchrow(TOKEN_SQL, token_hash, now))

    async def one(self, customer_id: int) -> tuple[str, str | None, int] | None:
        row = await self.pool.fetchrow(ONE_SQL, customer_id)
        return None if row is None else (row[0], row[1], row[2])

    async def page(self, first: int) -> tuple[list[Sequence[Any]], dict[int, list[str]], dict[int, list[str]]]:
        async with self.pool.acquire() as connection:
            rows = await connection.fetch(PAGE_SQL, first + 1)
            ids = [row[0] for row in rows[:first]]
            segments = grouped(await connection.fetch(SEGMENTS_SQL.format(ids="SELECT unnest($1::int[])"), ids))
            tags = grouped(await connection.fetch(TAGS_SQL.format(ids="SELECT unnest($1::int[])"), ids))
        return rows, segments, tags

    async def buy(self, customer_id: int, cents: int, category: str | None, product: str | None,
                  channel: str | None, now: datetime) -> Bought | None:
        async with self.pool.acquire() as connection, connection.transaction():
            updated = await connection.fetchrow(BUY_SQL, cents, now, customer_id)
            if updated is None:
                return None
            purchase_id = await connection.fetchval(
                INSERT_PURCHASE_SQL, customer_id, cents, category, product, channel, now
            )
        return Bought(purchase_id, updated[0], money_text(updated[1]))


def floor_store(database: str) -> FloorStore:
    if database.startswith("postgresql://"):
        return PostgresFloor(database)
    return SqliteFloor(database)


def floor_app() -> Any:
    """The floor's ASGI app (a uvicorn factory): POST /graphql for the three requests, GET /health."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    store = floor_store(os.environ[FLOOR_DATABASE_VARIABLE])

    def answer(body: dict[str, Any], status: int = 200) -> Response:
        return Response(json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json")

    def refusal(code: str, message: str, status: int) -> Response:
        return answer({"errors": [{"message": message, "extensions": {"code": code}}]}, status)

    async def one(variables: dict[str, Any]) -> dict[str, Any]:
        customer_id = key_of("Customer", variables.get("id"))
        found = await store.one(customer_id) if customer_id is not None else None
        if found is None:
            return {"data": {"customer": None}}
        name, team_key, total_spent = found
        return {"data": {"customer": {
            "name": name, "team": None if team_key is None else {"key": team_key},
            "metrics": {"totalSpent": money_text(total_spent)},
        }}}

    async def page(variables: dict[str, Any]) -> dict[str, Any]:
        first = 100
        rows, segments, tags = await store.page(first)
        now = naive_utc_now()
        nodes = [page_node(row, segments.get(row[0], []), sorted(set(tags.get(row[0], []))), now) for row in rows[:first]]
        last = rows[min(len(rows), first) - 1] if rows else None
        cursor = None if last is None else base64.b64encode(json.dumps([last[1], last[0]]).encode()).decode()
        return {"data": {"customers": {"nodes": nodes, "pageInfo": {"hasNextPage": len(rows) > first, "endCursor": cursor}}}}

    async def purchase(variables: dict[str, Any]) -> dict[str, Any]:
        given: dict[str, Any] = variables["input"] if isinstance(variables.get("input"), dict) else {}
        customer_id = key_of("Customer", given.get("customerId"))
        amount = given.get("amount")
        errors: list[dict[str, str]] = []
        if customer_id is None:
            errors.append({"field": "input.customerId", "code": "INVALID_ID", "message": "not a Customer ID"})
        if not isinstance(amount, int | float) or isinstance(amount, bool) or not 0 <= amount <= 1_000_000_000:
            errors.append({"field": "input.amount", "code": "INVALID", "message": "0 to 1,000,000,000"})
        bought = None
        cents = 0
        if not errors and customer_id is not None and isinstance(amount, int | float):
            cents = int((Decimal(repr(amount)) * 100).to_integral_value())  # money columns hold whole cents
            bought = await store.buy(customer_id, cents, given.get("category"), given.get("product"),
                                     given.get("channel"), naive_utc_now())
            if bought is None:
                errors.append({"field": "input.customerId", "code": "NOT_FOUND", "message": "no such customer"})
        payload = None if bought is None else {
            "id": global_id("Purchase", bought.purchase_id), "amount": money_text(cents),
            "customer": {"metrics": {"purchaseCount": bought.purchase_count, "totalSpent": bought.total_spent}},
        }
        return {"data": {"recordPurchase": {"purchase": payload, "userErrors": errors}}}

    operations: dict[str, tuple[Callable[[dict[str, Any]], Awaitable[dict[str, Any]]], bool]] = {
        "OneCustomer": (one, False), "CustomerPage": (page, False), "RecordPurchase": (purchase, True),
    }

    async def graphql(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        role = None
        if scheme.lower() == "bearer" and token.startswith(TOKEN_PREFIX) and len(token) <= 200:
            role = await store.role(hashlib.sha256(token.encode()).hexdigest(), naive_utc_now())
        if role is None:
            return refusal("UNAUTHENTICATED", "authentication required", 401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return refusal("BAD_REQUEST", "the body is not JSON", 400)
        if not isinstance(body, dict) or body.get("operationName") not in operations:
            return refusal("BAD_REQUEST", "the floor knows OneCustomer, CustomerPage and RecordPurchase", 400)
        operation, writes = operations[body["operationName"]]
        if writes and role == "viewer":
            return answer({"data": None, "errors": [{"message": "forbidden", "extensions": {"code": "FORBIDDEN"}}]})
        variables: dict[str, Any] = body["variables"] if isinstance(body.get("variables"), dict) else {}
        return answer(await operation(variables))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "process": os.getpid()})  # as Segmenta's: which worker answered

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        try:
            yield
        finally:
            await store.close()

    return Starlette(
        routes=[Route("/graphql", graphql, methods=["POST"]), Route("/health", health)], lifespan=lifespan
    )


# =============================================================================================
# The database and the servers


@contextmanager
def prepared_database(database_url: str | None) -> Iterator[str]:
    """The URL of a new database for this run, removed afterwards."""
    from sqlalchemy.engine import make_url

    from segmenta.storage.engine import normalize_url

    if not database_url:
        with tempfile.TemporaryDirectory(prefix="segmenta-api-") as directory:
            yield f"sqlite+aiosqlite:///{Path(directory) / 'api.db'}"
        return
    base = make_url(normalize_url(database_url))
    if base.get_backend_name() != "postgresql":
        sys.exit("--database-url: a PostgreSQL URL (SQLite runs on a temporary file without it)")
    if (base.host or "localhost") not in LOOPBACK:
        sys.exit(f"--database-url: this benchmark only talks to 127.0.0.1, not {base.host}")
    from tests.live_server import new_postgres_database

    with new_postgres_database(database_url, "segmenta_api") as url:
        yield url


def floor_database(database_url: str) -> str:
    """What the floor connects to: the SQLite file's path, or a plain PostgreSQL DSN."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def prepare_demo(database_url: str, customers: int) -> str:
    """Runs `segmenta demo --no-serve` and answers the admin token it prints."""
    from tests.live_server import segmenta

    printed = segmenta("demo", "--no-serve", "--customers", str(customers), "--database-url", database_url, timeout=1800)
    found = re.search(r"Admin token:\s+(\S+)", printed)
    if found is None:
        sys.exit(f"segmenta demo printed no admin token:\n{printed}")
    return found.group(1)


def serve_supports_workers() -> bool:
    from tests.live_server import SEGMENTA

    shown = subprocess.run([SEGMENTA, "serve", "--help"], capture_output=True, text=True, timeout=60).stdout
    return "--workers" in shown


def start_segmenta(database_url: str, workers: int, with_option: bool, log_directory: Path) -> LiveServer:
    from tests.live_server import SEGMENTA, LiveServer, free_port

    port = free_port()
    env = {"SEGMENTA_SCHEDULE_INTERVAL": "off"}
    label = f"segmenta {workers}w"
    if with_option:
        command = [SEGMENTA, "serve", "--port", str(port), "--database-url", database_url, "--workers", str(workers)]
    elif workers == 1:
        command = [SEGMENTA, "serve", "--port", str(port), "--database-url", database_url]
    else:
        env["SEGMENTA_DATABASE_URL"] = database_url
        command = [sys.executable, "-m", "uvicorn", "segmenta.server:app", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(workers)]
    return LiveServer.launch(command, port, log_directory, env=env, label=label, timeout=SERVER_START_TIMEOUT)


def wait_for_workers(server: LiveServer, workers: int, timeout: float = SERVER_START_TIMEOUT) -> None:
    """Until `workers` different processes have answered /health: a worker still starting when the
    clients connect would get none of their keep-alive connections for a whole level."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < workers:
        if time.monotonic() > deadline:
            server.stop()
            sys.exit(f"{server.label}: only {len(seen)} of {workers} workers answered within {timeout:g} s")
        connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=30)
        try:
            connection.request("GET", "/health")
            seen.add(int(json.loads(connection.getresponse().read())["process"]))
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
        finally:
            connection.close()


def start_floor(database_url: str, workers: int, log_directory: Path) -> LiveServer:
    from tests.live_server import LiveServer, free_port

    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "api:floor_app", "--factory", "--app-dir", str(BENCH_DIR),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return LiveServer.launch(
        command, port, log_directory, env={FLOOR_DATABASE_VARIABLE: floor_database(database_url)},
        label=f"floor {workers}w", timeout=SERVER_START_TIMEOUT,
    )


# =============================================================================================
# Requests and their checks


@dataclass
class Workload:
    token: str
    customer_ids: list[str]
    counter: int = 0

    def body(self, kind: str) -> bytes:
        """The JSON body of the next request of `kind` (`one` and `purchase` rotate over customers)."""
        self.counter += 1
        customer = self.customer_ids[self.counter % len(self.customer_ids)]
        variables: dict[str, Any]
        if kind == "one":
            document, name, variables = ONE, "OneCustomer", {"id": customer}
        elif kind == "page":
            document, name, variables = PAGE, "CustomerPage", {}
        else:
            document, name, variables = PURCHASE, "RecordPurchase", {"input": {
                "customerId": customer, "amount": 12.5, "category": "bench", "product": f"api-{self.counter}"}}
        return json.dumps({"query": document, "operationName": name, "variables": variables}).encode()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}


def problem(kind: str, status: int, raw: bytes) -> str | None:
    """None when the answer is a success, else what is wrong with it."""
    if status != 200:
        return f"HTTP {status}"
    try:
        body = json.loads(raw)
    except ValueError:
        return "not JSON"
    if body.get("errors"):
        return str((body["errors"][0].get("extensions") or {}).get("code") or "error without code")
    payload = (body.get("data") or {}).get(ROOTS[kind])
    if payload is None:
        return "no data"
    if kind == "purchase" and (payload.get("userErrors") or payload.get("purchase") is None):
        return f"userError {(payload.get('userErrors') or [{}])[0].get('code')}"
    return None


class Connection:
    """One keep-alive HTTP/1.1 connection (http.client: little client-side cost per request)."""

    def __init__(self, url: str, workload: Workload) -> None:
        parts = urlsplit(url)
        self.http = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        self.headers = workload.headers

    def post(self, body: bytes) -> tuple[int, bytes]:
        self.http.request("POST", "/graphql", body=body, headers=self.headers)
        response = self.http.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.http.close()


def data_of(server: LiveServer, workload: Workload, body: bytes) -> Any:
    connection = Connection(server.url, workload)
    try:
        status, raw = connection.post(body)
    finally:
        connection.close()
    if status != 200:
        sys.exit(f"{server.label} answered HTTP {status}: {raw[:2000]!r}")
    return json.loads(raw)


def first_page_ids(server: LiveServer, workload: Workload) -> list[str]:
    answer = data_of(server, workload, Workload(workload.token, ["none"]).body("page"))
    if answer.get("errors"):
        sys.exit(f"{server.label}: {answer['errors']}")
    return [node["id"] for node in answer["data"]["customers"]["nodes"]]


def check_same_answers(segmenta: LiveServer, floor: LiveServer, workload: Workload) -> None:
    """Stops the run unless both sides answer the same data for `one` (a few customers) and `page`."""
    for kind in ("one", "one", "one", "page"):
        body = workload.body(kind)
        ours, theirs = data_of(segmenta, workload, body), data_of(floor, workload, body)
        if kind == "page":
            for answer in (ours, theirs):
                answer["data"]["customers"]["pageInfo"].pop("endCursor", None)  # opaque, differs by design
        if ours != theirs:
            sys.exit(f"the floor does not answer what Segmenta does for `{kind}`:\n"
                     f"segmenta: {json.dumps(ours)[:3000]}\nfloor:    {json.dumps(theirs)[:3000]}")


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


# =============================================================================================
# Sequential latency


@dataclass
class Samples:
    seconds: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # CPU seconds the server's processes (all their threads) used during these requests, from /proc.
    cpu: float = 0.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process `pid` and its descendants so far, from /proc (0 elsewhere).

    Counted in clock ticks (1/100 s): one request's share is mostly 0 or a tick, but summed over
    hundreds of requests it is an unbiased measure of a request's CPU cost, which a loaded machine
    disturbs far less than latency (a request waiting for a core adds latency, not CPU time)."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def sequential(servers: list[LiveServer], workload: Workload, kinds: Sequence[str], warmup: int, repeat: int
               ) -> dict[tuple[str, str], Samples]:
    """Latency per (side, kind): warm-up, then `repeat` rounds, alternating which side goes first."""
    connections = {server.label: Connection(server.url, workload) for server in servers}
    samples = {(server.label, kind): Samples() for server in servers for kind in kinds}
    try:
        for round_number in range(warmup + repeat):
            for kind in kinds:
                body = workload.body(kind)
                order = servers if round_number % 2 == 0 else list(reversed(servers))
                for server in order:
                    cpu_before = cpu_seconds(server.process.pid)
                    started = time.perf_counter()
                    status, raw = connections[server.label].post(body)
                    elapsed = time.perf_counter() - started
                    cpu = cpu_seconds(server.process.pid) - cpu_before
                    wrong = problem(kind, status, raw)
                    if wrong:
                        samples[(server.label, kind)].errors.append(wrong)
                    if round_number >= warmup:
                        samples[(server.label, kind)].seconds.append(elapsed)
                        samples[(server.label, kind)].cpu += cpu
    finally:
        for connection in connections.values():
            connection.close()
    return samples


# =============================================================================================
# graphql-core's own cost


def graphql_core_page(page_answer: dict[str, Any], repeat: int) -> float:
    """Median seconds graphql-core (alone, in this process) takes to execute the page document over
    in-memory data: the schema built from schema.graphql has no resolvers (each field reads its key
    of the answer's own dicts, synchronously), the document is parsed and validated once.  What is
    left is graphql-core's per-field work (collect fields, complete values, serialize scalars, build
    the result): the part of Segmenta's page no resolver or SQL change can remove."""
    from graphql import build_schema, execute_sync, parse, validate

    schema = build_schema((BENCH_DIR.parent / "schema.graphql").read_text(encoding="utf-8"))
    document = parse(PAGE)
    assert not validate(schema, document)
    root = page_answer["data"]
    warmup = max(5, repeat // 10)
    samples = []
    for index in range(warmup + repeat):
        started = time.perf_counter()
        result = execute_sync(schema, document, root_value=root)
        if index >= warmup:
            samples.append(time.perf_counter() - started)
        if result.errors or result.data != root:
            sys.exit(f"graphql-core over the page's own data answered something else: {result.errors}")
    return statistics.median(samples)


# =============================================================================================
# Concurrency


@dataclass
class Level:
    side: str
    workers: int
    kind: str
    clients: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: list[str]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class RawConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams.

    Not httpx: its client costs more CPU per request than the floor spends answering one, and
    the client shares the cores with the servers.  Measured on the floor's `one` (2 cores, 4 s):
    httpx 426 requests/s with 1 client and 129/s with 50; this client 1,867/s and 2,276/s.
    It writes a prepared request and reads the status line, the headers and a Content-Length
    or chunked body: nothing else.
    """

    def __init__(self, url: str, workload: Workload) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = "".join(f"{name}: {value}\r\n" for name, value in workload.headers.items())
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, body: bytes) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.streams
        writer.write(f"POST /graphql HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.head}"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status = int((await reader.readline()).split()[1])
        length, chunked, closing = 0, False, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                closing = value == "close"
        if chunked:
            parts = []
            while size := int((await reader.readline()).split(b";")[0], 16):
                parts.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()
            raw = b"".join(parts)
        else:
            raw = await reader.readexactly(length)
        if closing:
            await self.close()
        return status, raw

    async def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def drive(server: LiveServer, workload: Workload, kind: str, clients: int, duration: float
                ) -> tuple[int, float, list[float], list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + duration

    async def one_client() -> None:
        connection = RawConnection(server.url, workload)
        try:
            while time.perf_counter() < deadline:
                body = workload.body(kind)
                started = time.perf_counter()
                try:
                    status, raw = await asyncio.wait_for(connection.post(body), 60)
                    wrong = problem(kind, status, raw)
                except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, TimeoutError) as error:
                    wrong = type(error).__name__
                    await connection.close()
                latencies.append(time.perf_counter() - started)
                if wrong:
                    errors.append(wrong)
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    return len(latencies), time.perf_counter() - started, latencies, errors


def concurrency(server: LiveServer, side: str, workers: int, workload: Workload, duration: float) -> list[Level]:
    levels: list[Level] = []
    for kind in CONCURRENT_KINDS:
        for clients in CONCURRENCY:
            _, _, _, warm_errors = asyncio.run(drive(server, workload, kind, clients, max(0.5, duration / 5)))
            requests, seconds, latencies, errors = asyncio.run(drive(server, workload, kind, clients, duration))
            level = Level(side, workers, kind, clients, requests, seconds, latencies, warm_errors + errors)
            print(f"  {side:<9}{workers:>2}w {kind:<5}{clients:>3} clients: {level.per_second:8.1f}/s  "
                  f"p50 {percentile(latencies, 0.5) * 1000:7.1f} ms  p99 {percentile(latencies, 0.99) * 1000:7.1f} ms"
                  f"  errors {len(level.errors)}", flush=True)
            levels.append(level)
    return levels


# =============================================================================================
# The report


def milliseconds(value: float) -> str:
    return f"{value * 1000:.2f}"


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "NOT MET")


def report(samples: dict[tuple[str, str], Samples], levels: list[Level], segmenta_label: str, floor_label: str,
           workers: int, how_workers: str, core_page: float) -> bool:
    print("\nSequential latency (ms; one keep-alive connection per side)")
    print(f"{'request':<10}{'segmenta p50':>14}{'p99':>9}{'floor p50':>12}{'p99':>9}{'ratio p50':>11}{'errors':>9}")
    ratios: dict[str, float] = {}
    for kind in ("one", "page", "purchase"):
        ours, theirs = samples[(segmenta_label, kind)], samples[(floor_label, kind)]
        ours_median, theirs_median = statistics.median(ours.seconds), statistics.median(theirs.seconds)
        ratios[kind] = ours_median / theirs_median
        print(f"{kind:<10}{milliseconds(ours_median):>14}{milliseconds(percentile(ours.seconds, 0.99)):>9}"
              f"{milliseconds(theirs_median):>12}{milliseconds(percentile(theirs.seconds, 0.99)):>9}"
              f"{ratios[kind]:>10.1f}×{len(ours.errors):>5}/{len(theirs.errors)}")

    print("\nServer CPU per request (ms; user + system of the server's processes and threads, from /proc, "
          "summed over the sequential rounds: less disturbed by a loaded machine than latency)")
    print(f"{'request':<10}{'segmenta':>12}{'floor':>10}{'ratio':>9}")
    for kind in ("one", "page", "purchase"):
        ours, theirs = samples[(segmenta_label, kind)], samples[(floor_label, kind)]
        ours_cpu, theirs_cpu = ours.cpu / max(1, len(ours.seconds)), theirs.cpu / max(1, len(theirs.seconds))
        shown = f"{ours_cpu / theirs_cpu:>8.1f}×" if theirs_cpu else f"{'n/a':>9}"
        print(f"{kind:<10}{milliseconds(ours_cpu):>12}{milliseconds(theirs_cpu):>10}{shown}")

    page_median = statistics.median(samples[(segmenta_label, "page")].seconds)
    floor_page = statistics.median(samples[(floor_label, "page")].seconds)
    print(f"\ngraphql-core alone executes the page document over its own answer (no resolvers, parsed and "
          f"validated once) in {milliseconds(core_page)} ms: {core_page / floor_page:.1f}× the floor's whole page; "
          f"Segmenta's page is {page_median / core_page:.1f}× that, {milliseconds(page_median - core_page)} ms more")

    if levels:
        print(f"\nConcurrency ({workers} workers: {how_workers}); requests/s, p50 and p99 in ms")
        print(f"{'side':<10}{'workers':>8}{'request':>9}{'clients':>9}{'req/s':>9}{'p50':>9}{'p99':>9}{'p99/p50':>9}{'errors':>8}")
    for row in levels:
        p50, p99 = percentile(row.latencies, 0.5), percentile(row.latencies, 0.99)
        print(f"{row.side:<10}{row.workers:>8}{row.kind:>9}{row.clients:>9}{row.per_second:>9.1f}"
              f"{milliseconds(p50):>9}{milliseconds(p99):>9}{p99 / p50:>9.1f}{len(row.errors):>8}")

    def level_of(side: str, count: int, kind: str, clients: int) -> Level:
        return next(item for item in levels if (item.side, item.workers, item.kind, item.clients) == (side, count, kind, clients))

    targets: list[tuple[str, str, bool | None]] = [
        ("one customer ≤ 2× the floor (sequential p50)", f"{ratios['one']:.1f}×", ratios["one"] <= 2),
        ("page of 100 ≤ 5× the floor (sequential p50)", f"{ratios['page']:.1f}×", ratios["page"] <= 5),
    ]
    for kind in ("one", "page") if levels else ():
        single, many = level_of("segmenta", 1, kind, 50), level_of("segmenta", workers, kind, 50)
        gain = many.per_second / single.per_second if single.per_second else float("nan")
        targets.append((f"{kind}: 50 clients, {workers} workers ≥ 1.7× the req/s of 1 worker", f"{gain:.2f}×",
                        None if workers < 2 else gain >= 1.7))
        spread = percentile(many.latencies, 0.99) / percentile(many.latencies, 0.5)
        targets.append((f"{kind}: 50 clients, {workers} workers, p99 < 10× p50", f"{spread:.1f}×", spread < 10))
    segmenta_errors = sum(len(found.errors) for (side, _), found in samples.items() if side == segmenta_label)
    segmenta_errors += sum(len(item.errors) for item in levels if item.side == "segmenta")
    floor_errors = sum(len(found.errors) for (side, _), found in samples.items() if side == floor_label)
    floor_errors += sum(len(item.errors) for item in levels if item.side == "floor")
    targets.append(("zero errors (Segmenta; the floor's in brackets)", f"{segmenta_errors} ({floor_errors})",
                    segmenta_errors == 0 and floor_errors == 0))
    print(f"\nPurchase (recordPurchase): {ratios['purchase']:.1f}× the floor — no target; Segmenta also re-routes "
          "the customer in real time, the floor does not")
    if workers > 1 and levels:
        single, many = level_of("segmenta", 1, "purchase", 50), level_of("segmenta", workers, "purchase", 50)
        gain = many.per_second / single.per_second if single.per_second else float("nan")
        print(f"Purchases with 50 clients: {workers} workers {gain:.2f}× the req/s of 1 worker — no target: writes "
              "wait for locks whatever the number of processes (SQLite's one write lock; on PostgreSQL the "
              "customer's row and, when routing assigns, its team's)")
    print("\nTargets")
    for name, figure, met in targets:
        print(f"  {name:<62}{figure:>12}  {verdict(met)}")
    for (side, kind), found in samples.items():
        if found.errors:
            print(f"  errors, {side} {kind}: {sorted(set(found.errors))[:5]}")
    for item in levels:
        if item.errors:
            print(f"  errors, {item.side} {item.workers}w {item.kind} {item.clients} clients: {sorted(set(item.errors))[:5]}")
    return all(met is not False for _, _, met in targets)


DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, help="demo customers (default 5000; --quick 500)")
    parser.add_argument("--repeat", type=int, help="sequential rounds after the warm-up (default 300; --quick 30)")
    parser.add_argument("--duration", type=float, help="seconds per concurrency level (default 10; --quick 2)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                        help="worker processes for the scaled-out runs (default: the number of cores)")
    parser.add_argument("--database-url", help="a PostgreSQL server (a new database is made on it); default SQLite")
    parser.add_argument("--backends", help="sqlite, postgresql or sqlite,postgresql: one run after the other "
                        f"(default: postgresql with --database-url, else sqlite; PostgreSQL at {DEFAULT_POSTGRES} "
                        "unless --database-url names another)")
    parser.add_argument("--quick", action="store_true", help="a small run, to check the bench works")
    parser.add_argument("--sequential-only", action="store_true",
                        help="measure sequential latency only, no concurrency levels (their targets are then n/a)")
    arguments = parser.parse_args()
    customers = arguments.customers or (500 if arguments.quick else 5000)
    repeat = arguments.repeat or (30 if arguments.quick else 300)
    duration = arguments.duration or (2.0 if arguments.quick else 10.0)
    if customers < 100 or repeat < 1 or duration <= 0 or arguments.workers < 1:
        parser.error("--customers ≥ 100 (a full page), --repeat ≥ 1, --duration > 0, --workers ≥ 1")
    backends = (arguments.backends or ("postgresql" if arguments.database_url else "sqlite")).split(",")
    if not backends or any(name not in ("sqlite", "postgresql") for name in backends):
        parser.error("--backends: sqlite, postgresql or sqlite,postgresql")
    outcomes = {}
    for backend in backends:
        server = (arguments.database_url or DEFAULT_POSTGRES) if backend == "postgresql" else None
        outcomes[backend] = run(server, customers, repeat, duration, arguments.workers, arguments.sequential_only)
    if len(outcomes) > 1:
        print("\n" + "; ".join(f"{name}: {'every target met' if met else 'a target NOT met'}" for name, met in outcomes.items()))
    sys.exit(0 if all(outcomes.values()) else 1)


def run(server_url: str | None, customers: int, repeat: int, duration: float, workers: int,
        sequential_only: bool = False) -> bool:
    """One complete run on SQLite (`server_url` None) or on a new database of that PostgreSQL server."""
    warmup = max(5, repeat // 10)
    with_option = serve_supports_workers()
    how_workers = "segmenta serve --workers" if with_option else "uvicorn segmenta.server:app --workers (serve has no --workers)"

    with prepared_database(server_url) as database_url, \
            tempfile.TemporaryDirectory(prefix="segmenta-api-logs-") as logs:
        from sqlalchemy.engine import make_url

        backend = make_url(database_url).get_backend_name()
        load_before = os.getloadavg()[0]
        print(f"{backend}: segmenta demo --no-serve --customers {customers} …", flush=True)
        token = prepare_demo(database_url, customers)
        log_directory = Path(logs)
        servers: list[LiveServer] = []
        try:
            servers = [start_segmenta(database_url, 1, with_option, log_directory), start_floor(database_url, 1, log_directory)]
            segmenta, floor = servers
            workload = Workload(token, ["none"])
            workload.customer_ids = first_page_ids(segmenta, workload)
            check_same_answers(segmenta, floor, workload)
            print(f"both sides answer the same data; sequential: {warmup} warm-up + {repeat} rounds …", flush=True)
            samples = sequential(servers, workload, ("one", "page", "purchase"), warmup, repeat)
            core_page = graphql_core_page(data_of(floor, workload, workload.body("page")), repeat)
            levels: list[Level] = []
            if not sequential_only:
                print(f"concurrency: {duration:g} s per level …", flush=True)
                levels += concurrency(segmenta, "segmenta", 1, workload, duration)
                levels += concurrency(floor, "floor", 1, workload, duration)
            for server in servers:
                server.stop()
            if workers > 1 and not sequential_only:
                servers = [start_segmenta(database_url, workers, with_option, log_directory),
                           start_floor(database_url, workers, log_directory)]
                for server in servers:
                    wait_for_workers(server, workers)
                levels += concurrency(servers[0], "segmenta", workers, workload, duration)
                levels += concurrency(servers[1], "floor", workers, workload, duration)
        finally:
            for server in servers:
                server.stop()
        print(f"\n{backend}, {customers} customers, {len(os.sched_getaffinity(0))} cores, 1-minute load average "
              f"{load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end (the bench's own processes "
              "included); the clients run on the same machine")
        return report(samples, levels, segmenta.label, floor.label, workers, how_workers, core_page)


if __name__ == "__main__":
    main()
