"""The outbox relay's guard against a broker that lost what it was given.

A broker can lose records it acknowledged: the local Tansu keeps its topics in memory and
comes back empty after a restart; an Apache Kafka cluster can lose a tail in an unclean leader
election. The relay then has to publish again, from its event store, what the topics lost.

`PublishedOffsets` records, per topic-partition, the offset (and event id) of the last record
the broker acknowledged to this relay; the offsets are persisted beside the relay's
checkpoint, so a restarted relay still knows. The log lost records when
- an acknowledgement comes back with an offset below what was recorded (the relay published
  into a recreated topic), or
- asked on start-up and periodically, the topic is gone, or the last record acknowledged is
  no longer at its offset (read back with a fetch; its event id is compared when known).
  End offsets alone cannot tell: Tansu reports the end of a partition as the base offset of
  its last batch plus one, below the true end whenever that batch held several records.
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
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from contactcenter.eventstore import PgPool
from contactcenter.eventstore._pg import connection, quote_ident
from contactcenter.messaging.admin import topic_partitions

_log = logging.getLogger(__name__)

#: The consumer name under which the relay keeps its published offsets (one row per partition,
#: source `<topic>:<partition>`, position = the next offset after its last acknowledged record).
OFFSETS_CONSUMER = "outbox-relay:offsets"


@dataclass(frozen=True, slots=True)
class Loss:
    """A partition that no longer holds the last record the relay published to it."""

    topic: str
    partition: int
    offset: int
    found: str

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}: {self.found}"


@dataclass(frozen=True, slots=True)
class Published:
    """The last record acknowledged on a partition: its offset and (known in this process
    only) its event id."""

    offset: int
    event_id: str | None = None


class PublishedOffsets:
    """What the relay of `schema` published, per topic-partition (see the module's doc)."""

    def __init__(self, pool: PgPool, schema: str) -> None:
        self._pool = pool
        self._schema = schema
        self.last: dict[tuple[str, int], Published] = {}
        self._dirty: set[tuple[str, int]] = set()

    @property
    def topics(self) -> set[str]:
        return {topic for topic, _ in self.last}

    async def load(self) -> None:
        s = quote_ident(self._schema)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                f"select source, position from {s}.consumer_positions where consumer = $1",
                OFFSETS_CONSUMER,
            )
        self.last = {}
        for row in rows:
            topic, _, partition = row["source"].rpartition(":")
            self.last[(topic, int(partition))] = Published(row["position"])
        self._dirty.clear()

    def record(self, acks: Iterable[Any], event_ids: Iterable[str]) -> list[Loss]:
        """Note the broker's acknowledgements (aiokafka `RecordMetadata`s, with the event ids
        of their records); returns the partitions whose acknowledged offset went below what
        was recorded (a recreated log)."""
        losses: dict[tuple[str, int], Loss] = {}
        for ack, event_id in zip(acks, event_ids, strict=True):
            offset = getattr(ack, "offset", None)
            if not isinstance(offset, int) or offset < 0:
                continue  # FastStream's in-memory test broker: no offsets
            key = (ack.topic, ack.partition)
            known = self.last.get(key)
            if known is not None and offset <= known.offset and key not in losses:
                found = f"acknowledged at {offset} after {known.offset}"
                losses[key] = Loss(ack.topic, ack.partition, known.offset, found)
            if known is None or offset > known.offset:
                self.last[key] = Published(offset, event_id)
                self._dirty.add(key)
        return list(losses.values())

    async def save(self) -> None:
        """Persist the offsets recorded since the last save."""
        if not self._dirty:
            return
        s = quote_ident(self._schema)
        rows = [(OFFSETS_CONSUMER, f"{t}:{p}", self.last[(t, p)].offset) for t, p in self._dirty]
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
        self.last.clear()
        self._dirty.clear()


class LogProbe:
    """Reads back, through a consumer of its own (no group), whether partitions still hold the
    records the relay published last. Started on first use, restarted after an error."""

    def __init__(self, bootstrap_servers: str, *, client_id: str, timeout_s: float = 5.0) -> None:
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    async def losses(self, published: dict[tuple[str, int], Published]) -> list[Loss]:
        """The partitions of `published` that lost their last record; raises `TimeoutError`
        or `KafkaError` when the broker does not answer (no conclusion)."""
        if not published:
            return []
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._probe(await self._started(), published)
        except (TimeoutError, KafkaError, OSError):
            await self.close()
            raise

    async def _probe(
        self, consumer: AIOKafkaConsumer, published: dict[tuple[str, int], Published]
    ) -> list[Loss]:
        losses: list[Loss] = []
        existing = await topic_partitions(await self._admin_started(), {t for t, _ in published})
        present: dict[TopicPartition, Published] = {}
        for (topic, partition), last in sorted(published.items()):
            if partition not in existing.get(topic, ()):
                losses.append(Loss(topic, partition, last.offset, "the partition is gone"))
            else:
                present[TopicPartition(topic, partition)] = last
        if not present:
            return losses
        ends = await consumer.end_offsets(list(present))
        starts = await consumer.beginning_offsets(list(present))
        to_read: dict[TopicPartition, Published] = {}
        for tp, last in present.items():
            if ends[tp] == 0 or not starts[tp] <= last.offset:
                found = f"the log holds [{starts[tp]}, {ends[tp]})"
                losses.append(Loss(tp.topic, tp.partition, last.offset, found))
            else:
                to_read[tp] = last
        if to_read:
            losses += await self._read_back(consumer, to_read)
        return losses

    async def _read_back(
        self, consumer: AIOKafkaConsumer, wanted: dict[TopicPartition, Published]
    ) -> list[Loss]:
        consumer.assign(list(wanted))
        for tp, last in wanted.items():
            consumer.seek(tp, last.offset)
        found: dict[TopicPartition, str | None] = {}
        while len(found) < len(wanted):
            batch = await consumer.getmany(*wanted, timeout_ms=500, max_records=50)
            for tp, records in batch.items():
                if tp in found:
                    continue
                if records and records[0].offset < wanted[tp].offset:
                    # Fetched from before the offset sought: the broker found it beyond the
                    # log's end, and the position was reset to the start.
                    found[tp] = f"offset {wanted[tp].offset} is beyond the end of the log"
                    continue
                record = records[0] if records else None
                if record is None:
                    continue
                if record.offset != wanted[tp].offset:
                    found[tp] = f"offset {wanted[tp].offset} missing (next is {record.offset})"
                    continue
                ce_id = dict(record.headers).get("ce_id")
                expected = wanted[tp].event_id
                if expected is not None and (ce_id is None or ce_id.decode() != expected):
                    found[tp] = f"another record there ({ce_id!r}, not {expected})"
                else:
                    found[tp] = None
        return [
            Loss(tp.topic, tp.partition, wanted[tp].offset, what)
            for tp, what in found.items()
            if what is not None
        ]

    async def ids_on(self, topic: str, *, timeout_s: float = 120.0) -> set[str]:
        """The event ids (`ce_id`) of every record the topic holds now, read from the start
        of each partition to its end. Raises like `losses` when the broker does not answer."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self._read_ids(await self._started(), topic)
        except (TimeoutError, KafkaError, OSError):
            await self.close()
            raise

    async def _read_ids(self, consumer: AIOKafkaConsumer, topic: str) -> set[str]:
        existing = await topic_partitions(await self._admin_started(), [topic])
        tps = [TopicPartition(topic, p) for p in sorted(existing.get(topic, ()))]
        seen: set[str] = set()
        if not tps:
            return seen
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (
                await consumer.getmany(*tps, timeout_ms=500, max_records=5000)
            ).values():
                for record in records:
                    ce_id = dict(record.headers).get("ce_id")
                    if ce_id is not None:
                        seen.add(ce_id.decode())
        return seen

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                metadata_max_age_ms=1000,
                fetch_max_wait_ms=100,
                request_timeout_ms=int(self._timeout_s * 1000),
            )
            self._consumer = consumer  # a start cut short by the timeout is stopped too
            await consumer.start()
        return self._consumer

    async def _admin_started(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap,
                client_id=self._client_id,
                request_timeout_ms=int(self._timeout_s * 1000),
            )
            self._admin = admin  # a start cut short by the timeout is closed too
            await admin.start()
        return self._admin

    async def close(self) -> None:
        """Stop the probe's clients, within the timeout: a paused broker must not hang the
        relay in here."""
        consumer, self._consumer = self._consumer, None
        admin, self._admin = self._admin, None
        for client in (consumer, admin):
            if client is None:
                continue
            try:
                async with asyncio.timeout(self._timeout_s):
                    await (
                        client.stop() if isinstance(client, AIOKafkaConsumer) else client.close()
                    )
            except Exception as exc:  # closing a client of a broker that went away
                _log.debug("closing the log probe: %r", exc)
