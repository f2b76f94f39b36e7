"""The real `segmenta serve` process, for tests that must see what a user runs.

`LiveServer.start(...)` seeds a SQLite file with `segmenta seed`, makes tokens with
`segmenta token create`, starts `segmenta serve` on a free port and waits for
`/health`.  Everything goes through the installed console script, so a missing
dependency (a websocket library, say) fails here as it would for a user.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

SEGMENTA = str(Path(sys.executable).with_name("segmenta"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def segmenta(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run a segmenta command to completion and return its stdout (raises on a non-zero exit)."""
    completed = subprocess.run(
        [SEGMENTA, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if completed.returncode != 0:
        raise RuntimeError(f"segmenta {' '.join(args)} exited {completed.returncode}: {completed.stderr[-2000:]}")
    return completed.stdout


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
        """Seed (unless `seed` is false), create one token per role, serve, wait until healthy."""
        url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
        if seed:
            segmenta("seed", "--customers", str(customers), "--database-url", url, env=env)
        tokens = {
            role: segmenta("token", "create", "--role", role, "--database-url", url, env=env).strip()
            for role in roles
        }
        return cls.serve(url, tmp_path, env=env, tokens=tokens, workers=workers)

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
        is (several may share one), once /health answers."""
        port = free_port()
        return cls.launch(
            [SEGMENTA, "serve", "--port", str(port), "--database-url", database_url, "--workers", str(workers)],
            port,
            log_directory,
            env={"SEGMENTA_SCHEDULE_INTERVAL": "off", **(env or {})},
            database_url=database_url,
            tokens=tokens,
            timeout=timeout,
        )

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
