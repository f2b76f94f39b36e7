"""The real `segmenta serve` process, for tests that must see what a user runs.

`LiveServer.start(...)` gives a module its own SQLite file holding the demo data (`segmenta seed`)
and one token per role (`segmenta token create`), starts `segmenta serve` on a free port and waits
for `/health`.  Everything goes through the installed console script, so a missing dependency (a
websocket library, say) fails here as it would for a user.

What is shared, to keep the suite fast (each process start costs a second or more of imports):

- Seeded templates.  The first `start(customers=N, roles=R)` of a test process seeds a template
  file with the commands above; every later `start` with the same N and R gets a byte copy of it
  (`seeded_sqlite`), with the same token secrets.  Copies are independent: write to yours freely.
  Prefer a customer count already in use (20 is the common one) unless a test needs another.
  `start`'s `env` reaches the server only; seeding runs with the test process's environment.
- One process per module.  Start servers in a `scope="module"` fixture; a second server on the same
  database, or a restart of a stopped one, is `LiveServer.serve(url, folder, tokens=first.tokens)`
  (no new seed, no new tokens).
- PostgreSQL: `new_postgres_database(url, prefix)` gives a fresh database, dropped afterwards.

Test modules run in parallel worker processes (pytest-xdist, `--dist loadfile`, tests/conftest.py):
a module's tests all run in one process, in file order, so a module-scoped server is started once;
different modules may run at the same time, so a module never assumes a port, a file outside its
own temporary folders, or a database it did not make.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

SEGMENTA = str(Path(sys.executable).with_name("segmenta"))


def free_port() -> int:
    """A port free now.  Under pytest-xdist each worker takes only ports of its own residue (modulo the
    number of workers), so two workers never pick the same one before either server has bound it."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    residue = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")) % workers
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    # Linux gives bind(0) odd ports only (it keeps the even ones for connect), so step from there.
    for candidate in range(port, min(port + 64 * workers, 65536)):
        if candidate % workers != residue:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        return candidate
    raise RuntimeError(f"no free port of residue {residue} modulo {workers} from {port}")


def segmenta(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run a segmenta command to completion and return its stdout (raises on a non-zero exit)."""
    completed = subprocess.run(
        [SEGMENTA, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if completed.returncode != 0:
        raise RuntimeError(f"segmenta {' '.join(args)} exited {completed.returncode}: {completed.stderr[-2000:]}")
    return completed.stdout


# (customers, roles) -> (template file, token per role); per test process.
_TEMPLATES: dict[tuple[int, tuple[str, ...]], tuple[Path, dict[str, str]]] = {}


@functools.cache
def _template_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="segmenta-live-templates-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def seeded_sqlite(path: Path, *, customers: int = 50, roles: tuple[str, ...] = ("admin", "viewer")) -> dict[str, str]:
    """Write at `path` a SQLite database holding `segmenta seed --customers N`'s data and one API token
    per role; return the tokens' secrets by role.  The first call for a (customers, roles) runs the
    commands on a template file; later calls copy the template (SQLite's backup: a consistent copy)."""
    key = (customers, tuple(roles))
    if key not in _TEMPLATES:
        template = _template_folder() / f"seeded-{customers}-{'-'.join(roles) or 'none'}.db"
        url = f"sqlite+aiosqlite:///{template}"
        segmenta("seed", "--customers", str(customers), "--database-url", url)
        tokens = {role: segmenta("token", "create", "--role", role, "--database-url", url).strip() for role in roles}
        _TEMPLATES[key] = (template, tokens)
    template, tokens = _TEMPLATES[key]
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)
    return dict(tokens)


async def _postgres_admin(url: str, statement: str) -> None:
    from sqlalchemy import text

    from segmenta.storage.engine import create_engine

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def new_postgres_database(server_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new, empty database on the PostgreSQL server of `server_url`, dropped afterwards
    (servers started on it may still be connected: the drop forces them off)."""
    from sqlalchemy.engine import make_url

    from segmenta.storage.engine import normalize_url

    base = make_url(normalize_url(server_url))
    admin = base.render_as_string(hide_password=False)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_postgres_admin(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_postgres_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    tokens: dict[str, str] = field(default_factory=dict)
    label: str = "segmenta serve"

    @classmethod
    def start(
        cls,
        tmp_path: Path,
        *,
        customers: int = 50,
        env: dict[str, str] | None = None,
        roles: tuple[str, ...] = ("admin", "viewer"),
        database_url: str | None = None,
        seed: bool = True,
        workers: int = 1,
    ) -> LiveServer:
        """Serve a new SQLite file in `tmp_path` with the demo data and one token per role (a copy of a
        seeded template, `seeded_sqlite`), once healthy.  With `database_url`, that database instead:
        seeded there unless `seed` is false, and new tokens made in it."""
        if database_url is None:
            path = tmp_path / "live.db"
            tokens = seeded_sqlite(path, customers=customers, roles=roles)
            return cls.serve(f"sqlite+aiosqlite:///{path}", tmp_path, env=env, tokens=tokens, workers=workers)
        if seed:
            segmenta("seed", "--customers", str(customers), "--database-url", database_url, env=env)
        tokens = {
            role: segmenta("token", "create", "--role", role, "--database-url", database_url, env=env).strip()
            for role in roles
        }
        return cls.serve(database_url, tmp_path, env=env, tokens=tokens, workers=workers)

    @classmethod
    def serve(
        cls,
        database_url: str,
        log_directory: Path,
        *,
        env: dict[str, str] | None = None,
        tokens: dict[str, str] | None = None,
        timeout: float = 60,
        workers: int = 1,
    ) -> LiveServer:
        """`segmenta serve --workers N` (one process unless asked: tests stay cheap) on a database as it
        is (several may share one), once /health answers.

        A port taken between `free_port` and the server's bind (by any process's connection) is
        retried on another port."""
        for attempt in range(3):
            port = free_port()
            try:
                return cls.launch(
                    [SEGMENTA, "serve", "--port", str(port), "--database-url", database_url, "--workers", str(workers)],
                    port,
                    log_directory,
                    env={"SEGMENTA_SCHEDULE_INTERVAL": "off", **(env or {})},
                    database_url=database_url,
                    tokens=tokens,
                    timeout=timeout,
                )
            except RuntimeError as error:
                if attempt == 2 or "address already in use" not in str(error):
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def launch(
        cls,
        command: list[str],
        port: int,
        log_directory: Path,
        *,
        env: dict[str, str] | None = None,
        database_url: str = "",
        tokens: dict[str, str] | None = None,
        label: str = "segmenta serve",
        timeout: float = 60,
    ) -> LiveServer:
        """Any server `command` listening on 127.0.0.1:`port`, its output logged, once /health answers."""
        log_path = log_directory / f"{label.replace(' ', '-')}-{port}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        server = cls(
            url=f"http://127.0.0.1:{port}", database_url=database_url, process=process, log_path=log_path,
            tokens=tokens or {}, label=label,
        )
        server.wait_healthy(timeout)
        return server

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited {self.process.returncode}: {self.log()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.label} did not become healthy: {self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def post(
        self,
        body: bytes | dict[str, Any],
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any]:
        """POST to /graphql; returns (status, parsed JSON body or raw text when it is not JSON)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(f"{self.url}/graphql", data=data, method="POST")
        request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", errors="replace")

    def query(self, query: str, variables: dict[str, Any] | None = None, *, role: str = "admin") -> tuple[int, Any]:
        return self.post({"query": query, "variables": variables or {}}, token=self.tokens[role])

    @contextmanager
    def graphql_ws(self, token: str, *, timeout: float = 30) -> Iterator[ClientConnection]:
        """A graphql-transport-ws connection to /graphql, acknowledged, `token` in its connection_init."""
        url = self.url.replace("http://", "ws://") + "/graphql"
        with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=timeout) as socket:
            socket.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            acknowledged = json.loads(socket.recv(timeout=timeout))
            assert acknowledged["type"] == "connection_ack", acknowledged
            yield socket

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
