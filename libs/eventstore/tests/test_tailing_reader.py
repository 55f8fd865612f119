"""A reader tailing read_all by checkpoint never skips an event that a concurrent writer commits
late, and sees each stream in version order. The CONTROL test runs the same workload with the
naive `position > last` reader and shows that it does skip, so this workload can catch it."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from contactcenter.contracts.errors import ConcurrencyConflict
from contactcenter.contracts.streams import stream_id
from contactcenter.eventstore import ANY, GlobalPosition, PgConnection, PostgresEventStore

WRITERS = 8
STREAMS_PER_ROUND = 4
APPENDS_PER_WRITER = 8
ROUNDS = 20
HOLD_S = 0.004  # the longest a writer keeps its transaction open after inserting


@dataclass
class Seen:
    """What a reader saw, in order: (event_id, stream_id, version)."""

    items: list[tuple[uuid.UUID, str, int]] = field(default_factory=list)


async def _hold_open(conn: PgConnection) -> None:
    # Commit a random while after inserting: transactions then commit in another order than
    # the one in which they got their positions (what a late commit looks like).
    await asyncio.sleep(random.uniform(0, HOLD_S))


async def _run_workload(
    pool: asyncpg.Pool,
    schema: str,
    happened: Callable[..., object],
    read_page: Callable[[], Awaitable[int]],
    seen: Seen,
    drain_s: float,
) -> list[uuid.UUID]:
    """WRITERS concurrent writers (separate connections) append to shared streams for
    ROUNDS rounds while one reader tails with `read_page` (returns how many it read).
    Once the writers are done, the reader drains for up to `drain_s` until it has seen as
    many events as were committed. Returns the ids of every committed event."""
    store = PostgresEventStore(pool, schema, notify=False, _hold_transaction=_hold_open)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    committed: list[uuid.UUID] = []
    writing = True

    async def writer(round_: int) -> None:
        for i in range(APPENDS_PER_WRITER):
            entity = f"r{round_}-s{random.randrange(STREAMS_PER_ROUND)}"
            events = [happened(tenant, i) for _ in range(random.randint(1, 3))]
            try:
                await store.append(stream_id("race", tenant, entity), events, expected_version=ANY)
            except ConcurrencyConflict:
                continue  # ANY gave up retrying: nothing of it was stored
            committed.extend(e.event_id for e in events)

    async def reader() -> None:
        deadline = None
        while True:
            got = await read_page()
            if writing:
                if not got:
                    await asyncio.sleep(0.001)
                continue
            # Writers are done and every append returned: drain what is left.
            deadline = deadline or time.monotonic() + drain_s
            if not got and (len(seen.items) >= len(committed) or time.monotonic() > deadline):
                return
            if not got:
                await asyncio.sleep(0.01)

    reading = asyncio.create_task(reader())
    try:
        for round_ in range(ROUNDS):
            await asyncio.gather(*(writer(round_) for _ in range(WRITERS)))
    finally:
        writing = False
    await asyncio.wait_for(reading, 30)
    return committed


def _assert_streams_in_version_order(seen: Seen) -> None:
    versions: dict[str, list[int]] = {}
    for _, sid, version in seen.items:
        versions.setdefault(sid, []).append(version)
    for sid, got in versions.items():
        assert got == list(range(1, len(got) + 1)), f"{sid} read out of order: {got}"


async def test_tailing_read_all_never_skips_late_commits(pool, schema, happened) -> None:
    reader_store = PostgresEventStore(pool, schema, notify=False)
    seen = Seen()
    checkpoint = GlobalPosition.START

    async def read_page() -> int:
        nonlocal checkpoint
        page = await reader_store.read_all(checkpoint, limit=50)
        if page:
            checkpoint = page[-1].global_position
            seen.items += [(r.event_id, r.stream_id, r.version) for r in page]
        return len(page)

    committed = await _run_workload(pool, schema, happened, read_page, seen, drain_s=10)

    ids = [event_id for event_id, _, _ in seen.items]
    assert len(committed) > ROUNDS * WRITERS * APPENDS_PER_WRITER // 2
    assert len(ids) == len(set(ids)), "an event was read twice"
    assert set(ids) == set(committed), f"skipped {len(set(committed) - set(ids))} events"
    _assert_streams_in_version_order(seen)


async def test_CONTROL_naive_position_reader_skips_late_commits(pool, schema, happened) -> None:
    """CONTROL, expected to "fail" in the reader: proves the workload above can catch a skip.

    The naive tail `where position > last order by position` misses a row whose transaction
    took a position before another one but committed after the reader moved past it.
    """
    seen = Seen()
    last = 0

    async def read_page() -> int:
        nonlocal last
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                f"select position, event_id, stream_id, version from {schema}.events "
                "where position > $1 order by position limit 50",
                last,
            )
        if rows:
            last = rows[-1]["position"]
            seen.items += [(r["event_id"], r["stream_id"], r["version"]) for r in rows]
        return len(rows)

    # Nothing is in flight once the writers are done: what it has not seen by then it never will.
    committed = await _run_workload(pool, schema, happened, read_page, seen, drain_s=0.2)

    missing = set(committed) - {event_id for event_id, _, _ in seen.items}
    print(f"CONTROL: the naive reader skipped {len(missing)} of {len(committed)} events")
    assert missing, "the naive reader saw everything: the workload no longer races"
