"""The routing service's snapshotter process: `python -m contactcenter.routing.snapshotter`.

The service starts it as a child (`SnapshotterProcess`, one of its background loops), so that
pickling an engine never holds the loop that decides (see `application/snapshots.py`). The
child snapshots due tenants every `--poll-s` seconds; one child per schema works at a time (a
PostgreSQL advisory lock: the children of other instances stand by); it ends when its parent
is gone (a SIGKILLed service leaves no orphan behind).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import zlib

from contactcenter.eventstore import PostgresEventStore, create_pool
from contactcenter.observability.logs import configure_logging
from contactcenter.routing.application.snapshots import Snapshotter, deep_pickling

_log = logging.getLogger(__name__)

#: The child reads the database URL from here, not its command line (which `ps` shows).
DATABASE_URL_ENV = "CC_ROUTING_SNAPSHOTTER_DATABASE_URL"
#: How long a stopping child may take before it is killed.
STOP_TIMEOUT_S = 10.0


class SnapshotterProcess:
    """A background loop of the service: runs the snapshotter child until `stop` is set (the
    service's supervisor starts the loop again, so a child that died is started again)."""

    def __init__(
        self,
        *,
        database_url: str,
        schema: str,
        every: int,
        explain_capacity: int,
        poll_s: float,
        log_level: str,
    ) -> None:
        self._env = {**os.environ, DATABASE_URL_ENV: database_url}
        self._args = [
            f"--schema={schema}",
            f"--every={every}",
            f"--explain-capacity={explain_capacity}",
            f"--poll-s={poll_s}",
            f"--parent-pid={os.getpid()}",
            f"--log-level={log_level}",
        ]

    async def run(self, stop: asyncio.Event) -> None:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", __name__, *self._args, env=self._env
        )
        stopping = asyncio.create_task(stop.wait())
        exited = asyncio.create_task(child.wait())
        try:
            await asyncio.wait((stopping, exited), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if child.returncode is None:
                child.terminate()
                try:
                    async with asyncio.timeout(STOP_TIMEOUT_S):
                        await exited
                except TimeoutError:
                    child.kill()
                    await exited
        if not stop.is_set():
            raise RuntimeError(f"the snapshotter process ended (exit code {child.returncode})")


async def serve(
    database_url: str,
    schema: str,
    *,
    every: int,
    explain_capacity: int,
    poll_s: float,
    parent_pid: int,
    stop: asyncio.Event,
) -> None:
    """Snapshot due tenants every `poll_s` until `stop` is set or the parent is gone."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    store = PostgresEventStore(pool, schema, notify=False)
    snapshotter = Snapshotter(store, every=every, explain_capacity=explain_capacity)
    lock_key = zlib.crc32(f"routing-snapshotter:{schema}".encode())

    def orphaned() -> bool:
        return os.getppid() != parent_pid

    try:
        async with pool.acquire() as lock_conn:
            while not await lock_conn.fetchval("select pg_try_advisory_lock($1)", lock_key):
                if orphaned() or await _stopped(stop, poll_s):
                    return
            _log.info("routing snapshotter of %s: snapshots every %d events", schema, every)
            while not orphaned():
                try:
                    for tenant_id in await snapshotter.snapshot_due():
                        _log.debug("snapshot of %s saved", tenant_id)
                except Exception:  # a snapshot only shortens rebuilds: try again next time
                    _log.exception("routing snapshotter of %s: a pass failed", schema)
                if await _stopped(stop, poll_s):
                    return
    finally:
        await pool.close()


async def _stopped(stop: asyncio.Event, wait_s: float) -> bool:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_s):
            await stop.wait()
    return stop.is_set()


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(
        os.environ[DATABASE_URL_ENV],
        args.schema,
        every=args.every,
        explain_capacity=args.explain_capacity,
        poll_s=args.poll_s,
        parent_pid=args.parent_pid,
        stop=stop,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schema", required=True)
    parser.add_argument("--every", type=int, required=True)
    parser.add_argument("--explain-capacity", type=int, required=True)
    parser.add_argument("--poll-s", type=float, default=2.0)
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging("routing-snapshotter", args.log_level)
    deep_pickling()  # before any thread exists (asyncio's executor starts its own later)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
