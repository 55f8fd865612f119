"""Append throughput of PostgresEventStore: N concurrent writers, 1-3 events per append.

    uv run python libs/eventstore/scripts/append_throughput.py [--writers 100] [--seconds 5]

Uses DATABASE_URL when set, else starts a durable (fsync on) local server in a temp dir.
Compares the NOTIFY modes: none, after the commit (the store's default) and inside the append
transaction (the naive way). Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import asyncpg

from contactcenter.contracts.events import DomainEvent
from contactcenter.eventstore import AppendResult, PostgresEventStore, apply_migrations

#: off: no NOTIFY; coalesced: the store's default (one NOTIFY after the commit, shared by the
#: appends completing meanwhile); each: one NOTIFY statement after every append's commit;
#: in_transaction: NOTIFY inside the append's own transaction (the naive way).
MODES = ("off", "coalesced", "each", "in_transaction")


async def _no_reset(conn: object) -> None:
    """A pool `reset` that skips asyncpg's reset query (one round trip per release)."""


class ThingHappened(DomainEvent):
    event_type: ClassVar[str] = "bench.ThingHappened.v1"
    n: int
    text: str


class NotifyInTransaction(PostgresEventStore):
    """NOTIFY inside the append's own transaction (its statement), the naive way."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        super().__init__(pool, schema, notify=False)
        channel = self.channel.replace("'", "''")
        final = " select cur.version as current_version, p.*"
        assert final in self._sql_append
        self._sql_append = self._sql_append.replace(final, f"{final}, pg_notify('{channel}', '')")


class NotifyEachAppend(PostgresEventStore):
    async def append(self, *args: Any, **kwargs: Any) -> AppendResult:
        result = await super().append(*args, **kwargs)
        async with self._pool.acquire() as conn:
            await conn.execute(self._sql_notify, self.channel)
        return result


async def _writers(
    url: str, schema: str, mode: str, writers: int, seconds: float, start_at: float, reset: bool
) -> float:
    """Events per second of `writers` concurrent writers over `seconds` from `start_at`."""
    pool = await asyncpg.create_pool(
        url, min_size=writers, max_size=writers, reset=None if reset else _no_reset
    )
    if mode == "in_transaction":
        store: PostgresEventStore = NotifyInTransaction(pool, schema)
    elif mode == "each":
        store = NotifyEachAppend(pool, schema, notify=False)
    else:
        store = PostgresEventStore(pool, schema, notify=mode == "coalesced")
    tenant = "t1"
    counts = [0] * writers
    streams = [f"bench/{tenant}/{uuid.uuid4()}" for _ in range(writers)]
    # Warm up: every connection prepares the statement (and introspects its types) once.
    await asyncio.gather(
        *(
            store.append(s, [ThingHappened(tenant_id=tenant, n=0, text="")], expected_version=0)
            for s in streams
        )
    )
    await asyncio.sleep(max(0.0, start_at - time.time()))  # all processes start together
    started = time.monotonic()
    deadline = started + seconds

    async def writer(i: int) -> None:
        version = 1
        while time.monotonic() < deadline:
            events = [
                ThingHappened(tenant_id=tenant, n=version + k, text="x" * 40)
                for k in range(random.randint(1, 3))
            ]
            result = await store.append(streams[i], events, expected_version=version)
            version = result.last_version
            counts[i] += len(events)

    try:
        await asyncio.gather(*(writer(i) for i in range(writers)))
        elapsed = time.monotonic() - started
        await store.aclose()
    finally:
        await pool.close()
    return sum(counts) / elapsed


def _worker(
    url: str, schema: str, mode: str, writers: int, seconds: float, start_at: float, reset: bool
) -> float:
    return asyncio.run(_writers(url, schema, mode, writers, seconds, start_at, reset))


async def _listen(url: str, schema: str, seconds: float) -> int:
    """A relay-like listener, so NOTIFY has someone to deliver to."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    store = PostgresEventStore(pool, schema)
    wakeups = 0
    deadline = time.monotonic() + seconds
    try:
        async with store.listener() as appends:
            while time.monotonic() < deadline:
                wakeups += await appends.wait(0.5)
    finally:
        await pool.close()
    return wakeups


async def run_mode(
    url: str, mode: str, writers: int, seconds: float, processes: int, reset: bool
) -> float:
    schema = f"bench_{mode}_{uuid.uuid4().hex[:6]}"
    await apply_migrations(url, schema)
    loop = asyncio.get_running_loop()
    listener = asyncio.create_task(_listen(url, schema, seconds + 5))
    share = [writers // processes + (1 if i < writers % processes else 0) for i in range(processes)]
    start_at = time.time() + 4.0  # time to spawn the processes, fill their pools, warm up
    with ProcessPoolExecutor(processes) as executor:
        futures = [
            loop.run_in_executor(executor, _worker, url, schema, mode, n, seconds, start_at, reset)
            for n in share
        ]
        rate = sum(await asyncio.gather(*futures))
    wakeups = await listener
    if mode != "off":
        print(f"  ({mode}: the listener woke {wakeups / (seconds + 5):.0f} times/s)", flush=True)
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES), help="a subset of " + ",".join(MODES))
    parser.add_argument(
        "--no-pool-reset",
        action="store_true",
        help="create the pools with a no-op reset (asyncpg's default costs a round trip)",
    )
    args = parser.parse_args()

    server = None
    url = os.environ.get("DATABASE_URL")
    tmp = None
    if not url:
        from contactcenter.infra import start_postgres

        tmp = tempfile.TemporaryDirectory(prefix="cc-es-bench-")
        server = start_postgres(Path(tmp.name) / "pg", durable=True, fresh=True)
        url = server.url
        print(f"started a durable PostgreSQL at {url}", flush=True)
    try:
        modes = [m for m in MODES if m in args.modes.split(",")]
        figures: dict[str, list[float]] = {m: [] for m in modes}
        for r in range(args.rounds):
            for mode in modes[r % len(modes) :] + modes[: r % len(modes)]:  # rotate the order
                rate = await run_mode(
                    url, mode, args.writers, args.seconds, args.processes, not args.no_pool_reset
                )
                figures[mode].append(rate)
                print(f"round {r + 1} notify={mode:<15} {rate:8.0f} events/s", flush=True)
        # The median over rounds: these machines are shared and noisy.
        best = {m: statistics.median(v) for m, v in figures.items()}
        summary: dict[str, object] = {"writers": args.writers, "pool_reset": not args.no_pool_reset}
        for mode, rate in best.items():
            summary[f"events_per_s_notify_{mode}"] = round(rate)
        for mode, rate in best.items():
            if mode != "off" and "off" in best:
                summary[f"ratio_{mode}_vs_off"] = round(rate / best["off"], 3)
        print(json.dumps(summary))
    finally:
        if server is not None:
            server.stop()
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
