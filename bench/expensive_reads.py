"""Expensive `where` reads in parallel against a real `segmenta serve`: do cheap requests still get through?

    .venv/bin/python bench/expensive_reads.py [--customers 300] [--heavy 16] [--terms 440] [--unguarded]

Seeds a SQLite file with `segmenta seed --customers N` (in a new temporary directory), starts one
`segmenta serve` on 127.0.0.1, then sends `--heavy` concurrent `customers(where: …)` reads of
`--terms` `tags contains …` terms joined by `or` (each term a lookup per customer), and, while they
run, a cheap read (`customers(first: 2) { totalCount }`) every 0.2 s. Prints how each heavy read
ended (ok, BUSY, TIMEOUT, HTTP 5xx, …) and the cheap reads' latency (p50, max) and failures.

The term limit is raised to let the heavy reads in (`SEGMENTA_WHERE_MAX_TERMS`); with the default
limit of 100 they are refused at once. `--unguarded` also switches the statement timeout off and
lets expensive reads take the whole pool (SEGMENTA_EXPENSIVE_READS=15, the default pool's 5 + 10),
which is how the server behaved before those guards. Any SEGMENTA_ setting in the environment is
passed on (e.g. SEGMENTA_STATEMENT_TIMEOUT=5).
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.live_server import LiveServer  # noqa: E402 — the served process, as the tests start it

HEAVY = "query($w: String!) { customers(where: $w, first: 1) { totalCount } }"
CHEAP = "{ customers(first: 2) { totalCount } }"


def outcome(response: tuple[int, Any]) -> str:
    status, body = response
    if status >= 500:
        return f"HTTP {status}"
    if isinstance(body, dict) and body.get("errors"):
        return str(body["errors"][0].get("extensions", {}).get("code"))
    return "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--heavy", type=int, default=16)
    parser.add_argument("--terms", type=int, default=440)
    parser.add_argument("--unguarded", action="store_true")
    arguments = parser.parse_args()

    env = {"SEGMENTA_WHERE_MAX_TERMS": str(max(arguments.terms, 100))}
    if arguments.unguarded:
        env |= {"SEGMENTA_STATEMENT_TIMEOUT": "off", "SEGMENTA_EXPENSIVE_READS": "15"}
    condition = " or ".join(f"tags contains t{number % 400}" for number in range(arguments.terms))
    with tempfile.TemporaryDirectory() as directory:
        server = LiveServer.start(Path(directory), customers=arguments.customers, env=env)
        try:
            heavy: list[tuple[str, float]] = []
            cheap: list[tuple[str, float, float]] = []  # outcome, latency, sent at (s after the start)

            def heavy_read() -> None:
                started = time.monotonic()
                result = outcome(server.post({"query": HEAVY, "variables": {"w": condition}},
                                             token=server.tokens["admin"], timeout=600))
                heavy.append((result, time.monotonic() - started))

            threads = [threading.Thread(target=heavy_read) for _ in range(arguments.heavy)]
            began = time.monotonic()
            for thread in threads:
                thread.start()
            while any(thread.is_alive() for thread in threads):
                started = time.monotonic()
                try:
                    result = outcome(server.post({"query": CHEAP}, token=server.tokens["admin"], timeout=120))
                except OSError as error:  # a dropped connection or a client timeout
                    result = type(error).__name__
                cheap.append((result, time.monotonic() - started, started - began))
                time.sleep(0.2)
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - began
        finally:
            server.stop()

    mode = "unguarded" if arguments.unguarded else "guarded"
    print(f"{mode}: {arguments.heavy} heavy reads of {arguments.terms} terms over {arguments.customers} customers, "
          f"{elapsed:.1f} s until the last ended")
    print("  heavy:", dict(collections.Counter(result for result, _ in heavy)),
          f"slowest {max(seconds for _, seconds in heavy):.1f} s")
    latencies = [seconds for _, seconds, _ in cheap]
    slowest = max(cheap, key=lambda item: item[1])
    print(f"  cheap: {len(cheap)} reads,", dict(collections.Counter(result for result, _, _ in cheap)),
          f"p50 {statistics.median(latencies):.2f} s, max {slowest[1]:.2f} s (sent at {slowest[2]:.1f} s)")


if __name__ == "__main__":
    main()
