"""`segmenta serve --workers N`: N server processes on one listening socket (docs/cli.md, serve).

With one worker the app runs in the command's own process, as always.  With more, uvicorn's
supervisor (the parent) binds the socket once and starts N child processes that each import
`segmenta.server:worker_app` and accept on that socket; the kernel hands each connection to one
of them.  The children read their database from SEGMENTA_DATABASE_URL, which the parent sets to
the URL it migrated *before* any child starts, so the schema is upgraded once, never by two
processes at the same time.

Each child gets a listening socket of its own on the same port (SO_REUSEPORT), so the kernel
spreads new connections evenly over the workers; with one shared socket, an idle machine hands
nearly every connection to the same worker.  A keep-alive connection stays with its worker.

The parent stops every child on SIGINT or SIGTERM (each finishes its lifespan: runs still going
are marked interrupted) and then exits.  A child that dies is logged at ERROR with its exit code
and replaced; a child that cannot start at all (a bad setting, an unreachable database) stops
the parent.  What makes several processes safe is elsewhere: the scheduled apply runs in one of
them at a time (domain/routing/scheduler.py), runs are locked across processes (storage/locks.py),
and events reach the subscribers of every process (domain/event_relay.py).
"""

from __future__ import annotations

import logging
import os
import socket

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

logger = logging.getLogger("uvicorn.error")

WORKER_APP = "segmenta.server:worker_app"
# How long a worker may take to answer the supervisor's ping before it is killed as hung (uvicorn's
# default, 5 s, killed workers still starting on a loaded machine; a dead one is seen at once anyway).
HEALTHCHECK_SECONDS = 30


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has CPU affinity
        return max(1, os.cpu_count() or 1)


class Supervisor(Multiprocess):
    """uvicorn's supervisor with a listening socket per worker (when there is one per worker), and
    loud about a worker that died: logged at ERROR with its exit code, replaced on its own socket."""

    def init_processes(self) -> None:
        for index in range(self.processes_num):
            process = Process(self.config, [self.sockets[index % len(self.sockets)]])
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        # uvicorn's own loop, except that the replacement takes the dead worker's socket.
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung, or already gone
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                logger.error("worker process [%s] failed to start: stopping the server", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.error(
                "worker process [%s] exited with code %s; its connections were dropped, another worker "
                "is started in its place",
                process.pid,
                process.exitcode,
            )
            replacement = Process(self.config, [self.sockets[index % len(self.sockets)]])
            replacement.start()
            self.processes[index] = replacement


def listening_sockets(config: Config) -> list[socket.socket]:
    """One socket per worker on the same address (SO_REUSEPORT: the kernel spreads new connections
    evenly over them), or uvicorn's one shared socket where the platform has no SO_REUSEPORT (then
    the workers race for each connection, and the one that last went idle tends to win)."""
    if not hasattr(socket, "SO_REUSEPORT") or config.uds is not None or config.fd is not None:
        return [config.bind_socket()]
    family = socket.AF_INET6 if config.host and ":" in config.host else socket.AF_INET
    sockets: list[socket.socket] = []
    port = config.port
    try:
        for _ in range(config.workers):
            bound = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
            sockets.append(bound)
            bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            bound.bind((config.host, port))
            port = bound.getsockname()[1]  # port 0: the others take the one the first was given
            bound.set_inheritable(True)
    except OSError as error:
        for bound in sockets:
            bound.close()
        logger.error("cannot listen on %s:%s: %s", config.host, config.port, error)
        raise SystemExit(STARTUP_FAILURE) from error
    logger.info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", config.host, port)
    return sockets


def serve_workers(database_url: str, config: Config) -> None:
    """Serve `config` (an import string app, `config.workers` > 1) in supervised child processes."""
    os.environ["SEGMENTA_DATABASE_URL"] = database_url  # read by each child's worker_app
    sockets = listening_sockets(config)
    try:
        Supervisor(config, sockets=sockets).run()
    finally:
        for bound in sockets:
            bound.close()


def worker_config(
    host: str, port: int, workers: int, *, log_config: dict[str, object], ws_max_size: int
) -> Config:
    return Config(
        WORKER_APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=log_config,
        ws_max_size=ws_max_size,
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
    )
