"""The consumer runner: a batch redelivered after a crash leaves the read model unchanged;
each stream's events are applied in their order."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from contactcenter.eventbus import subscribe_projection
from contactcenter.eventbus.consumer import KnownHeads
from contactcenter.eventstore import PgConnection, save_stream_heads
from contactcenter.messaging.admin import ensure_topics
from contactcenter.messaging.broker import create_broker
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.messaging.ordering import STREAM_VERSION
from contactcenter.messaging.settings import KafkaSettings

WORKER = Path(__file__).with_name("projection_worker.py")
EVENTS = 300


def _worker(args: list[str], crash: bool) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args, *(["--crash-after-commit"] if crash else [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def _count(pool: asyncpg.Pool, schema: str, tenant_id: str) -> int:
    n = await pool.fetchval(f'select n from "{schema}".counts where tenant_id = $1', tenant_id)
    return int(n or 0)


async def test_redelivered_batch_after_a_crash_changes_nothing(
    pool: asyncpg.Pool, database_url: str, schema: str, kafka_bootstrap: str, tenant_id: str
) -> None:
    await pool.execute(f'create table "{schema}".counts (tenant_id text primary key, n int)')
    topic = f"test.projection.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [topic, f"{topic}.dlq"], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(EVENTS):
            record = encode(
                EventEnvelope(
                    id=uuid.uuid4(),
                    type="interactions.RelayProbeRecorded.v1",
                    source="/test",
                    subject=f"probe/{tenant_id}/x",
                    time=datetime.now(UTC),
                    tenant_id=tenant_id,
                    data={"seq": i, "tenant_id": tenant_id},
                )
            )
            await producer.send(topic, record.value, key=record.key, headers=record.headers)
        await producer.flush()
    finally:
        await producer.stop()

    args = [
        "--database-url", database_url, "--schema", schema, "--bootstrap", kafka_bootstrap,
        "--topic", topic, "--name", f"counter-{uuid.uuid4().hex[:6]}",
    ]  # fmt: skip
    crashing = _worker(args, crash=True)
    _, stderr = crashing.communicate(timeout=60)
    assert crashing.returncode == 9, stderr.decode()[-2000:]
    after_crash = await _count(pool, schema, tenant_id)
    assert 0 < after_crash < EVENTS  # the first batch's effect committed, its offsets did not

    worker = _worker(args, crash=False)
    try:
        deadline = time.monotonic() + 60
        while await _count(pool, schema, tenant_id) < EVENTS and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # anything redelivered late would show now
        assert await _count(pool, schema, tenant_id) == EVENTS
        applied = await pool.fetchval(f'select count(*) from "{schema}".consumer_applied')
        assert applied == EVENTS
    finally:
        worker.terminate()
        worker.wait(20)


class RecordOrder:
    """Records the stream versions it applied; refuses the event marked poison."""

    def __init__(self, name: str, topic: str, schema: str) -> None:
        self.name = name
        self.topics: Sequence[str] = [topic]
        self._schema = schema

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        if envelope.data.get("poison"):
            raise ValueError("a handler bug")
        await conn.execute(
            f'insert into "{self._schema}".applied (subject, version) values ($1, $2)',
            envelope.subject,
            int(envelope.extensions[STREAM_VERSION]),
        )


def _envelope(tenant_id: str, subject: str, version: int, *, poison: bool) -> EventEnvelope:
    return EventEnvelope(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{subject}/{version}"),
        type="interactions.RelayProbeRecorded.v1",
        source="/test",
        subject=subject,
        time=datetime.now(UTC),
        tenant_id=tenant_id,
        data={"poison": poison},
        extensions={STREAM_VERSION: str(version)},
    )


async def _consume_log(
    pool: asyncpg.Pool,
    schema: str,
    kafka_bootstrap: str,
    tenant_id: str,
    projection_type: type[RecordOrder],
    log: list[tuple[str, int]],
    poison: tuple[str, int],
    applied_at_least: int,
) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """Produce `log` (subject, version) to a new topic, run the projection over it in batches
    of two, and return what it applied in order and the heads it stored."""
    await pool.execute(
        f'create table "{schema}".applied (seq serial, subject text, version int, '
        "unique (subject, version))"
    )
    topic = f"test.order.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka_bootstrap, [topic, f"{topic}.dlq"], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for subject, version in log:
            record = encode(
                _envelope(tenant_id, subject, version, poison=(subject, version) == poison)
            )
            await producer.send(topic, record.value, key=record.key, headers=record.headers)
        await producer.flush()
    finally:
        await producer.stop()

    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        client_id="order-test",
        fetch_max_wait_ms=5,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
        max_batch_records=2,  # the held-back event and its successors in separate batches too
    )
    broker = create_broker(settings)
    name = f"order-{uuid.uuid4().hex[:6]}"
    subscribe_projection(broker, pool, schema, projection_type(name, topic, schema), settings)
    await broker.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if await pool.fetchval(f'select count(*) from "{schema}".applied') >= applied_at_least:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # anything applied twice or late would show now
    finally:
        await broker.stop()
    rows = await pool.fetch(f'select subject, version from "{schema}".applied order by seq')
    heads = await pool.fetch(
        f'select subject, version from "{schema}".consumer_stream_heads where consumer = $1',
        name,
    )
    return [(r["subject"], r["version"]) for r in rows], {r["subject"]: r["version"] for r in heads}


async def test_each_stream_is_applied_in_order_whatever_the_log_holds(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str, tenant_id: str
) -> None:
    """The log of a broker that lost its logs, as a consumer may read it: version 3 of a
    contact before the republication brings 1, 2 and 3 again. And a dead-lettered event does
    not hold back the rest of its stream."""
    log = [("c1", 1), ("c1", 3), ("c1", 1), ("c1", 2), ("c1", 3), ("c2", 1), ("c2", 2)]
    applied, heads = await _consume_log(
        pool, schema, kafka_bootstrap, tenant_id, RecordOrder, log, ("c2", 1), 4
    )
    assert applied == [("c1", 1), ("c1", 2), ("c1", 3), ("c2", 2)]
    assert heads == {"c1": 3, "c2": 2}


class RecordOrderUntracked(RecordOrder):
    """The same, untracked: its effect is idempotent by itself (a unique row per event)."""

    tracked = False

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        if envelope.data.get("poison"):
            raise ValueError("a handler bug")
        await conn.execute(
            f'insert into "{self._schema}".applied (subject, version) values ($1, $2) '
            "on conflict do nothing",
            envelope.subject,
            int(envelope.extensions[STREAM_VERSION]),
        )


async def test_an_untracked_consumer_keeps_the_order_with_the_heads_it_knows(
    pool: asyncpg.Pool, schema: str, kafka_bootstrap: str, tenant_id: str
) -> None:
    """The same log for a consumer that keeps the heads in memory: the head it knows moves
    past a dead letter too (else the stream's next event would wait for it forever)."""
    log = [("c1", 1), ("c1", 3), ("c1", 1), ("c1", 2), ("c1", 3), ("c2", 1), ("c2", 2)]
    log += [("c2", 3), ("c2", 4)]
    applied, heads = await _consume_log(
        pool, schema, kafka_bootstrap, tenant_id, RecordOrderUntracked, log, ("c2", 2), 6
    )
    assert applied == [("c1", 1), ("c1", 2), ("c1", 3), ("c2", 1), ("c2", 3), ("c2", 4)]
    assert heads == {"c1": 3, "c2": 4}


class _NoReads:
    """A connection that must not be used."""

    async def fetch(self, *_args: object) -> None:
        raise AssertionError("the heads were read from the database")


async def test_known_heads_read_only_streams_they_have_not_met(
    pool: asyncpg.Pool, schema: str, tenant_id: str
) -> None:
    known = KnownHeads()
    c = ("/test", "c")
    no_reads: Any = _NoReads()
    # A stream's first event, alone in its batch, needs no head.
    assert (
        await known.load(no_reads, schema, "k", [_envelope(tenant_id, "c", 1, poison=False)]) == {}
    )
    # It was a repeat: the stream was stored further on. Saving its head tells where it is.
    await save_stream_heads(pool, schema, "k", {c: 3})
    known.remember(await save_stream_heads(pool, schema, "k", {c: 1}))
    later = [_envelope(tenant_id, "c", 2, poison=False)]
    assert await known.load(no_reads, schema, "k", later) == {c: 3}
    # A stream not met is read (at 0 when nothing was stored); once moved, the heads are read
    # again.
    async with pool.acquire() as conn:
        other = [_envelope(tenant_id, "d", 2, poison=False)]
        assert await known.load(conn, schema, "k", other) == {("/test", "d"): 0}
        known.forget()
        assert await known.load(conn, schema, "k", later) == {c: 3}
