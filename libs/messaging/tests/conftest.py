"""Fixtures for the real-broker tests: Tansu-friendly settings, unique topics, plain readers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contactcenter.messaging.admin import dlq_topic, ensure_topics
from contactcenter.messaging.settings import KafkaSettings

Eventually = Callable[..., Awaitable[None]]
ReadTopic = Callable[..., Awaitable[list[Any]]]


@pytest.fixture
def settings(kafka_bootstrap: str) -> KafkaSettings:
    # Tansu: short session/heartbeat or a group join takes 10 s+; a waiting fetch returns only
    # when fetch_max_wait_ms expires, so keep it small.
    return KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        client_id="messaging-tests",
        fetch_max_wait_ms=5,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
        batch_timeout_ms=20,
        max_attempts=3,
        retry_backoff_ms=10,
        retry_backoff_max_ms=50,
    )


@pytest.fixture
async def topic(kafka_bootstrap: str) -> str:
    """A fresh topic (3 partitions) and its DLQ, for this test only."""
    name = f"test.messaging.{uuid.uuid4().hex[:10]}.events.v1"
    await ensure_topics(kafka_bootstrap, [name, dlq_topic(name)], partitions=3)
    return name


@pytest.fixture
def group_id() -> str:
    return f"test-group-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def raw_producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """A plain aiokafka producer: what a foreign (or broken) client would use."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
def eventually() -> Eventually:
    async def wait(condition: Callable[[], bool], within_s: float = 20.0, what: str = "") -> None:
        deadline = time.monotonic() + within_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {within_s} s for {what or condition}")
            await asyncio.sleep(0.01)

    return wait


@pytest.fixture
def read_topic(kafka_bootstrap: str) -> ReadTopic:
    """Read every record of a topic from the beginning with a plain aiokafka consumer (no
    group, none of our code); expects exactly `count` records."""

    async def read(name: str, count: int, within_s: float = 20.0) -> list[Any]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=kafka_bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
        )
        await consumer.start()
        try:
            await consumer.topics()  # load metadata so partitions_for_topic knows the topic
            partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            records: list[Any] = []
            deadline = time.monotonic() + within_s
            while len(records) < count and time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=100)).values():
                    records.extend(batch)
            # A little longer, to catch records beyond the expected count.
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
        finally:
            await consumer.stop()
        assert len(records) == count, f"{name}: expected {count} records, got {len(records)}"
        return sorted(records, key=lambda r: (r.partition, r.offset))

    return read


async def committed_offsets(bootstrap: str, group_id: str, topic: str) -> dict[int, int | None]:
    """The group's committed offset per partition (read without joining the group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id)
    await consumer.start()
    try:
        await consumer.topics()
        return {
            p: await consumer.committed(TopicPartition(topic, p))
            for p in consumer.partitions_for_topic(topic)
        }
    finally:
        await consumer.stop()


@pytest.fixture
def committed(kafka_bootstrap: str) -> Callable[[str, str], Awaitable[dict[int, int | None]]]:
    async def get(group: str, name: str) -> dict[int, int | None]:
        return await committed_offsets(kafka_bootstrap, group, name)

    return get


@pytest.fixture
def end_offsets(kafka_bootstrap: str) -> Callable[[str], Awaitable[dict[int, int]]]:
    async def get(name: str) -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
        await consumer.start()
        try:
            await consumer.topics()
            partitions = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name)]
            ends = await consumer.end_offsets(partitions)
            return {tp.partition: offset for tp, offset in ends.items()}
        finally:
            await consumer.stop()

    return get
