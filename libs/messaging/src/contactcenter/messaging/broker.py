"""The FastStream Kafka broker every service uses, built from `KafkaSettings`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiokafka
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.producer import AioKafkaFastProducerImpl
from faststream.response import PublishCommand

from contactcenter.messaging.cloudevents import H_SPECVERSION
from contactcenter.messaging.settings import KafkaSettings


class CloudEventsPublishMiddleware(BaseMiddleware):
    """Keeps a published CloudEvent's headers exactly as `encode` made them.

    FastStream adds its own `correlation_id` header to every publish; a CloudEvent already has
    its id (`ce_id`), so for records carrying `ce_specversion` the extra header is dropped.
    An empty string (not None) keeps telemetry middlewares that read it working.
    """

    async def publish_scope(
        self,
        call_next: Callable[[PublishCommand], Awaitable[Any]],
        cmd: PublishCommand,
    ) -> Any:
        if H_SPECVERSION in cmd.headers:
            cmd.correlation_id = ""
        return await call_next(cmd)


def install_cloudevents_middleware(broker: KafkaBroker) -> None:
    """Idempotent; `create_broker` does it, publishers on other brokers call it."""
    if CloudEventsPublishMiddleware not in broker.config.broker_middlewares:
        broker.add_middleware(CloudEventsPublishMiddleware)


def create_broker(
    settings: KafkaSettings,
    *,
    middlewares: Sequence[Any] = (),
    description: str | None = None,
) -> KafkaBroker:
    """A FastStream `KafkaBroker` for `settings`; nothing connects until `broker.start()`.

    `middlewares` (e.g. FastStream's Kafka telemetry middleware) wrap ours, so they see a
    publish before the FastStream correlation id is blanked. Consumer tuning (fetch wait,
    session/heartbeat timeouts) is per subscriber in FastStream: `subscribe_envelopes` applies
    it from the same settings.
    """
    return KafkaBroker(
        settings.servers,
        client_id=settings.client_id,
        request_timeout_ms=settings.request_timeout_ms,
        acks=settings.acks,
        linger_ms=settings.linger_ms,
        # Tansu rejects the idempotent/transactional producer (InitProducerId).
        enable_idempotence=False,
        middlewares=(*middlewares, CloudEventsPublishMiddleware),
        log_level=logging.getLevelNamesMapping()[settings.message_log_level],
        description=description,
    )


def kafka_producer(broker: KafkaBroker) -> aiokafka.AIOKafkaProducer | None:
    """The started aiokafka producer inside a FastStream broker (None before `start()` and
    under FastStream's in-memory test broker). For callers that send records exactly as
    they made them (the outbox relay, dead letters) without FastStream's per-publish
    middleware chain. FastStream keeps it in a private attribute: the one place that knows."""
    fast_producer = broker.config.producer
    if isinstance(fast_producer, AioKafkaFastProducerImpl) and fast_producer:
        producer: aiokafka.AIOKafkaProducer = fast_producer._producer.producer
        return producer
    return None


async def reconnect_producer(broker: KafkaBroker, *, stop_timeout_s: float = 5.0) -> None:
    """Give a started broker a new aiokafka producer, with the same settings.

    aiokafka's producer can keep futures unresolved for good after its broker was unreachable
    (aio-libs/aiokafka#1101): a publisher that waited far longer than the request timeout
    starts over with a fresh producer. The old one is stopped within `stop_timeout_s`, or
    left behind (its stop can hang the same way). Records it never acknowledged are the
    caller's to send again.
    """
    old = kafka_producer(broker)
    fast_producer: Any = broker.config.producer  # FastStream's AioKafkaFastProducerImpl
    fresh = aiokafka.AIOKafkaProducer(**broker._connection_kwargs)
    await fast_producer.connect(
        fresh, serializer=fast_producer.serializer, codec=fast_producer.codec
    )
    if old is None:
        return
    try:
        async with asyncio.timeout(stop_timeout_s):
            await old.stop()
    except Exception as exc:  # the old client of an unreachable broker: leave it
        logging.getLogger(__name__).warning("the replaced Kafka producer did not stop: %r", exc)
