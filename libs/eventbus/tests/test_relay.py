"""The outbox relay, on the real PostgreSQL and broker, killed with SIGKILL mid-flight."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import defaultdict

from aiokafka import AIOKafkaConsumer

from contactcenter.contracts.topics import topic_for
from contactcenter.eventstore import PostgresEventStore
from contactcenter.messaging.admin import ensure_topics

from .conftest import ProbeRecorded

TOPIC = topic_for("interactions").name
STREAMS = 40
PER_STREAM = 100  # 4,000 events


async def _append_all(store: PostgresEventStore, tenant_id: str) -> list[str]:
    ids: list[str] = []

    async def write(stream_no: int) -> None:
        stream = f"probe/{tenant_id}/s{stream_no}"
        version = 0
        seq = 0
        while seq < PER_STREAM:
            n = min(1 + seq % 3, PER_STREAM - seq)  # appends of 1 to 3 events, as commands do
            events = [ProbeRecorded(tenant_id=tenant_id, seq=seq + i) for i in range(n)]
            result = await store.append(stream, events, expected_version=version)
            version = result.last_version
            ids.extend(str(e.event_id) for e in events)
            seq += n

    await asyncio.gather(*(write(i) for i in range(STREAMS)))
    return ids


def _start_relay(database_url: str, schema: str, bootstrap: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "contactcenter.eventbus.relay",
            "--database-url",
            database_url,
            "--schema",
            schema,
            "--bootstrap-servers",
            bootstrap,
            "--source",
            "/contactcenter/test",
            "--batch-size",
            "200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_killed_relay_loses_nothing_and_only_redelivers(
    store: PostgresEventStore,
    database_url: str,
    schema: str,
    kafka_bootstrap: str,
    tenant_id: str,
) -> None:
    await ensure_topics(kafka_bootstrap, [TOPIC])
    appended = await _append_all(store, tenant_id)
    expected = set(appended)

    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    seen: list[tuple[str, str, int]] = []  # (event id, stream, seq) in partition order

    async def consume_until(predicate: object, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for r in records:
                    if r.key != tenant_id.encode():
                        continue
                    headers = dict(r.headers)
                    body = json.loads(r.value)
                    seen.append(
                        (headers["ce_id"].decode(), headers["ce_subject"].decode(), body["seq"])
                    )

    relay = _start_relay(database_url, schema, kafka_bootstrap)
    try:
        await consume_until(lambda: len(seen) >= len(expected) // 3, 60)
        relay.send_signal(signal.SIGKILL)  # no chance to save what it is doing
        relay.wait(10)
        killed_after = len(seen)
        assert 0 < killed_after < len(expected), "the kill must land mid-flight"
        relay = _start_relay(database_url, schema, kafka_bootstrap)
        await consume_until(lambda: {s[0] for s in seen} >= expected, 90)
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(20)
        await consumer.stop()

    ids = [s[0] for s in seen]
    assert set(ids) == expected, f"missing {len(expected - set(ids))} events"
    # A duplicate is only ever a redelivery of the same event (same id, same content).
    by_id: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for event_id, stream, seq in seen:
        by_id[event_id].add((stream, seq))
    assert all(len(v) == 1 for v in by_id.values())
    # First deliveries of each stream arrive in version order (one tenant = one partition).
    first_seen: dict[str, list[int]] = defaultdict(list)
    delivered: set[str] = set()
    for event_id, stream, seq in seen:
        if event_id not in delivered:
            delivered.add(event_id)
            first_seen[stream].append(seq)
    for stream, seqs in first_seen.items():
        assert seqs == sorted(seqs), f"{stream} out of order"
    print(f"relay killed after {killed_after} deliveries; {len(ids) - len(expected)} redelivered")
