"""The consumer runner: a batch redelivered after a crash leaves the read model unchanged."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from contactcenter.messaging.admin import ensure_topics
from contactcenter.messaging.cloudevents import EventEnvelope, encode

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
