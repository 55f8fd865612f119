"""Wiring with FastStream's in-memory TestKafkaBroker and the AsyncAPI document: no broker.

These check the declarations only; the behaviour is proven against the real broker in
test_kafka.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import anyio
import pytest
from faststream import FastStream
from faststream.kafka import TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.specification import AsyncAPI

from contactcenter.messaging.asyncapi import render_asyncapi, write_asyncapi
from contactcenter.messaging.broker import CloudEventsPublishMiddleware, create_broker
from contactcenter.messaging.cloudevents import EventEnvelope
from contactcenter.messaging.publisher import EnvelopePublisher
from contactcenter.messaging.settings import KafkaSettings
from contactcenter.messaging.subscriber import subscribe_envelope_batches, subscribe_envelopes

SETTINGS = KafkaSettings(
    bootstrap_servers="localhost:9092", retry_backoff_ms=1, retry_backoff_max_ms=5
)


def envelope(tenant: str = "t-1") -> EventEnvelope:
    return EventEnvelope(
        id=uuid4(),
        type="testing.ThingHappened.v1",
        source="/contactcenter/testing",
        subject=f"thing/{tenant}/1",
        time=datetime.now(UTC),
        tenant_id=tenant,
        data={"tenant_id": tenant, "n": 1},
    )


def test_create_broker_connects_nothing_and_installs_the_middleware() -> None:
    broker = create_broker(SETTINGS)
    assert CloudEventsPublishMiddleware in broker.config.broker_middlewares
    assert broker._connection is None


async def test_envelopes_flow_through_the_in_memory_broker() -> None:
    broker = create_broker(SETTINGS)
    received: list[EventEnvelope] = []
    dead: list[dict[str, str]] = []

    async def on_thing(env: EventEnvelope) -> None:
        received.append(env)

    subscribe_envelopes(broker, "wiring.events", on_thing, group_id="g", settings=SETTINGS)

    @broker.subscriber("wiring.events.dlq")
    async def on_dead(message: KafkaMessage) -> None:
        dead.append(dict(message.headers))

    publisher = EnvelopePublisher(broker, "wiring.events")
    sent = envelope()
    async with TestKafkaBroker(broker):
        await publisher.publish(sent)
        await broker.publish(b"{bad json", topic="wiring.events", key=b"t-1")

    assert received == [sent]
    assert len(dead) == 1
    assert dead[0]["dlq_reason"] == "invalid-cloudevent"
    assert dead[0]["dlq_original_topic"] == "wiring.events"


async def test_a_delivery_takes_no_worker_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """fast_depends resolves a sync parameter (FastStream's context-injected message) in a
    worker thread: a thread hop on every delivery. Our subscribers declare none."""
    hops: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counting_run_sync(func: object, *args: object, **kwargs: object) -> object:
        hops.append(func)
        return await run_sync(func, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting_run_sync)
    broker = create_broker(SETTINGS)
    received: list[EventEnvelope] = []

    async def one(env: EventEnvelope) -> None:
        received.append(env)

    async def many(batch: list[EventEnvelope]) -> None:
        received.extend(batch)

    subscribe_envelopes(broker, "wiring.one", one, group_id="g1", settings=SETTINGS)
    subscribe_envelope_batches(broker, "wiring.many", many, group_id="g2", settings=SETTINGS)
    sent = [envelope(), envelope()]
    async with TestKafkaBroker(broker):
        await EnvelopePublisher(broker, "wiring.one").publish(sent[0])
        await EnvelopePublisher(broker, "wiring.many").publish(sent[1])

    assert received == sent
    assert hops == []


def _service_broker() -> FastStream:
    broker = create_broker(SETTINGS)

    async def project_things(batch: list[EventEnvelope]) -> None:
        pass

    subscribe_envelope_batches(
        broker, "cc.testing.events.v1", project_things, group_id="reporting", settings=SETTINGS
    )
    EnvelopePublisher(broker, "cc.reporting.events.v1", title="reporting-events")
    return FastStream(broker, specification=AsyncAPI(title="reporting", version="1.2.3"))


def test_asyncapi_document_names_every_topic_and_is_stable(tmp_path: Path) -> None:
    text = render_asyncapi(_service_broker())
    doc = json.loads(text)

    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"] == {"title": "reporting", "version": "1.2.3"}
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {"cc.testing.events.v1", "cc.reporting.events.v1"}
    assert "ProjectThings" in text  # operation named after the service's handler
    assert render_asyncapi(_service_broker()) == text  # deterministic: fit to check in

    target = tmp_path / "asyncapi.json"
    assert write_asyncapi(_service_broker(), target) is True
    assert write_asyncapi(_service_broker(), target) is False
    assert target.read_text() == text


def test_asyncapi_of_a_bare_broker() -> None:
    broker = create_broker(SETTINGS)
    EnvelopePublisher(broker, "cc.routing.events.v1")
    doc = json.loads(render_asyncapi(broker, title="routing", version="0.1.0"))
    assert doc["info"]["title"] == "routing"
    assert [c["address"] for c in doc["channels"].values()] == ["cc.routing.events.v1"]


async def test_a_batch_subscriber_polls_again_at_once_after_an_empty_poll(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FastStream's own batch subscriber sleeps `batch_timeout_ms` after an empty poll, so a
    record arriving then waits; ours polls again at once (getmany itself waits for data)."""

    async def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s after an empty poll")

    monkeypatch.setattr(anyio, "sleep", no_sleep)

    class IdleConsumer:
        def __init__(self) -> None:
            self.polls: list[tuple[int, int | None]] = []

        async def getmany(self, timeout_ms: int, max_records: int | None) -> dict[str, list[int]]:
            self.polls.append((timeout_ms, max_records))
            return {} if len(self.polls) == 1 else {"tp": [1, 2]}

    async def project(batch: list[EventEnvelope]) -> None:
        pass

    subscriber = subscribe_envelope_batches(
        create_broker(SETTINGS), "things", project, group_id="g", settings=SETTINGS
    )
    consumer = IdleConsumer()
    assert await subscriber.get_msg(consumer) == ()  # type: ignore[arg-type]
    assert await subscriber.get_msg(consumer) == (1, 2)  # type: ignore[arg-type]
    assert consumer.polls == [(SETTINGS.batch_timeout_ms, SETTINGS.max_batch_records)] * 2
