"""No work goes on for a client that has gone or an operation past its time.

`run_until_disconnect` runs a request's handler in a task that is cancelled when the ASGI
server reports `http.disconnect` before the response has started.

`LoaderBatches` collects the DataLoader batches a request starts.  Strawberry starts each batch
in a task of its own from a loop callback, not as a child of the request's task, so cancelling
the request leaves them running; `cancel_all` stops them, and must run before the request's
database session is closed (a batch still running holds the session in the middle of a statement).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Generator, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from starlette.types import Message, Receive, Send
from strawberry.dataloader import dispatch_batch

Handler = Callable[[Receive, Send], Coroutine[Any, Any, None]]
_T = TypeVar("_T")

_current: ContextVar[LoaderBatches | None] = ContextVar("segmenta_loader_batches", default=None)


class LoaderBatches:
    """The DataLoader batch tasks started while `collecting()` is in effect (by any task it starts)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Future[Any]] = set()

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        _collect_batches_on(asyncio.get_running_loop())
        token = _current.set(self)
        try:
            yield
        finally:
            _current.reset(token)

    async def cancel_all(self) -> None:
        """Cancel every batch still running and wait until they have all ended."""
        running = [task for task in self.tasks if not task.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


def _collect_batches_on(loop: asyncio.AbstractEventLoop) -> None:
    """Install (once per loop) a task factory that hands each new batch task to the LoaderBatches of
    the context starting it; a factory installed before still makes every task."""
    previous = loop.get_task_factory()
    if getattr(previous, "collects_loader_batches", False):
        return

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Generator[Any, None, _T] | Coroutine[Any, Any, _T], /, **kwargs: Any
    ) -> asyncio.Future[_T]:
        task = previous(loop, coro, **kwargs) if previous is not None else asyncio.Task(coro, loop=loop, **kwargs)
        owner = _current.get()
        if owner is not None and getattr(coro, "cr_code", None) is dispatch_batch.__code__:
            owner.tasks.add(task)
            task.add_done_callback(owner.tasks.discard)
        return task

    factory.collects_loader_batches = True  # type: ignore[attr-defined]
    loop.set_task_factory(factory)


async def run_until_disconnect(handler: Handler, body: bytes, receive: Receive, send: Send) -> bool:
    """Run `handler` with `body` (already read from `receive`) as its request body, while watching
    `receive` for the client going away.  Returns True when the handler was cancelled for that.

    Once the response has started it is left to finish: cancelling then would only cut the
    answer short and interrupt the request's own clean-up."""
    gone = asyncio.Event()
    delivered = False
    started = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def tracked_send(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    work = asyncio.create_task(handler(replay, tracked_send))
    watcher = asyncio.create_task(watch())
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if work.done() or started:
            await work
            return False
        return True
    finally:
        for task in (work, watcher):
            task.cancel()
        await asyncio.gather(work, watcher, return_exceptions=True)
