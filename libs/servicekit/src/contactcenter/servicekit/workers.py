"""Several processes serving one service's gRPC port, for a stateless, CPU-bound API.

A Python process runs its event loop on one core. A service whose gRPC handlers keep no state
in memory (every read and write goes to PostgreSQL, as with replicas) can serve one port from
several processes: the primary runs the whole service (migrations, broker, projections, outbox
relay, gRPC); each worker process serves gRPC only, on the same port, with its own database
pool; the kernel spreads the clients' connections over them (SO_REUSEPORT, Linux).

Workers are spawned (not forked: gRPC does not survive a fork) once the primary serves, are
restarted when one dies, are stopped with the primary, and stop by themselves when the primary
is gone. A service opts in by running `GrpcWorkers.run` as a background loop and setting
`ServiceApp.grpc_reuse_port` (see the profiles service).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any

from contactcenter.servicekit.app import ServiceApp

_log = logging.getLogger(__name__)

#: Builds the (not started) app from its settings: the service's `create_app`, a module-level
#: function (it is pickled by name into the worker process).
AppFactory = Callable[[Any], ServiceApp]

#: How often the primary checks its workers and a worker checks its primary.
CHECK_INTERVAL_S = 1.0
STOP_TIMEOUT_S = 8.0  # within ServiceApp.stop's wait for a background loop


def run_grpc_worker(factory: AppFactory, settings: Any, port: int, primary_pid: int) -> None:
    """The worker process's entry point: serve gRPC on `port` until SIGTERM/SIGINT or until
    the primary process is gone."""
    app = factory(settings.model_copy(update={"grpc_port": port}))
    app.grpc_reuse_port = True
    app.run_coroutine(_serve(app, primary_pid))


async def _serve(app: ServiceApp, primary_pid: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await app.start_grpc_only()
        while not stop.is_set() and os.getppid() == primary_pid:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_INTERVAL_S)
    finally:
        await app.stop()


class GrpcWorkers:
    """`count` worker processes beside the primary, kept running while `run` runs."""

    def __init__(
        self, name: str, factory: AppFactory, settings: Any, count: int, port: Callable[[], int]
    ) -> None:
        self.name = name
        self.count = count
        self._factory = factory
        self._settings = settings
        self._port = port
        self._context = multiprocessing.get_context("spawn")
        self.processes: list[BaseProcess | None] = [None] * count

    def _spawn(self, index: int) -> BaseProcess:
        process = self._context.Process(
            target=run_grpc_worker,
            args=(self._factory, self._settings, self._port(), os.getpid()),
            name=f"{self.name}-grpc-worker-{index + 1}",
            daemon=True,
        )
        process.start()
        _log.info("started %s (pid %s)", process.name, process.pid)
        return process

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the workers running until `stop` is set, then stop them."""
        try:
            while not stop.is_set():
                for index, process in enumerate(self.processes):
                    if process is not None and process.is_alive():
                        continue
                    if process is not None:
                        _log.warning(
                            "%s exited (%s); restarting it", process.name, process.exitcode
                        )
                    self.processes[index] = self._spawn(index)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), CHECK_INTERVAL_S)
        finally:
            await asyncio.to_thread(self._stop_all)

    def _stop_all(self) -> None:
        running = [p for p in self.processes if p is not None and p.is_alive()]
        for process in running:
            process.terminate()  # SIGTERM: drains its RPCs like the primary
        for process in running:
            process.join(STOP_TIMEOUT_S)
            if process.is_alive():
                _log.warning("%s did not stop in time; killing it", process.name)
                process.kill()
                process.join()
        self.processes = [None] * self.count
