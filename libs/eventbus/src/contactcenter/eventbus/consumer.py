"""The consumer runner for projections and process managers.

A projection gets batches of envelopes from Kafka and applies them to its own tables; the ids
of the events it applied are recorded in the same transaction (`apply_once`), and the Kafka
offsets are committed only after that transaction. A crash between the two redelivers the
batch, and the redelivered events are recognised and skipped: the effect is exactly once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import asyncpg
from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import BatchSubscriber
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from contactcenter.eventstore import PG_OUTAGE_ERRORS, PgConnection, apply_once
from contactcenter.messaging.cloudevents import EventEnvelope
from contactcenter.messaging.processing import RetryPolicy
from contactcenter.messaging.settings import KafkaSettings
from contactcenter.messaging.subscriber import subscribe_envelope_batches
from contactcenter.observability import context_from_carrier

_tracer = trace.get_tracer("contactcenter.eventbus.consumer")


class Projection(Protocol):
    """A read model or process manager fed from Kafka.

    `name` is its consumer group and the key of what it applied; `apply` writes its effect
    with `conn`, inside the transaction that also records the event as applied.

    A class attribute `tracked = False` declares a consumer whose effect is idempotent by
    itself (an event-store append with the request id `event:<event id>`): it gets a plain
    connection, no transaction is held open around its own commits, so they are visible to
    the outbox relay at once (a tail reader sees no transaction newer than the oldest one
    still running) and no second commit is paid per batch.
    """

    name: str
    topics: Sequence[str]

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None: ...


@runtime_checkable
class PartitionAware(Protocol):
    """A projection that keeps state per partition (the routing service's tenant shards).

    Told which partitions of its topics its consumer group gives this process, after each
    rebalance: `revoked` before the group moves them (finish or drop their state),
    `assigned` once they are this process's (load their state).
    """

    async def partitions_revoked(self, partitions: frozenset[TopicPartition]) -> None: ...

    async def partitions_assigned(self, partitions: frozenset[TopicPartition]) -> None: ...


class _RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, projection: PartitionAware) -> None:
        self._projection = projection

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._projection.partitions_revoked(frozenset(revoked))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self._projection.partitions_assigned(frozenset(assigned))


def subscribe_projection(
    broker: KafkaBroker,
    pool: asyncpg.Pool,
    schema: str,
    projection: Projection,
    settings: KafkaSettings,
    *,
    retry: RetryPolicy | None = None,
) -> list[BatchSubscriber]:
    """Declare one batch subscriber per topic of `projection` on `broker` (start the broker to
    run them).

    A lost database (a PostgreSQL restart) is an outage, not a poison message: the batch waits
    for the database and is applied then, never dead-lettered (`PG_OUTAGE_ERRORS`)."""
    policy = retry or RetryPolicy.from_settings(settings)
    if not policy.outage_errors:
        policy = dataclasses.replace(policy, outage_errors=PG_OUTAGE_ERRORS)

    async def apply_traced(conn: PgConnection, envelope: EventEnvelope) -> None:
        carrier = {"traceparent": envelope.traceparent} if envelope.traceparent else {}
        with _tracer.start_as_current_span(
            f"{projection.name} process",
            context=context_from_carrier(carrier),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.consumer.group.name": projection.name,
                "messaging.message.id": str(envelope.id),
                "contactcenter.tenant_id": envelope.tenant_id,
                "contactcenter.event_type": envelope.type,
            },
        ):
            await projection.apply(conn, envelope)

    async def handle(batch: list[EventEnvelope]) -> None:
        await apply_once(
            pool,
            schema,
            projection.name,
            batch,
            apply_traced,
            event_id=lambda e: e.id,
            occurred_at=lambda e: e.time,
        )

    async def handle_untracked(batch: list[EventEnvelope]) -> None:
        async with pool.acquire() as conn:
            for envelope in batch:
                await apply_traced(conn, envelope)

    tracked = getattr(projection, "tracked", True)

    listener = _RebalanceListener(projection) if isinstance(projection, PartitionAware) else None
    return [
        subscribe_envelope_batches(
            broker,
            topic,
            handle if tracked else handle_untracked,
            group_id=projection.name,
            settings=settings,
            retry=policy,
            listener=listener,
        )
        for topic in projection.topics
    ]
