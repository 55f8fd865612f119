"""The relay's fast path, on the real PostgreSQL and broker: the appends of its own process are
published at their commit, without reading them back; appends it was not handed (another
process's, one committed in a caller's transaction) go through the read path, and neither
path overtakes the other within a stream or within this process."""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from contactcenter.contracts.topics import topic_for
from contactcenter.eventbus import OutboxRelay
from contactcenter.eventbus.relay import LeadershipLost
from contactcenter.eventstore import PostgresEventStore
from contactcenter.messaging.admin import ensure_topics
from contactcenter.messaging.broker import create_broker
from contactcenter.messaging.settings import KafkaSettings

from .conftest import ProbeRecorded

TOPIC = topic_for("interactions").name
STREAMS = 5


class _Topic:
    """What the tenant's partition holds, in order: (event id, stream, version) per record."""

    def __init__(self, bootstrap: str, tenant_id: str) -> None:
        self._tenant = tenant_id.encode()
        self.records: list[tuple[str, str, int]] = []
        self._consumer = AIOKafkaConsumer(
            TOPIC,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=20,
        )

    async def read_until_seen(self, ids: set[str], within_s: float = 30) -> None:
        async with asyncio.timeout(within_s):
            while not ids <= {r[0] for r in self.records}:
                for batch in (await self._consumer.getmany(timeout_ms=200)).values():
                    for r in batch:
                        if r.key == self._tenant:
                            h = {k: v.decode() for k, v in r.headers}
                            self.records.append(
                                (h["ce_id"], h["ce_subject"], int(h["ce_streamversion"]))
                            )

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[_Topic]:
        await self._consumer.start()
        try:
            yield self
        finally:
            await self._consumer.stop()


@contextlib.asynccontextmanager
async def _running_relay(
    pool: asyncpg.Pool, store: PostgresEventStore, bootstrap: str
) -> AsyncIterator[OutboxRelay]:
    broker = create_broker(KafkaSettings(bootstrap_servers=bootstrap, client_id="relay-commit"))
    relay = OutboxRelay(pool=pool, store=store, broker=broker, source="/contactcenter/test")
    await broker.start()
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        yield relay
    finally:
        stop.set()
        await running
        await broker.stop()


async def _append(store: PostgresEventStore, tenant_id: str, seq: int) -> str:
    event = ProbeRecorded(tenant_id=tenant_id, seq=seq)
    await store.append(f"probe/{tenant_id}/s{seq % STREAMS}", [event], expected_version=-1)
    return str(event.event_id)


async def _caught_up(relay: OutboxRelay, store: PostgresEventStore) -> None:
    async with asyncio.timeout(10):
        while relay.position != await store.head():
            await asyncio.sleep(0.05)


async def test_this_process_publishes_at_commit_and_no_stream_is_overtaken(
    pool: asyncpg.Pool,
    store: PostgresEventStore,
    schema: str,
    kafka_bootstrap: str,
    tenant_id: str,
) -> None:
    await ensure_topics(kafka_bootstrap, [TOPIC])
    # A second writer on the same schema stands for another process: its appends are not
    # handed to the relay.
    other = PostgresEventStore(pool, schema)
    async with (
        _Topic(kafka_bootstrap, tenant_id).open() as topic,
        _running_relay(pool, store, kafka_bootstrap) as relay,
    ):
        # One append at a time, each published before the next (the relay is idle when the
        # next one commits): all but those made before the relay first caught up go at once.
        for seq in range(40):
            await topic.read_until_seen({await _append(store, tenant_id, seq)})
        assert relay.published_at_commit >= 35, relay.published_at_commit

        # Both writers append to the same streams at once: each stream's events are
        # interleaved between the two paths.
        mixed = await asyncio.gather(
            *(_append(store if seq % 2 else other, tenant_id, seq) for seq in range(40, 240))
        )
        await topic.read_until_seen(set(mixed))
        await _caught_up(relay, store)
        at_commit = relay.published_at_commit
    await other.aclose()

    ids = [r[0] for r in topic.records]
    assert len(ids) == len(set(ids)) == 240, "each event once, none read back and sent again"
    versions: dict[str, list[int]] = defaultdict(list)
    for _, stream, version in topic.records:
        versions[stream].append(version)
    for stream, seen in versions.items():
        assert seen == list(range(1, len(seen) + 1)), f"{stream} out of order: {seen}"
    print(f"{at_commit} of 240 events published at commit")


async def test_while_only_this_process_appends_the_read_back_waits(
    pool: asyncpg.Pool,
    store: PostgresEventStore,
    kafka_bootstrap: str,
    tenant_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await ensure_topics(kafka_bootstrap, [TOPIC])
    reads = 0
    read_all = store.read_all

    async def counted_read_all(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await read_all(*args, **kwargs)

    monkeypatch.setattr(store, "read_all", counted_read_all)
    async with (
        _Topic(kafka_bootstrap, tenant_id).open() as topic,
        _running_relay(pool, store, kafka_bootstrap) as relay,
    ):
        await topic.read_until_seen({await _append(store, tenant_id, 0)})
        await _caught_up(relay, store)
        reads_before = reads
        for seq in range(1, 61):
            await topic.read_until_seen({await _append(store, tenant_id, seq)})
        during = reads - reads_before
        # Read back within `checkpoint_every_s` once the appends stop: the checkpoint follows.
        await _caught_up(relay, store)

    print(f"{during} reads for 60 appends")
    # Each append used to be read back at once (a read that found it, one that found nothing).
    assert during < 30, f"{during} reads for 60 appends published at commit"
    assert len({r[0] for r in topic.records}) == len(topic.records) == 61


async def test_an_append_made_in_a_callers_transaction_is_not_overtaken(
    pool: asyncpg.Pool, store: PostgresEventStore, kafka_bootstrap: str, tenant_id: str
) -> None:
    await ensure_topics(kafka_bootstrap, [TOPIC])
    async with (
        _Topic(kafka_bootstrap, tenant_id).open() as topic,
        _running_relay(pool, store, kafka_bootstrap) as relay,
    ):
        first = await _append(store, tenant_id, 0)
        await topic.read_until_seen({first})
        order: list[str] = []
        for round_no in range(3):
            # An older transaction still open keeps what commits now from the read path
            # (held back), so only the fast path could publish it meanwhile.
            async with pool.acquire() as blocker, blocker.transaction():
                await blocker.execute("select pg_current_xact_id()")
                # A batch committed with the caller's own rows: the store cannot hand it over.
                inside = ProbeRecorded(tenant_id=tenant_id, seq=100 + round_no)
                async with pool.acquire() as conn, conn.transaction():
                    await store.append_in(
                        conn, f"probe/{tenant_id}/batch", [inside], expected_version=-1
                    )
                store.appended()
                # The next append of this process (a new stream) must not go before it.
                after = await _append(store, tenant_id, 1 + round_no)
                await asyncio.sleep(0.2)
            order += [str(inside.event_id), after]
        await topic.read_until_seen(set(order))
        await _caught_up(relay, store)

    published = [r[0] for r in topic.records if r[0] in order]
    assert published == order


async def test_concurrent_appends_reach_the_topic_exactly_once(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str, tenant_id: str
) -> None:
    """Many appenders at once, through group commit (as the interactions service appends):
    every event on the topic once, each stream in order."""
    await ensure_topics(kafka_bootstrap, [TOPIC])
    store = PostgresEventStore(pool, schema, group_commit=True)
    ids: list[str] = []

    async def appender(n: int) -> None:
        for seq in range(40):
            event = ProbeRecorded(tenant_id=tenant_id, seq=seq)
            await store.append(f"probe/{tenant_id}/c{n}", [event], expected_version=-1)
            ids.append(str(event.event_id))

    async with (
        _Topic(kafka_bootstrap, tenant_id).open() as topic,
        _running_relay(pool, store, kafka_bootstrap) as relay,
    ):
        await asyncio.gather(*(appender(n) for n in range(25)))
        await topic.read_until_seen(set(ids))
        await _caught_up(relay, store)
        await asyncio.sleep(1.0)
        await topic.read_until_seen(set(ids))
    await store.aclose()

    published = [r[0] for r in topic.records]
    assert len(published) == len(set(published)) == len(ids), (
        f"{len(published) - len(set(published))} duplicates of {len(ids)}"
    )
    for stream in {r[1] for r in topic.records}:
        versions = [r[2] for r in topic.records if r[1] == stream]
        assert versions == sorted(versions), stream


async def test_a_relay_that_loses_its_lock_stops_publishing_until_it_has_it_again(
    pool: asyncpg.Pool, store: PostgresEventStore, kafka_bootstrap: str, tenant_id: str
) -> None:
    """The connection holding the relay's advisory lock dies (as in a database restart): the
    relay stops (a standby may take the lock at once; two relays publishing together would
    interleave a stream's versions), and running it again resumes publishing."""
    await ensure_topics(kafka_bootstrap, [TOPIC])
    broker = create_broker(KafkaSettings(bootstrap_servers=kafka_bootstrap, client_id="lock"))
    relay = OutboxRelay(pool=pool, store=store, broker=broker, source="/contactcenter/test")
    await broker.start()
    stop = asyncio.Event()
    try:
        async with _Topic(kafka_bootstrap, tenant_id).open() as topic:
            running = asyncio.create_task(relay.run(stop))
            await topic.read_until_seen({await _append(store, tenant_id, 0)})
            async with pool.acquire() as conn:
                terminated = await conn.fetchval(
                    "select pg_terminate_backend(pid) from pg_locks "
                    "where locktype = 'advisory' and granted and objid = $1",
                    zlib.crc32(f"outbox-relay:{store.schema}".encode()),
                )
            assert terminated
            with pytest.raises(LeadershipLost):
                async with asyncio.timeout(10):
                    await running

            running = asyncio.create_task(relay.run(stop))
            await topic.read_until_seen({await _append(store, tenant_id, 1)})
            stop.set()
            await running
    finally:
        stop.set()
        await broker.stop()
