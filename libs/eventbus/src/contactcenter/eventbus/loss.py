"""The outbox relay's guard against a broker that lost what it was given.

A broker can lose records it acknowledged: the local Tansu keeps its topics in memory and
comes back empty after a restart; an Apache Kafka cluster can lose a tail in an unclean leader
election. The relay then has to publish again, from its event store, what the topics lost.

`PublishedOffsets` records, per topic-partition, the offset after the last record the broker
acknowledged to this relay (persisted beside the relay's checkpoint, so a restarted relay
still knows). The log went backwards when
- an acknowledgement comes back with an offset below what was recorded (the relay published
  into a recreated topic), or
- the topic's end offset, asked on start-up and periodically, is below what was recorded, or
  the topic is gone.
Either is a loss: the relay rewinds to the start of its store and republishes (same `ce_id`s;
consumers recognise the repeats by event id).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from contactcenter.eventstore import PgPool
from contactcenter.eventstore._pg import connection, quote_ident

_log = logging.getLogger(__name__)

#: The consumer name under which the relay keeps its published offsets (one row per partition,
#: source `<topic>:<partition>`, position = the next offset after its last acknowledged record).
OFFSETS_CONSUMER = "outbox-relay:offsets"


@dataclass(frozen=True, slots=True)
class Loss:
    """A partition whose log ends below what the relay had published to it."""

    topic: str
    partition: int
    published: int
    end: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}] ends at {self.end}, {self.published} published"


class PublishedOffsets:
    """What the relay of `schema` published, per topic-partition (see the module's doc)."""

    def __init__(self, pool: PgPool, schema: str) -> None:
        self._pool = pool
        self._schema = schema
        self._next: dict[tuple[str, int], int] = {}
        self._dirty: set[tuple[str, int]] = set()

    @property
    def topics(self) -> set[str]:
        return {topic for topic, _ in self._next}

    @property
    def partitions(self) -> set[tuple[str, int]]:
        return set(self._next)

    async def load(self) -> None:
        s = quote_ident(self._schema)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"select source, position from {s}.consumer_positions where consumer = $1",
                OFFSETS_CONSUMER,
            )
        self._next = {}
        for row in rows:
            topic, _, partition = row["source"].rpartition(":")
            self._next[(topic, int(partition))] = row["position"]
        self._dirty.clear()

    def record(self, acks: Iterable[Any]) -> list[Loss]:
        """Note the broker's acknowledgements (aiokafka `RecordMetadata`s); returns the
        partitions whose acknowledged offset went below what was recorded (a recreated log)."""
        losses: list[Loss] = []
        for ack in acks:
            offset = getattr(ack, "offset", None)
            if not isinstance(offset, int) or offset < 0:
                continue  # FastStream's in-memory test broker: no offsets
            key = (ack.topic, ack.partition)
            known = self._next.get(key, 0)
            if offset < known and not any((loss.topic, loss.partition) == key for loss in losses):
                losses.append(Loss(ack.topic, ack.partition, known, offset))
            if offset + 1 > known:
                self._next[key] = offset + 1
                self._dirty.add(key)
        return losses

    def compare(self, ends: dict[tuple[str, int], int]) -> list[Loss]:
        """The partitions whose end offset (absent: the topic is gone, 0) is below what was
        recorded."""
        return [
            Loss(topic, partition, published, ends.get((topic, partition), 0))
            for (topic, partition), published in sorted(self._next.items())
            if ends.get((topic, partition), 0) < published
        ]

    async def save(self) -> None:
        """Persist the offsets recorded since the last save."""
        if not self._dirty:
            return
        s = quote_ident(self._schema)
        rows = [(OFFSETS_CONSUMER, f"{t}:{p}", self._next[(t, p)]) for t, p in self._dirty]
        async with self._pool.acquire() as conn:
            await conn.executemany(
                f"insert into {s}.consumer_positions as old (consumer, source, position) "
                "values ($1, $2, $3) on conflict (consumer, source) do update "
                "set position = excluded.position, updated_at = now() "
                "where old.position < excluded.position",
                rows,
            )
        self._dirty.clear()

    async def forget(self, conn: Any = None) -> None:
        """Drop every recorded offset (after a loss: the logs start again)."""
        s = quote_ident(self._schema)
        async with connection(conn if conn is not None else self._pool) as c:
            await c.execute(
                f"delete from {s}.consumer_positions where consumer = $1", OFFSETS_CONSUMER
            )
        self._next.clear()
        self._dirty.clear()


class EndOffsets:
    """Asks the broker for the end offsets of topic-partitions, through a consumer of its own
    (no group): started on first use, restarted after an error."""

    def __init__(self, bootstrap_servers: str, *, client_id: str, timeout_s: float = 5.0) -> None:
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._consumer: AIOKafkaConsumer | None = None

    async def fetch(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """End offsets of `partitions` (a missing topic's partitions are left out); raises
        `TimeoutError` or `KafkaError` when the broker does not answer (no conclusion)."""
        wanted = sorted(set(partitions))
        if not wanted:
            return {}
        try:
            async with asyncio.timeout(self._timeout_s):
                consumer = await self._started()
                # A fresh metadata request: the consumer's cache may predate a restart.
                existing = await consumer.topics()
                tps = [TopicPartition(t, p) for t, p in wanted if t in existing]
                known = {
                    tp
                    for tp in tps
                    if (parts := consumer.partitions_for_topic(tp.topic)) is not None
                    and tp.partition in parts
                }
                ends = await consumer.end_offsets(list(known)) if known else {}
        except (TimeoutError, KafkaError, OSError):
            await self.close()
            raise
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                enable_auto_commit=False,
                metadata_max_age_ms=1000,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except Exception as exc:  # closing a client of a broker that went away
                _log.debug("closing the end-offset client: %r", exc)
