"""The consumer runner for projections and process managers.

A projection gets batches of envelopes from Kafka and applies them to its own tables; the ids
of the events it applied are recorded in the same transaction (`apply_once`), and the Kafka
offsets are committed only after that transaction. A crash between the two redelivers the
batch, and the redelivered events are recognised and skipped: the effect is exactly once.

Each stream's events are applied in their order (`contactcenter.messaging.ordering`): an event
whose predecessors were not applied (a broker that lost its logs delivered it out of place) is
held back until the republication brings its stream again. A dead-lettered event counts as
consumed, so that its stream goes on after it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

import asyncpg
from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import BatchSubscriber
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from contactcenter.eventstore import (
    PG_OUTAGE_ERRORS,
    PgConnection,
    apply_once,
    load_stream_heads,
    save_stream_heads,
)
from contactcenter.messaging.cloudevents import EventEnvelope, InvalidCloudEvent, decode
from contactcenter.messaging.ordering import (
    StreamHeads,
    StreamKey,
    Verdict,
    stream_keys,
    stream_version,
)
from contactcenter.messaging.processing import DeadLetterSink, RetryPolicy
from contactcenter.messaging.settings import KafkaSettings
from contactcenter.messaging.subscriber import BrokerDeadLetters, subscribe_envelope_batches
from contactcenter.observability import context_from_carrier

_log = logging.getLogger(__name__)
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


class KnownHeads:
    """The stream heads an untracked consumer stored, kept in memory while its partitions stay
    with it: a batch reads from the database only the heads of streams it has not met.

    A stream's first event alone in its batch needs no head at all: nothing comes before it,
    and an untracked consumer's effect is idempotent by itself, so if it is a repeat (a
    redelivery after a restart) it is applied again to no effect, and the head stored after
    it tells where the stream really is.
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self._heads: dict[StreamKey, int] = {}
        self._capacity = capacity

    async def load(
        self, conn: PgConnection, schema: str, consumer: str, batch: Sequence[EventEnvelope]
    ) -> dict[StreamKey, int]:
        """The heads of the streams of `batch` (a stream without one is at 0)."""
        versions: dict[StreamKey, list[int]] = {}
        for envelope in batch:
            if (found := stream_version(envelope)) is not None:
                versions.setdefault(found[0], []).append(found[1])
        heads = {k: self._heads[k] for k in versions if k in self._heads}
        unknown = {k for k, v in versions.items() if k not in heads and v != [1]}
        if unknown:
            loaded = await load_stream_heads(conn, schema, consumer, unknown)
            known = {k: loaded.get(k, 0) for k in unknown}
            heads.update(known)
            self.remember(known)
        return heads

    def remember(self, heads: dict[StreamKey, int]) -> None:
        """Keep the heads as stored."""
        if len(self._heads) + len(heads) > self._capacity:
            self._heads.clear()
        self._heads.update(heads)

    def forget(self) -> None:
        """The partitions moved: another consumer may have moved the heads meanwhile."""
        self._heads.clear()


class _RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, projection: Projection, known: KnownHeads | None) -> None:
        self._projection = projection if isinstance(projection, PartitionAware) else None
        self._known = known

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        if self._known is not None:
            self._known.forget()
        if self._projection is not None:
            await self._projection.partitions_revoked(frozenset(revoked))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        if self._known is not None:
            self._known.forget()
        if self._projection is not None:
            await self._projection.partitions_assigned(frozenset(assigned))


def waiting_out_database_outages(policy: RetryPolicy) -> RetryPolicy:
    """`policy`, with a lost database (a PostgreSQL restart) as an outage to wait out, never a
    reason to dead-letter (unless it names its own outage errors)."""
    if policy.outage_errors:
        return policy
    return dataclasses.replace(policy, outage_errors=PG_OUTAGE_ERRORS)


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
    policy = waiting_out_database_outages(retry or RetryPolicy.from_settings(settings))

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

    name = projection.name

    async def handle(batch: list[EventEnvelope]) -> None:
        await apply_in_order(pool, schema, name, batch, apply_traced)

    tracked = getattr(projection, "tracked", True)
    known = None if tracked else KnownHeads()

    async def handle_untracked(batch: list[EventEnvelope]) -> None:
        assert known is not None
        async with pool.acquire() as conn:
            heads = StreamHeads(await known.load(conn, schema, name, batch))
            for envelope in in_stream_order(name, heads, batch):
                await apply_traced(conn, envelope)
            # After the effects (each idempotent by itself): a crash before this line leaves
            # the heads behind, and the redelivered events are applied again, to no effect.
            known.remember(await save_stream_heads(conn, schema, name, heads.take_moved()))

    listener = (
        _RebalanceListener(projection, known)
        if known is not None or isinstance(projection, PartitionAware)
        else None
    )
    return [
        subscribe_envelope_batches(
            broker,
            topic,
            handle if tracked else handle_untracked,
            group_id=projection.name,
            settings=settings,
            retry=policy,
            listener=listener,
            dead_letters=ConsumedDeadLetters(
                BrokerDeadLetters(broker), pool, schema, name, known=known
            ),
        )
        for topic in projection.topics
    ]


async def apply_in_order(
    pool: asyncpg.Pool,
    schema: str,
    consumer: str,
    batch: Sequence[EventEnvelope],
    apply: Callable[[PgConnection, EventEnvelope], Awaitable[None]],
) -> None:
    """In one transaction: apply the envelopes of `batch` that continue their streams and
    were not applied before, and record them as applied (ids and streams' heads)."""
    async with pool.acquire() as conn, conn.transaction():
        heads = StreamHeads(await load_stream_heads(conn, schema, consumer, stream_keys(batch)))
        await apply_once(
            conn,
            schema,
            consumer,
            in_stream_order(consumer, heads, batch),
            apply,
            event_id=lambda e: e.id,
            occurred_at=lambda e: e.time,
        )
        await save_stream_heads(conn, schema, consumer, heads.take_moved())


def in_stream_order(
    consumer: str, heads: StreamHeads, batch: Sequence[EventEnvelope]
) -> list[EventEnvelope]:
    """The envelopes of `batch` that continue their streams (moving `heads`); repeats are
    dropped, and what comes before its predecessors is held back (said in the log)."""
    admitted = []
    for envelope in batch:
        verdict = heads.judge(envelope)
        if verdict is Verdict.NEXT:
            admitted.append(envelope)
        elif verdict is Verdict.GAP:
            found = stream_version(envelope)
            assert found is not None
            _log.warning(
                "%s: %s %s is version %d of %s, which was applied only to version %d: held "
                "back until its stream comes again in order (a broker that lost its logs)",
                consumer,
                envelope.type,
                envelope.id,
                found[1],
                envelope.subject,
                heads.head(found[0]),
            )
    return admitted


class ConsumedDeadLetters:
    """Dead letters that count as consumed: the head of the event's stream moves past it.
    Held back otherwise, every later event of that stream would wait for it forever."""

    def __init__(
        self,
        inner: DeadLetterSink,
        pool: asyncpg.Pool,
        schema: str,
        consumer: str,
        *,
        known: KnownHeads | None = None,
    ):
        self._inner = inner
        self._pool = pool
        self._schema = schema
        self._consumer = consumer
        self._known = known

    async def send(
        self,
        topic: str,
        *,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]],
    ) -> None:
        await self._inner.send(topic, key=key, value=value, headers=headers)
        try:
            envelope = decode(headers, value, key=key)
        except InvalidCloudEvent:
            return  # not one of our events: no stream to move
        heads = StreamHeads()
        heads.skip_past(envelope)
        stored = await save_stream_heads(
            self._pool, self._schema, self._consumer, heads.take_moved()
        )
        if self._known is not None:
            self._known.remember(stored)
