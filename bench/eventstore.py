"""Event store benchmark: append throughput, and outbox relay lag beside the raw broker hop.

    uv run --all-packages python bench/eventstore.py [--seconds 10] [--lag-events 2000]

- append_events_per_s: 100 streams written concurrently, each append carrying 1-3 events (as
  commands do), on a durable PostgreSQL (fsync on), writers spread over 2 processes.
- relay_lag_*: an event appended (commit returned) -> read by a plain aiokafka consumer,
  through the outbox relay running in this process.
- raw_hop_*: a record produced by a plain aiokafka producer -> read by the same kind of
  consumer with the same settings, measured in the same run (the baseline of the ratio).

Uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set, else starts Tansu and a durable
PostgreSQL in a temporary folder through the same launcher as `make run`, and stops them.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import ClassVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contactcenter.contracts.events import DomainEvent
from contactcenter.contracts.topics import topic_for
from contactcenter.eventbus import OutboxRelay
from contactcenter.eventstore import PostgresEventStore, apply_migrations, create_pool
from contactcenter.infra import LocalInfra
from contactcenter.messaging.admin import ensure_topics
from contactcenter.messaging.broker import create_broker
from contactcenter.messaging.settings import KafkaSettings

TOPIC = topic_for("interactions").name
STREAMS = 100
POOL_PER_PROCESS = 16
FETCH_MAX_WAIT_MS = 5


class BenchEventRecorded(DomainEvent):
    event_type: ClassVar[str] = "interactions.BenchEventRecorded.v1"
    n: int
    text: str


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000)[int(q * 1000) - 1] if len(values) > 1 else 0.0


# ---------------------------------------------------------------- append throughput


async def _write_streams(
    database_url: str, schema: str, streams: range, seconds: float, start_at: float
) -> tuple[int, float]:
    # A service-sized pool: 100 concurrent writers share 2 x 16 connections, as commands
    # of a service share its pool (100 backends would spend the CPU switching between them).
    pool = await create_pool(database_url, min_size=POOL_PER_PROCESS, max_size=POOL_PER_PROCESS)
    store = PostgresEventStore(pool, schema)
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    names = [f"bench/{tenant}/s{i}" for i in streams]
    # Warm-up, untimed: every connection prepares the statement and introspects its types.
    await asyncio.gather(
        *(
            store.append(
                n, [BenchEventRecorded(tenant_id=tenant, n=0, text="")], expected_version=0
            )
            for n in names
        )
    )
    await asyncio.sleep(max(0.0, start_at - time.time()))  # all processes start together
    started = time.monotonic()
    deadline = started + seconds
    count = 0

    async def writer(stream: str) -> None:
        nonlocal count
        version = 1
        while time.monotonic() < deadline:
            size = 1 + (version % 3)
            events = [
                BenchEventRecorded(tenant_id=tenant, n=version + k, text="x" * 64)
                for k in range(size)
            ]
            version = (await store.append(stream, events, expected_version=version)).last_version
            count += size

    await asyncio.gather(*(writer(n) for n in names))
    elapsed = time.monotonic() - started
    await store.aclose()
    await pool.close()
    return count, elapsed


def _writer_process(
    database_url: str, schema: str, lo: int, hi: int, seconds: float, start_at: float
) -> tuple[int, float]:
    return asyncio.run(_write_streams(database_url, schema, range(lo, hi), seconds, start_at))


def append_throughput(database_url: str, schema: str, seconds: float) -> float:
    """Events per second of 100 concurrent stream writers, spread over 2 processes (one Python
    process cannot drive PostgreSQL to its limit: each round trip costs ~0.2 ms of client CPU)."""
    processes = 2
    per = STREAMS // processes
    start_at = time.time() + 5.0  # after every process connected and warmed up
    with ProcessPoolExecutor(processes) as pool:
        futures = [
            pool.submit(
                _writer_process, database_url, schema, p * per, (p + 1) * per, seconds, start_at
            )
            for p in range(processes)
        ]
        results = [f.result() for f in futures]
    return sum(r[0] / r[1] for r in results)


# ---------------------------------------------------------------- latency


def _consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )


async def _receive(
    consumer: AIOKafkaConsumer, key: bytes, ids: dict[str, float], out: dict[str, float], count: int
) -> None:
    while len(out) < count:
        batches = await consumer.getmany(timeout_ms=100)
        now = time.perf_counter()
        for records in batches.values():
            for r in records:
                if r.key != key:
                    continue
                event_id = dict(r.headers)["ce_id"].decode()
                # The commit time is noted right after append returns; a record can arrive
                # before that line runs only when the relay beats the event loop (lag ~0).
                if event_id not in out:
                    out[event_id] = max(0.0, (now - ids.get(event_id, now)) * 1000.0)


async def _await_assignment(consumer: AIOKafkaConsumer) -> None:
    await consumer.start()
    while not consumer.assignment():  # noqa: ASYNC110 (aiokafka has no assignment event)
        await asyncio.sleep(0.01)
    for tp in consumer.assignment():
        await consumer.position(tp)


async def raw_hop(bootstrap: str, count: int, interval_s: float) -> list[float]:
    topic = f"bench.rawhop.{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], partitions=1)
    consumer = _consumer(bootstrap, topic)
    await _await_assignment(consumer)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    key = b"raw"
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    receiver = asyncio.create_task(_receive(consumer, key, sent, got, count))
    try:
        for _ in range(count):
            event_id = str(uuid.uuid4())
            sent[event_id] = time.perf_counter()
            await producer.send(topic, b"{}", key=key, headers=[("ce_id", event_id.encode())])
            await asyncio.sleep(interval_s)
        await asyncio.wait_for(receiver, 60)
    finally:
        receiver.cancel()
        await producer.stop()
        await consumer.stop()
    return list(got.values())


async def relay_lag(
    database_url: str, schema: str, bootstrap: str, count: int, interval_s: float
) -> list[float]:
    pool = await create_pool(database_url, min_size=4, max_size=10)
    store = PostgresEventStore(pool, schema)
    broker = create_broker(KafkaSettings(bootstrap_servers=bootstrap, client_id="bench-relay"))
    await broker.start()
    relay = OutboxRelay(pool=pool, store=store, broker=broker, source="/contactcenter/bench")
    stop = asyncio.Event()
    # Publish the throughput phase's backlog first, so only the timed events remain.
    while await relay.publish_next_batch():
        pass
    await relay.save_checkpoint()
    consumer = _consumer(bootstrap, TOPIC)
    await _await_assignment(consumer)
    relay_task = asyncio.create_task(relay.run(stop))
    tenant = f"lag-{uuid.uuid4().hex[:8]}"
    committed: dict[str, float] = {}
    got: dict[str, float] = {}
    receiver = asyncio.create_task(_receive(consumer, tenant.encode(), committed, got, count))
    try:
        for i in range(count):
            event = BenchEventRecorded(tenant_id=tenant, n=i, text="lag")
            stream = f"bench/{tenant}/s{i % STREAMS}"
            await store.append(stream, [event], expected_version=-1)
            committed[str(event.event_id)] = time.perf_counter()
            await asyncio.sleep(interval_s)
        await asyncio.wait_for(receiver, 60)
    finally:
        receiver.cancel()
        stop.set()
        await relay_task
        await consumer.stop()
        await broker.stop()
        await store.aclose()
        await pool.close()
    return list(got.values())


# ---------------------------------------------------------------- main


async def _prepare(database_url: str, schema: str, bootstrap: str) -> None:
    await apply_migrations(database_url, schema)
    await ensure_topics(bootstrap, [TOPIC, f"{TOPIC}.dlq"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--lag-events", type=int, default=2000)
    parser.add_argument("--lag-interval-ms", type=float, default=2.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cc-bench-") as tmp:
        infra = LocalInfra(
            kafka_port=0, postgres_data_dir=Path(tmp) / "pg", durable=True, fresh=True
        )
        with infra:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(_prepare(infra.database_url, schema, infra.kafka_bootstrap))
            print(
                f"appending for {args.seconds:.0f}s: {STREAMS} streams, "
                "1-3 events per append, fsync on"
            )
            append_per_s = append_throughput(infra.database_url, schema, args.seconds)
            print(f"  {append_per_s:.0f} events/s")

            interval = args.lag_interval_ms / 1000
            print(f"raw hop: {args.lag_events} records, one every {args.lag_interval_ms} ms")
            raw = asyncio.run(raw_hop(infra.kafka_bootstrap, args.lag_events, interval))
            print(f"  p50 {_pct(raw, 0.5):.2f} ms  p99 {_pct(raw, 0.99):.2f} ms")
            print(f"relay lag: {args.lag_events} appends, one every {args.lag_interval_ms} ms")
            lag = asyncio.run(
                relay_lag(
                    infra.database_url, schema, infra.kafka_bootstrap, args.lag_events, interval
                )
            )
            print(f"  p50 {_pct(lag, 0.5):.2f} ms  p99 {_pct(lag, 0.99):.2f} ms")

    raw_p99 = _pct(raw, 0.99)
    lag_p99 = _pct(lag, 0.99)
    result = {
        "bench": "eventstore",
        "append_events_per_s": round(append_per_s),
        "relay_lag_p50_ms": round(_pct(lag, 0.5), 2),
        "relay_lag_p99_ms": round(lag_p99, 2),
        "raw_hop_p99_ms": round(raw_p99, 2),
        "relay_to_raw_p99_ratio": round(lag_p99 / raw_p99, 2) if raw_p99 else None,
    }
    goals = (
        f"goals: append >= 5000/s: {'met' if append_per_s >= 5000 else 'MISSED'}; "
        f"relay p99 <= 2 x raw p99 + 5 ms ({2 * raw_p99 + 5:.2f}): "
        f"{'met' if lag_p99 <= 2 * raw_p99 + 5 else 'MISSED'}"
    )
    print(goals, file=sys.stderr if os.environ.get("CC_BENCH_QUIET") else sys.stdout)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
