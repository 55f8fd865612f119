"""Where the live projection resumes a partition: from the position committed with its read
models, unless the broker lost the log that position points into (on the real broker)."""

from __future__ import annotations

import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contactcenter.messaging.admin import ensure_topics
from contactcenter.reporting.projections.live import _Assignments
from contactcenter.testing.fixtures import TestInfra


class _Positions:
    """What `_Assignments` reads of the projection: the positions stored with the read models."""

    def __init__(self, positions: dict[str, int]) -> None:
        self.positions = positions


async def _first_offset_read(
    bootstrap: str, topic: str, group: str, positions: dict[str, int]
) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=5,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
    )
    consumer.subscribe([topic], listener=_Assignments(_Positions(positions), lambda: consumer))  # type: ignore[arg-type]
    await consumer.start()
    try:
        while True:
            fetched = await consumer.getmany(timeout_ms=1000)
            for records in fetched.values():
                return records[0].offset
    finally:
        await consumer.stop()


async def test_resumes_from_the_stored_position_only_while_the_broker_keeps_its_offsets(
    infra: TestInfra,
) -> None:
    bootstrap = infra.kafka_bootstrap
    topic = f"test.reporting.positions.{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for n in range(6):
            await producer.send_and_wait(topic, value=b"{}", key=f"k{n}".encode())
    finally:
        await producer.stop()
    stored: dict[str, Any] = {f"{topic}:0": 4}

    # The group committed at the broker as it went: the stored position holds.
    kept = f"test-reporting-kept-{uuid.uuid4().hex[:6]}"
    committer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=kept)
    await committer.start()
    try:
        await committer.commit({TopicPartition(topic, 0): 4})
    finally:
        await committer.stop()
    assert await _first_offset_read(bootstrap, topic, kept, stored) == 4

    # The broker knows no offset of the group (it lost its logs and offsets): the log may be
    # another one, so the partition is read from its beginning.
    assert (
        await _first_offset_read(
            bootstrap, topic, f"test-reporting-lost-{uuid.uuid4().hex[:6]}", stored
        )
        == 0
    )
