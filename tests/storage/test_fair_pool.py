"""The pool serves waiting requests in arrival order (storage/fair_pool.py): a returned connection goes
to the longest waiter, a newcomer never takes one ahead of those waiting, and a waiter that gives up
(time-out, cancellation) neither blocks the line nor loses a connection handed to it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util import queue as sqla_queue

from segmenta.storage.engine import create_engine
from segmenta.storage.fair_pool import FairAsyncQueuePool, FairQueue


async def _get(queue: FairQueue[str], timeout: float | None = None) -> str:
    return await greenlet_spawn(queue.get, True, timeout)


async def test_waiters_are_served_in_arrival_order_and_a_newcomer_does_not_jump_the_line() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=2)
    served: list[tuple[int, str]] = []

    async def wait(number: int) -> None:
        served.append((number, await _get(queue)))

    waiters = []
    for number in range(3):
        waiters.append(asyncio.ensure_future(wait(number)))
        await asyncio.sleep(0)  # each is waiting before the next arrives
    queue.put_nowait("a")
    # The connection went to waiter 0; someone still waits, so a newcomer gets nothing at once.
    with pytest.raises(sqla_queue.Empty):
        queue.get_nowait()
    queue.put_nowait("b")
    queue.put_nowait("c")
    await asyncio.gather(*waiters)
    assert served == [(0, "a"), (1, "b"), (2, "c")]
    queue.put_nowait("d")
    assert queue.get_nowait() == "d"  # nobody waits: an idle connection is taken at once


async def test_a_waiter_that_times_out_leaves_the_line() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)
    with pytest.raises(sqla_queue.Empty):
        await _get(queue, timeout=0.01)
    queue.put_nowait("a")
    assert queue.get_nowait() == "a"


async def test_a_cancelled_waiter_passes_on_what_it_was_handed() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)
    first = asyncio.ensure_future(_get(queue))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(_get(queue))
    await asyncio.sleep(0)
    queue.put_nowait("a")  # handed to the first waiter, which is cancelled before it runs
    first.cancel()
    assert await second == "a"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_pooled_engines_use_it_and_serve_connections_in_order(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fair.db'}", pool_size=1, max_overflow=0)
    assert isinstance(engine.pool, FairAsyncQueuePool)
    order: list[int] = []

    async def use(number: int, hold: float) -> None:
        async with engine.connect() as connection:
            order.append(number)
            await connection.execute(text("select 1"))
            await asyncio.sleep(hold)

    holder = asyncio.ensure_future(use(0, 0.05))
    await asyncio.sleep(0.01)
    others: list[Any] = []
    for number in range(1, 5):
        others.append(asyncio.ensure_future(use(number, 0)))
        await asyncio.sleep(0.001)
    await asyncio.gather(holder, *others)
    assert order == [0, 1, 2, 3, 4]
    await engine.dispose()
