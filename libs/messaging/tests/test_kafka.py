"""Against the real Kafka-compatible broker (Tansu in tests, Apache Kafka with
KAFKA_BOOTSTRAP_SERVERS): publishing, reading without our code, DLQ, retries, order."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from contactcenter.contracts.events import DomainEvent
from contactcenter.messaging.admin import (
    dlq_topic,
    ensure_topics,
    repair_topics,
    topic_partitions,
)
from contactcenter.messaging.broker import create_broker
from contactcenter.messaging.cloudevents import (
    EventEnvelope,
    encode,
    envelope_from_event,
)
from contactcenter.messaging.processing import EnvelopeProcessor, RetryPolicy
from contactcenter.messaging.publisher import EnvelopePublisher
from contactcenter.messaging.settings import KafkaSettings
from contactcenter.messaging.subscriber import (
    AIOKafkaDeadLetters,
    CommitsBehind,
    EnvelopeConsumer,
    subscribe_envelope_batches,
    subscribe_envelopes,
)

pytestmark = pytest.mark.infra

SOURCE = "/contactcenter/testing"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

Eventually = Callable[..., Awaitable[None]]
ReadTopic = Callable[..., Awaitable[list[Any]]]


class ThingHappened(DomainEvent):
    event_type = "testing.ThingHappened.v1"
    seq: int
    note: str = ""


def thing(tenant: str, seq: int, note: str = "") -> EventEnvelope:
    event = ThingHappened(tenant_id=tenant, seq=seq, note=note)
    return envelope_from_event(event, SOURCE, f"thing/{tenant}/{seq}", traceparent=TRACEPARENT)


class Boom(Exception):
    pass


async def test_published_event_is_readable_by_plain_aiokafka(
    settings: KafkaSettings, topic: str, tenant_id: str, read_topic: ReadTopic
) -> None:
    event = ThingHappened(tenant_id=tenant_id, seq=1, note="héllo")
    envelope = envelope_from_event(
        event, SOURCE, f"thing/{tenant_id}/1", traceparent=TRACEPARENT, tracestate="cc=1"
    )
    broker = create_broker(settings)
    publisher = EnvelopePublisher(broker, topic)
    await broker.start()
    try:
        metadata = await publisher.publish(envelope)
    finally:
        await broker.stop()

    [record] = await read_topic(topic, 1)
    assert (record.partition, record.offset) == (metadata.partition, metadata.offset)
    assert record.key == tenant_id.encode()
    assert list(record.headers) == encode(envelope).headers  # exactly, nothing added
    headers = {k: v.decode() for k, v in record.headers}
    assert headers == {
        "content-type": "application/json",
        "ce_specversion": "1.0",
        "ce_id": str(event.event_id),
        "ce_source": SOURCE,
        "ce_type": "testing.ThingHappened.v1",
        "ce_subject": f"thing/{tenant_id}/1",
        "ce_time": event.occurred_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "ce_tenantid": tenant_id,
        "traceparent": TRACEPARENT,
        "tracestate": "cc=1",
    }
    assert json.loads(record.value) == {
        "event_id": str(event.event_id),
        "tenant_id": tenant_id,
        "occurred_at": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "correlation_id": str(event.correlation_id),
        "causation_id": None,
        "seq": 1,
        "note": "héllo",
    }


async def test_malformed_messages_go_to_the_dlq_and_the_consumer_keeps_going(
    settings: KafkaSettings,
    topic: str,
    group_id: str,
    tenant_id: str,
    raw_producer: AIOKafkaProducer,
    read_topic: ReadTopic,
    eventually: Eventually,
    committed: Callable[[str, str], Awaitable[dict[int, int | None]]],
    end_offsets: Callable[[str], Awaitable[dict[int, int]]],
) -> None:
    good = encode(thing(tenant_id, 1))
    without_type = [(k, v) for k, v in good.headers if k != "ce_type"]
    garbage_headers: list[tuple[str, bytes | None]] = [
        *[(k, v) for k, v in good.headers if k not in ("ce_id", "ce_time")],
        ("ce_id", b"\xff\xfe\x00binary"),
        ("ce_time", b"yesterday"),
        ("x-null", None),
    ]
    key = tenant_id.encode()
    bad = [
        (good.headers, b'{"seq": 1, '),  # bad JSON
        (without_type, good.value),  # missing ce_type
        (garbage_headers, good.value),  # non-UTF-8 and null headers
    ]
    for headers, value in bad:
        await raw_producer.send_and_wait(topic, value, key=key, headers=headers)
    valid = thing(tenant_id, 2)
    await raw_producer.send_and_wait(
        topic, encode(valid).value, key=key, headers=encode(valid).headers
    )

    handled: list[EventEnvelope] = []

    async def on_thing(envelope: EventEnvelope) -> None:
        handled.append(envelope)

    broker = create_broker(settings)
    subscribe_envelopes(broker, topic, on_thing, group_id=group_id, settings=settings)
    await broker.start()
    try:
        await eventually(lambda: len(handled) == 1, what="the valid message after the bad ones")
        ends = await end_offsets(topic)

        async def all_committed() -> bool:
            got = await committed(group_id, topic)
            return all(got[p] == end for p, end in ends.items() if end)

        for _ in range(200):
            if await all_committed():
                break
            await asyncio.sleep(0.02)
        assert await all_committed(), "the group did not commit past the dead letters"
    finally:
        await broker.stop()

    assert handled == [valid]
    dead = await read_topic(dlq_topic(topic), 3)
    expected_errors = ["data: value is not JSON", "ce_type: required header is missing", "ce_id:"]
    for record, (headers, value), error in zip(dead, bad, expected_errors, strict=True):
        assert record.key == key
        assert record.value == value  # the original bytes
        original = list(record.headers[: len(headers)])
        assert original == list(headers)  # the original headers, byte for byte
        meta = {k: v.decode() for k, v in record.headers[len(headers) :]}
        assert meta["dlq_error"].startswith(error)
        assert meta["dlq_error_type"] == "contactcenter.messaging.cloudevents.InvalidCloudEvent"
        assert meta["dlq_reason"] == "invalid-cloudevent"
        assert meta["dlq_original_topic"] == topic
        assert meta["dlq_consumer_group"] == group_id
        assert meta["dlq_attempts"] == "0"
    # Same key, same partition: the dead letters keep the original order and offsets.
    assert [int(dict(r.headers)["dlq_original_offset"]) for r in dead] == [0, 1, 2]


async def test_handler_failures_are_retried_then_dead_lettered(
    settings: KafkaSettings,
    topic: str,
    group_id: str,
    tenant_id: str,
    read_topic: ReadTopic,
    eventually: Eventually,
) -> None:
    attempts: Counter[int] = Counter()
    succeeded: list[int] = []

    async def on_thing(envelope: EventEnvelope) -> None:
        seq = envelope.data["seq"]
        attempts[seq] += 1
        if seq == 1 and attempts[seq] < 3:
            raise Boom("transient")  # fails twice, succeeds on the third (last) attempt
        if seq == 2:
            raise Boom("poison 2")
        succeeded.append(seq)

    broker = create_broker(settings)
    subscribe_envelopes(broker, topic, on_thing, group_id=group_id, settings=settings)
    publisher = EnvelopePublisher(broker, topic)
    envelopes = [thing(tenant_id, seq) for seq in (1, 2, 3)]
    await broker.start()
    try:
        await publisher.publish_many(envelopes)
        await eventually(lambda: succeeded == [1, 3], what=f"1 and 3 handled, got {succeeded}")
    finally:
        await broker.stop()

    assert attempts == {1: 3, 2: 3, 3: 1}
    [dead] = await read_topic(dlq_topic(topic), 1)
    meta = {k: v.decode() for k, v in dead.headers}
    assert dead.value == encode(envelopes[1]).value
    assert meta["ce_id"] == str(envelopes[1].id)
    assert meta["dlq_error"] == "poison 2"
    assert meta["dlq_error_type"].endswith(".Boom")
    assert meta["dlq_attempts"] == "3"
    assert meta["dlq_reason"] == "handler-failed"


async def test_order_per_tenant_is_preserved_single_and_batched(
    settings: KafkaSettings,
    topic: str,
    tenant_id: str,
    read_topic: ReadTopic,
    eventually: Eventually,
    committed: Callable[[str, str], Awaitable[dict[int, int | None]]],
) -> None:
    count, poison = 300, 150
    single: list[int] = []
    applied: list[int] = []
    batch_sizes: list[int] = []

    async def on_thing(envelope: EventEnvelope) -> None:
        single.append(envelope.data["seq"])

    async def project(batch: list[EventEnvelope]) -> None:
        batch_sizes.append(len(batch))
        seqs = [e.data["seq"] for e in batch]
        if poison in seqs:
            raise Boom(f"cannot project {poison}")
        applied.extend(seqs)  # as if committed in one transaction with the batch

    batch_group = f"batch-{uuid.uuid4().hex[:8]}"
    broker = create_broker(settings)
    subscribe_envelopes(
        broker, topic, on_thing, group_id=f"single-{uuid.uuid4().hex[:8]}", settings=settings
    )
    subscribe_envelope_batches(broker, topic, project, group_id=batch_group, settings=settings)
    publisher = EnvelopePublisher(broker, topic)
    await broker.start()
    try:
        await publisher.publish_many(thing(tenant_id, seq) for seq in range(count))
        await eventually(lambda: len(single) == count, what=f"{count} single, got {len(single)}")
        await eventually(lambda: len(applied) == count - 1, what=f"batches, got {len(applied)}")
        # The batches' offsets are committed behind the handling (`CommitsBehind`), up to
        # the last record (the dead-lettered record's batch included; one tenant, one
        # partition).
        for _ in range(200):
            got = await committed(batch_group, topic)
            if sorted(got.values(), key=lambda offset: offset or 0)[-1] == count:
                break
            await asyncio.sleep(0.02)
        assert count in got.values(), got
    finally:
        await broker.stop()

    assert single == list(range(count))
    assert applied == [s for s in range(count) if s != poison]
    assert max(batch_sizes) > 1
    [dead] = await read_topic(dlq_topic(topic), 1)
    meta = {k: v.decode() for k, v in dead.headers}
    assert json.loads(dead.value)["seq"] == poison
    assert meta["dlq_consumer_group"] == batch_group


async def test_commits_behind_go_in_order_one_at_a_time_and_survive_a_failure() -> None:
    @dataclasses.dataclass
    class Record:
        topic: str
        partition: int
        offset: int

    class SlowConsumer:
        def __init__(self) -> None:
            self.sent: list[dict[TopicPartition, int]] = []
            self.in_flight = 0

        async def commit(self, offsets: dict[TopicPartition, int]) -> None:
            self.in_flight += 1
            assert self.in_flight == 1, "one commit at a time"
            await asyncio.sleep(0.01)
            self.in_flight -= 1
            self.sent.append(offsets)
            if len(self.sent) == 2:
                raise KafkaError("rebalanced meanwhile")

    consumer = SlowConsumer()
    commits = CommitsBehind()
    t0, t1 = TopicPartition("t", 0), TopicPartition("t", 1)
    commits.submit(consumer, [Record("t", 0, 5)])  # type: ignore[arg-type]
    await asyncio.sleep(0)  # its commit is on its way
    # Handled meanwhile: committed together in the next request, each partition's highest.
    commits.submit(consumer, [Record("t", 0, 6), Record("t", 1, 2)])  # type: ignore[arg-type]
    commits.submit(consumer, [Record("t", 0, 7)])  # type: ignore[arg-type]
    while len(consumer.sent) < 2:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)
    # A failed commit (logged) does not stop the later ones.
    commits.submit(consumer, [Record("t", 1, 3)])  # type: ignore[arg-type]
    while len(consumer.sent) < 3:
        await asyncio.sleep(0.005)
    assert consumer.sent == [{t0: 6}, {t0: 8, t1: 3}, {t1: 4}]


class FlakyDeadLetters(AIOKafkaDeadLetters):
    """The DLQ refuses the first write, as if it were briefly unavailable."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        super().__init__(producer)
        self.failures_left = 1

    async def send(self, topic: str, **kwargs: Any) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("DLQ unavailable")
        await super().send(topic, **kwargs)


async def test_unavailable_dlq_rewinds_instead_of_skipping(
    settings: KafkaSettings,
    topic: str,
    group_id: str,
    tenant_id: str,
    raw_producer: AIOKafkaProducer,
    read_topic: ReadTopic,
    eventually: Eventually,
) -> None:
    key = tenant_id.encode()
    await raw_producer.send_and_wait(
        topic, b"not json", key=key, headers=encode(thing(tenant_id, 0)).headers
    )
    after = thing(tenant_id, 1)
    await raw_producer.send_and_wait(
        topic, encode(after).value, key=key, headers=encode(after).headers
    )

    handled: list[EventEnvelope] = []

    async def on_thing(envelope: EventEnvelope) -> None:
        handled.append(envelope)

    sink = FlakyDeadLetters(raw_producer)
    broker = create_broker(settings)
    subscribe_envelopes(
        broker, topic, on_thing, group_id=group_id, settings=settings, dead_letters=sink
    )
    await broker.start()
    try:
        await eventually(lambda: handled == [after], what="the message after the dead letter")
    finally:
        await broker.stop()

    assert sink.failures_left == 0
    [dead] = await read_topic(dlq_topic(topic), 1)  # written once, on redelivery
    assert dead.value == b"not json"


async def test_plain_aiokafka_consumer_applies_the_same_rules(
    settings: KafkaSettings,
    topic: str,
    group_id: str,
    tenant_id: str,
    raw_producer: AIOKafkaProducer,
    read_topic: ReadTopic,
    eventually: Eventually,
) -> None:
    key = tenant_id.encode()
    envelopes = [thing(tenant_id, seq) for seq in range(50)]
    for i, envelope in enumerate(envelopes):
        record = encode(envelope)
        await raw_producer.send(topic, record.value, key=key, headers=record.headers)
        if i == 10:  # an undecodable one in the middle
            await raw_producer.send(topic, b"[]", key=key, headers=record.headers)
    await raw_producer.flush()

    handled: list[int] = []

    async def on_thing(envelope: EventEnvelope) -> None:
        if envelope.data["seq"] == 20:
            raise Boom("poison 20")
        handled.append(envelope.data["seq"])

    sink = FlakyDeadLetters(raw_producer)
    processor = EnvelopeProcessor(
        group_id=group_id, dead_letters=sink, retry=RetryPolicy.from_settings(settings)
    )
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=5,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    task = asyncio.create_task(
        EnvelopeConsumer(consumer, processor, handler=on_thing, poll_timeout_ms=20).run()
    )
    try:
        await eventually(lambda: len(handled) == 49, what=f"49 handled, got {len(handled)}")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()

    assert handled == [s for s in range(50) if s != 20]
    dead = await read_topic(dlq_topic(topic), 2)
    assert [dict(d.headers)["dlq_reason"] for d in dead] == [
        b"invalid-cloudevent",
        b"handler-failed",
    ]


async def test_ensure_topics_is_idempotent_and_safe_concurrently(kafka_bootstrap: str) -> None:
    names = [f"test.messaging.admin.{uuid.uuid4().hex[:8]}.{i}" for i in range(3)]
    results = await asyncio.gather(
        ensure_topics(kafka_bootstrap, names, partitions=4),
        ensure_topics(kafka_bootstrap, names, partitions=4),
    )
    assert sorted(results[0] + results[1]) == sorted(names)  # each created exactly once
    assert await ensure_topics(kafka_bootstrap, names, partitions=4) == []

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    assert {t["topic"]: len(t["partitions"]) for t in described} == dict.fromkeys(names, 4)


async def test_repair_topics_remakes_an_auto_created_topic_cleanly(kafka_bootstrap: str) -> None:
    """A topic the broker auto-created on first use (Tansu: 4 partitions) is deleted and made
    again with the partition count wanted, empty, its offsets from 0; a right one is kept."""
    auto, right = (f"test.messaging.repair.{uuid.uuid4().hex[:8]}.{n}" for n in ("auto", "ok"))
    await ensure_topics(kafka_bootstrap, [right], partitions=6)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for topic in (auto, right):
            await producer.send_and_wait(topic, b"before", partition=0)

        assert await repair_topics(kafka_bootstrap, [auto, right], partitions=6) == [auto]
        assert await repair_topics(kafka_bootstrap, [auto, right], partitions=6) == []
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            found = await topic_partitions(admin, [auto, right])
        finally:
            await admin.close()
        assert found == {auto: set(range(6)), right: set(range(6))}

        await producer.client.force_metadata_update()
        acks = [await producer.send_and_wait(auto, b"after", partition=p) for p in range(6)]
        assert [(a.partition, a.offset) for a in acks] == [(p, 0) for p in range(6)]
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        assert consumer.partitions_for_topic(auto) == set(range(6))
        tps = [TopicPartition(auto, p) for p in range(6)] + [TopicPartition(right, 0)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        values: dict[str, list[bytes]] = {auto: [], right: []}
        for _ in range(20):
            for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                values[tp.topic] += [r.value for r in records]
            if len(values[auto]) == 6 and values[right]:
                break
    finally:
        await consumer.stop()
    assert values == {auto: [b"after"] * 6, right: [b"before"]}
