"""Consumer tracking: a toy projection stays exact under redelivery, overlap and crashes."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from contactcenter.contracts.streams import stream_id
from contactcenter.eventstore import (
    STORE_SOURCE,
    Checkpoint,
    GlobalPosition,
    PgConnection,
    apply_once,
    load_global_position,
    load_position,
    reset_consumer,
    save_position,
)


class Crash(Exception):
    pass


@pytest.fixture
async def counters(pool, schema):
    """The toy read model: a counter per key, summing the events' `n`."""
    async with pool.acquire() as conn:
        await conn.execute(
            f"create table {schema}.counters (key text primary key, total bigint not null)"
        )
    return pool


def projection(schema: str, crash_on: uuid.UUID | None = None):
    async def apply(conn: PgConnection, event) -> None:
        await conn.execute(
            f"insert into {schema}.counters (key, total) values ($1, $2) "
            "on conflict (key) do update set total = counters.total + excluded.total",
            event.label,
            event.n,
        )
        if event.event_id == crash_on:
            raise Crash("the consumer died mid-batch")

    return apply


async def read_model(pool, schema: str) -> dict[str, int]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(f"select key, total from {schema}.counters")
    return {r["key"]: r["total"] for r in rows}


async def test_redelivery_overlap_and_crash_leave_an_exact_read_model(
    counters, schema, tenant_id, happened
):
    pool = counters
    events = [happened(tenant_id, n, label=f"k{n % 3}") for n in range(1, 13)]
    expected: dict[str, int] = {}
    for e in events:
        expected[e.label] = expected.get(e.label, 0) + e.n
    apply = projection(schema)

    assert await apply_once(pool, schema, "counter", events[:4], apply) == 4
    assert await apply_once(pool, schema, "counter", events[:4], apply) == 0  # redelivered
    assert await apply_once(pool, schema, "counter", events[2:8], apply) == 4  # overlapping

    # A crash mid-batch: the read model's writes and the claims roll back together...
    with pytest.raises(Crash):
        await apply_once(
            pool, schema, "counter", events[6:], projection(schema, events[9].event_id)
        )
    partial = {}
    for e in events[:8]:
        partial[e.label] = partial.get(e.label, 0) + e.n
    assert await read_model(pool, schema) == partial

    # ... and the redelivered batch (plus a duplicate inside it) applies exactly the rest.
    batch = [*events[6:], events[11]]
    assert await apply_once(pool, schema, "counter", batch, apply) == 4
    assert await read_model(pool, schema) == expected

    # Another consumer has its own bookkeeping.
    assert await apply_once(pool, schema, "other", events[:2], lambda c, e: asyncio.sleep(0)) == 2


async def test_concurrent_duplicate_batches_apply_once(counters, schema, tenant_id, happened):
    pool = counters
    events = [happened(tenant_id, 1, label="k") for _ in range(20)]
    applied = await asyncio.gather(
        *(apply_once(pool, schema, "counter", events, projection(schema)) for _ in range(5))
    )
    assert sum(applied) == 20
    assert await read_model(pool, schema) == {"k": 20}


async def test_replaying_the_store_from_zero_rebuilds_the_same_read_model(
    counters, pg_store, schema, tenant_id, happened
):
    pool = counters
    for n in range(1, 6):
        sid = stream_id("thing", tenant_id, str(n % 2))
        await pg_store.append(sid, [happened(tenant_id, n, label=f"k{n % 2}")], expected_version=-1)

    async def run_projection() -> None:
        checkpoint = await load_global_position(pool, schema, "counter")
        while page := await pg_store.read_all(checkpoint, limit=2):
            checkpoint = page[-1].global_position
            await apply_once(
                pool,
                schema,
                "counter",
                page,
                lambda conn, rec: projection(schema)(conn, _Fields(rec)),
                checkpoint=Checkpoint(STORE_SOURCE, checkpoint),
            )

    await run_projection()
    first = await read_model(pool, schema)
    assert first == {"k0": 2 + 4, "k1": 1 + 3 + 5}
    await run_projection()  # nothing new: nothing changes
    assert await read_model(pool, schema) == first

    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"truncate {schema}.counters")
        await reset_consumer(conn, schema, "counter")
    assert await load_global_position(pool, schema, "counter") == GlobalPosition.START
    await run_projection()
    assert await read_model(pool, schema) == first


class _Fields:
    """A RecordedEvent seen through the projection's eyes."""

    def __init__(self, recorded) -> None:
        self.event_id = recorded.event_id
        self.label = recorded.data["label"]
        self.n = recorded.data["n"]


async def test_positions_only_move_forward(pool, schema):
    await save_position(pool, schema, "c", Checkpoint("cc.routing.events.v1:3", 10))
    await save_position(pool, schema, "c", Checkpoint("cc.routing.events.v1:3", 7))
    assert await load_position(pool, schema, "c", "cc.routing.events.v1:3") == 10
    await save_position(pool, schema, "c", Checkpoint("cc.routing.events.v1:3", 11))
    assert await load_position(pool, schema, "c", "cc.routing.events.v1:3") == 11
    assert await load_position(pool, schema, "c", "cc.routing.events.v1:4") is None

    assert await load_global_position(pool, schema, "relay") == GlobalPosition.START
    await save_position(pool, schema, "relay", Checkpoint(STORE_SOURCE, GlobalPosition(9, 50)))
    await save_position(pool, schema, "relay", Checkpoint(STORE_SOURCE, GlobalPosition(8, 99)))
    assert await load_global_position(pool, schema, "relay") == GlobalPosition(9, 50)
    await save_position(pool, schema, "relay", Checkpoint(STORE_SOURCE, GlobalPosition(10, 1)))
    assert await load_global_position(pool, schema, "relay") == GlobalPosition(10, 1)


async def test_pruning_keeps_recent_claims_and_takes_older_events_as_applied(
    counters, schema, tenant_id, happened
):
    from datetime import UTC, datetime, timedelta

    from contactcenter.eventstore import prune_applied

    pool = counters
    now = datetime.now(UTC)
    old = [happened(tenant_id, 1, label="a", occurred_at=now - timedelta(days=9)) for _ in range(3)]
    recent = [happened(tenant_id, 10, label="a") for _ in range(2)]

    def at(e):
        return e.occurred_at

    apply = projection(schema)
    assert await apply_once(pool, schema, "counter", old + recent, apply, occurred_at=at) == 5
    async with pool.acquire() as conn:  # the old ones were applied 8 days ago
        await conn.execute(
            f"update {schema}.consumer_applied set applied_at = now() - interval '8 days' "
            "where event_id = any($1::uuid[])",
            [e.event_id for e in old],
        )
    assert await prune_applied(pool, schema, retention=timedelta(days=7), batch=2) == 3
    assert await prune_applied(pool, schema, retention=timedelta(days=7)) == 0
    async with pool.acquire() as conn:
        left = await conn.fetchval(f"select count(*) from {schema}.consumer_applied")
    assert left == 2

    # A redelivery of everything (e.g. republished after a broker lost its topics) changes
    # nothing: the recent ones by their claims, the old ones by the horizon.
    assert await apply_once(pool, schema, "counter", old + recent, apply, occurred_at=at) == 0
    assert await read_model(pool, schema) == {"a": 23}
    # A new event is applied as ever.
    fresh = happened(tenant_id, 100, label="a")
    assert await apply_once(pool, schema, "counter", [fresh], apply, occurred_at=at) == 1
    assert await read_model(pool, schema) == {"a": 123}
    # A rebuild forgets the horizon with the claims: everything applies again.
    await reset_consumer(pool, schema, "counter")
    async with pool.acquire() as conn:
        await conn.execute(f"truncate {schema}.counters")
    assert await apply_once(pool, schema, "counter", [*old, *recent, fresh], apply) == 6
    assert await read_model(pool, schema) == {"a": 123}
