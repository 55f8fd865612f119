"""Publishing envelopes through FastStream, with key, value and headers exactly as `encode`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from faststream.kafka import KafkaBroker

from contactcenter.messaging.broker import install_cloudevents_middleware
from contactcenter.messaging.cloudevents import EventEnvelope, encode

_DESCRIPTION = (
    "CloudEvents 1.0 in Kafka binary content mode: attributes in ce_* headers "
    "(ce_id, ce_type, ce_source, ce_subject, ce_time, ce_specversion, ce_tenantid), "
    "W3C traceparent, key = tenant id, value = the event's JSON."
)


class EnvelopePublisher:
    """A FastStream publisher of one topic (so it is in the service's AsyncAPI document).

    `publish` returns aiokafka's `RecordMetadata` once the broker acknowledged the record
    (with the broker's `acks`, `all` by default). `schema` documents the payload in AsyncAPI
    (e.g. a union of the topic's event models).
    """

    def __init__(
        self,
        broker: KafkaBroker,
        topic: str,
        *,
        title: str | None = None,
        description: str | None = None,
        schema: Any | None = None,
    ) -> None:
        install_cloudevents_middleware(broker)
        self.topic = topic
        self._publisher = broker.publisher(
            topic,
            title=title,
            description=description or _DESCRIPTION,
            schema=schema if schema is not None else dict[str, Any],
        )

    async def publish(self, envelope: EventEnvelope) -> Any:
        """Publish one envelope and wait for the broker's acknowledgement."""
        return await (await self.send(envelope))

    async def send(self, envelope: EventEnvelope) -> asyncio.Future[Any]:
        """Hand one envelope to the producer; the future resolves on the broker's ack.
        Records sent one after another keep their order per partition (aiokafka keeps one
        request in flight per partition)."""
        record = encode(envelope)
        sent = await self._publisher.publish(
            record.value,
            key=record.key,
            headers={k: v.decode() for k, v in record.headers},
            no_confirm=True,
        )
        if isinstance(sent, asyncio.Future):
            return sent
        # FastStream's in-memory test broker delivers at once and returns no future.
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(sent)
        return done

    async def publish_many(self, envelopes: Iterable[EventEnvelope]) -> list[Any]:
        """Send all, then wait for every acknowledgement. Raises if any was not acknowledged."""
        futures = [await self.send(envelope) for envelope in envelopes]
        return list(await asyncio.gather(*futures))
