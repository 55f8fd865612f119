"""The outbox relay and a broker that loses what it acknowledged: a Tansu of this test's own
(memory storage) is killed and started again empty on the same port; the relay notices, and
the topic ends up with every stored event again."""

from __future__ import annotations

import asyncio
import signal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contactcenter.contracts.topics import topic_for
from contactcenter.eventbus import OutboxRelay
from contactcenter.eventstore import PostgresEventStore
from contactcenter.infra.kafka import KafkaBroker, start_kafka
from contactcenter.infra.process import free_port
from contactcenter.messaging.admin import ensure_topics, topic_partitions
from contactcenter.messaging.broker import create_broker
from contactcenter.messaging.settings import KafkaSettings
from contactcenter.servicekit.app import run_supervised

from .conftest import ProbeRecorded

TOPIC = topic_for("interactions").name


async def _ids_on_topic(bootstrap: str) -> set[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        parts = (await topic_partitions(admin, [TOPIC])).get(TOPIC, set())
        tps = [TopicPartition(TOPIC, p) for p in sorted(parts)]
        if not tps:
            return set()
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen: set[str] = set()
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                seen.update(dict(r.headers)["ce_id"].decode() for r in records)
        return seen
    finally:
        await admin.close()
        await consumer.stop()


async def _append(store: PostgresEventStore, tenant_id: str, n: int, start: int) -> list[str]:
    events = [ProbeRecorded(tenant_id=tenant_id, seq=start + i) for i in range(n)]
    for i, e in enumerate(events):
        await store.append(f"probe/{tenant_id}/s{i % 5}", [e], expected_version=-1)
    return [str(e.event_id) for e in events]


async def _until(condition, within_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    try:
        async with asyncio.timeout(within_s):
            while not await condition():
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"no {what} within {within_s} s") from None


async def test_relay_republishes_what_a_restarted_broker_lost(pool, store, tenant_id) -> None:
    port = free_port("127.0.0.1")
    kafka: KafkaBroker = await asyncio.to_thread(start_kafka, port)
    try:
        bootstrap = kafka.bootstrap_servers
        await ensure_topics(bootstrap, [TOPIC, f"{TOPIC}.dlq"], partitions=3)
        broker = create_broker(KafkaSettings(bootstrap_servers=bootstrap, client_id="relay-loss"))
        relay = OutboxRelay(
            pool=pool,
            store=store,
            broker=broker,
            source="/contactcenter/test",
            bootstrap_servers=bootstrap,
            partitions=3,
            loss_check_every_s=0.5,
        )
        stored = await _append(store, tenant_id, 30, 0)
        await broker.start()
        stop = asyncio.Event()

        # As ServiceApp runs it: a relay that fails (the broker went away mid-publish) runs
        # again, from its checkpoint.
        running = asyncio.create_task(
            run_supervised("outbox-relay", relay.run, stop, restart_delay_s=0.5)
        )
        try:

            async def all_published() -> bool:
                return set(stored) <= await _ids_on_topic(bootstrap)

            await _until(all_published, 30, "first publication")
            assert relay.losses == 0

            # The broker dies and comes back empty (Tansu keeps topics in memory).
            assert kafka.process is not None
            kafka.process.stop(grace=5, sig=signal.SIGKILL)
            kafka = await asyncio.to_thread(start_kafka, port)
            stored += await _append(store, tenant_id, 10, 30)

            async def everything_again() -> bool:
                return relay.losses >= 1 and set(stored) <= await _ids_on_topic(bootstrap)

            await _until(everything_again, 60, "republication")
            # Once caught up, the relay reads the topic back and finds the store complete.
            await _until(lambda: _true(relay.verified >= 1), 30, "republication verified")
            # A relay restarted later still knows what it had published (offsets persisted):
            # nothing is lost, so its check at start-up finds no loss.
            stop.set()
            await running
            again = OutboxRelay(
                pool=pool,
                store=store,
                broker=broker,
                source="/contactcenter/test",
                bootstrap_servers=bootstrap,
                partitions=3,
            )
            stop2 = asyncio.Event()
            stop2.set()
            await again.run(stop2)
            assert again.losses == 0
        finally:
            stop.set()
            if not running.done():
                await running
            await broker.stop()
    finally:
        kafka.stop()


async def test_relay_sends_again_through_a_new_producer_when_acks_do_not_come(
    pool, store, tenant_id
) -> None:
    """A broker that answers nothing for longer than the relay's ack timeout (paused): the
    relay sends the batch again through a new producer, and once the broker answers again
    every stored event is on the topic."""
    port = free_port("127.0.0.1")
    kafka: KafkaBroker = await asyncio.to_thread(start_kafka, port)
    try:
        bootstrap = kafka.bootstrap_servers
        await ensure_topics(bootstrap, [TOPIC, f"{TOPIC}.dlq"], partitions=3)
        broker = create_broker(KafkaSettings(bootstrap_servers=bootstrap, client_id="relay-stall"))
        relay = OutboxRelay(
            pool=pool,
            store=store,
            broker=broker,
            source="/contactcenter/test",
            ack_timeout_s=1.0,
        )
        stored = await _append(store, tenant_id, 10, 0)
        await broker.start()
        stop = asyncio.Event()

        # As ServiceApp runs it: a relay that fails (the broker went away mid-publish) runs
        # again, from its checkpoint.
        running = asyncio.create_task(
            run_supervised("outbox-relay", relay.run, stop, restart_delay_s=0.5)
        )
        try:

            async def published() -> bool:
                return set(stored) <= await _ids_on_topic(bootstrap)

            await _until(published, 30, "first publication")
            assert kafka.process is not None
            kafka.process.send_signal(signal.SIGSTOP)
            try:
                stored += await _append(store, tenant_id, 10, 10)
                await _until(lambda: _true(relay.stalls >= 1), 30, "stall noticed")
            finally:
                kafka.process.send_signal(signal.SIGCONT)
            await _until(published, 90, "publication after the pause")
        finally:
            stop.set()
            await running
            await broker.stop()
    finally:
        kafka.stop()


async def _true(value: bool) -> bool:
    return value
