"""The live projection: Kafka -> the fold in memory -> wallboard subscribers -> PostgreSQL.

Per fetched partition batch:
1. read the relevant events into facts (a poison event raises before anything changed; the
   processor then replays the batch one event at a time and dead-letters the poison one);
2. skip events already applied (their streams' heads, recent event ids in memory; the inbox
   is the authority), and hold back an event whose stream's earlier events were not applied
   yet (`contactcenter.messaging.ordering`: a broker that lost its logs);
3. fold them into the in-memory state and publish the changed tiles to the wallboard feed at
   once (freshness does not wait for the database);
4. in ONE transaction: check the read models' generation (a rebuild swap bumps it), insert the
   events into `inbox` (unique event id), upsert the changed rows, save the partition's
   streams' heads and the partition's position. If the database disagrees (a duplicate the
   memory did not know, a rebuild swap, any error, a database outage) the memory is reloaded
   from the committed rows before the batch is tried again: the memory never runs ahead of
   what is committed for long, and nothing applies twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Final

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from contactcenter.eventbus.consumer import in_stream_order
from contactcenter.eventstore import (
    Checkpoint,
    load_stream_heads,
    save_position,
    save_stream_heads,
)
from contactcenter.messaging.cloudevents import EventEnvelope
from contactcenter.messaging.ordering import StreamHeads, StreamKey, stream_keys
from contactcenter.messaging.processing import ConsumedRecord, EnvelopeProcessor
from contactcenter.reporting.adapters.inbound import TOPICS, is_relevant, read_fact
from contactcenter.reporting.application.feed import Update, WallboardFeed
from contactcenter.reporting.domain import facts as f
from contactcenter.reporting.domain.intervals import to_ms
from contactcenter.reporting.domain.state import ReportingState, TenantState
from contactcenter.reporting.domain.views import agent_view, queue_ids, queue_view
from contactcenter.reporting.projections.store import load_state, quote, write_changes

_log = logging.getLogger(__name__)

CONSUMER: Final = "reporting.live"
#: Event ids remembered to skip redelivered duplicates without a database round trip.
SEEN_CAPACITY: Final = 200_000


class Diverged(Exception):
    """The memory disagrees with the committed read models: reload and retry."""


def now_ms() -> int:
    return int(time.time() * 1000)


def snapshot_of(t: TenantState | None, now: int) -> Update:
    u = Update(snapshot=True)
    if t is not None:
        u.queues = {q: queue_view(t, q, now) for q in queue_ids(t)}
        u.agents = {a.agent_id: agent_view(t, a, now) for a in t.agents.values()}
    return u


class LiveProjection:
    def __init__(self, pool: asyncpg.Pool, schema: str, feed: WallboardFeed) -> None:
        self._pool = pool
        self._schema = schema
        self._s = quote(schema)
        self.feed = feed
        self.state = ReportingState()
        self.generation = 0
        self._seen: OrderedDict[Any, None] = OrderedDict()
        self.positions: dict[str, int] = {}
        self.applied = 0
        #: Time of the latest event applied, and when it was applied (for the lag gauge).
        self.last_event_ms = 0
        self.last_applied_wall_ms = 0
        self.loaded = asyncio.Event()
        #: The memory may be ahead of the committed read models (a batch failed): reload it.
        self._stale = False

    # --- state ------------------------------------------------------------------------------

    async def load(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            self.generation = await conn.fetchval(
                f"select generation from {self._s}.rm_meta where id = 1"
            )
            self.state = await load_state(conn, self._schema)
            rows = await conn.fetch(
                f"select event_id from {self._s}.inbox order by seq desc limit $1", SEEN_CAPACITY
            )
            positions = await conn.fetch(
                f"select source, position from {self._s}.consumer_positions where consumer = $1",
                CONSUMER,
            )
        self._seen = OrderedDict((r["event_id"], None) for r in reversed(rows))
        self.positions = {r["source"]: r["position"] for r in positions}
        self._stale = False
        self.loaded.set()

    def _remember(self, ids: Sequence[Any]) -> None:
        for event_id in ids:
            self._seen[event_id] = None
        while len(self._seen) > SEEN_CAPACITY:
            self._seen.popitem(last=False)

    # --- one batch --------------------------------------------------------------------------

    async def handle(self, envelopes: list[EventEnvelope], checkpoint: Checkpoint | None) -> None:
        if self._stale:
            await self.load()  # a failed batch left the memory ahead of what is committed
        heads = StreamHeads(
            await load_stream_heads(self._pool, self._schema, CONSUMER, stream_keys(envelopes))
        )
        parsed: list[tuple[EventEnvelope, f.Fact]] = []
        for e in in_stream_order(CONSUMER, heads, envelopes):
            if is_relevant(e.type) and e.id not in self._seen:
                parsed.append((e, read_fact(e.type, e.tenant_id, to_ms(e.time), e.data)))
        # a duplicate within the batch applies once
        unique: dict[Any, tuple[EventEnvelope, f.Fact]] = {}
        for e, fact in parsed:
            unique.setdefault(e.id, (e, fact))
        items = list(unique.values())
        self._stale = True
        try:
            touched: dict[str, TenantState] = {}
            for _, fact in items:
                touched[fact.tenant_id] = self.state.apply(fact)
            if items:
                self._publish(touched, items[-1][0])
            await self._commit(items, touched, checkpoint, heads.take_moved())
        except BaseException:
            # Reloaded at once if the database answers, else before the next batch.
            with contextlib.suppress(Exception):
                await self.load()
            raise
        self._stale = False
        self._remember([e.id for e, _ in items])
        self.applied += len(items)
        if items:
            self.last_event_ms = max(self.last_event_ms, items[-1][1].at)
            self.last_applied_wall_ms = now_ms()
        if checkpoint is not None:
            self.positions[checkpoint.source] = int(checkpoint.position)  # type: ignore[arg-type]

    def _publish(self, touched: dict[str, TenantState], last: EventEnvelope) -> None:
        now = now_ms()
        for tenant_id, t in touched.items():
            queues, agents, _ = t.drain_changes()
            if not self.feed.has_subscribers(tenant_id):
                continue
            update = Update(
                snapshot=False,
                queues={q: queue_view(t, q, now) for q in queues},
                agents={a: agent_view(t, t.agents[a], now) for a in agents if a in t.agents},
                last_event_id=str(last.id),
                last_event_time=to_ms(last.time),
            )
            self.feed.publish(tenant_id, update)

    async def _commit(
        self,
        items: list[tuple[EventEnvelope, f.Fact]],
        touched: dict[str, TenantState],
        checkpoint: Checkpoint | None,
        heads: dict[StreamKey, int],
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            generation = await conn.fetchval(
                f"select generation from {self._s}.rm_meta where id = 1 for share"
            )
            if generation != self.generation:
                raise Diverged("the read models were rebuilt")
            if items:
                inserted = await conn.fetch(
                    f"insert into {self._s}.inbox (event_id, tenant_id, type, at_ms, data) "
                    "select * from unnest($1::uuid[], $2::text[], $3::text[], $4::int8[], "
                    "$5::text[]) on conflict (event_id) do nothing returning event_id",
                    [e.id for e, _ in items],
                    [e.tenant_id for e, _ in items],
                    [e.type for e, _ in items],
                    [fact.at for _, fact in items],
                    [json.dumps(e.data, separators=(",", ":")) for e, _ in items],
                )
                if len(inserted) != len(items):
                    raise Diverged("an event was applied before")
                changes = [(tid, *t.drain()) for tid, t in touched.items()]
                await write_changes(conn, self._schema, self.state, changes)
            await save_stream_heads(conn, self._schema, CONSUMER, heads)
            if checkpoint is not None:
                await save_position(conn, self._schema, CONSUMER, checkpoint)


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, continue from the positions committed with the read models, if the
    broker still holds the log they point into.

    A broker that lost its logs (restarted empty; its topics remade) lost the group's committed
    offsets with them, while the positions in PostgreSQL survive. The new log holds the
    relays' republished events and the events first published since, in another order:
    continuing from the old position would skip those below it for good. So without a
    committed offset at the broker the partition is read from its beginning (what was applied
    before is recognised by event id and skipped).
    """

    def __init__(self, projection: LiveProjection, consumer: Callable[[], AIOKafkaConsumer]):
        self._projection = projection
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        consumer = self._consumer()
        for tp in assigned:
            position = self._projection.positions.get(f"{tp.topic}:{tp.partition}")
            if position is None:
                continue
            if await consumer.committed(tp) is None:
                _log.warning(
                    "%s: the broker has no committed offset for %s:%d, which the read models "
                    "had read to %d: its log may be another one (a broker that lost its "
                    "logs); reading the partition from its beginning",
                    CONSUMER,
                    tp.topic,
                    tp.partition,
                    position,
                )
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, position)


async def consume(
    projection: LiveProjection,
    processor: EnvelopeProcessor,
    *,
    bootstrap_servers: str,
    group_id: str,
    stop: asyncio.Event,
    fetch_max_wait_ms: int = 5,
    session_timeout_ms: int = 10_000,
    heartbeat_interval_ms: int = 3_000,
    max_records: int = 2_000,
    topics: Sequence[str] = TOPICS,
) -> None:
    """The consumer loop: one batch per fetched partition, committed after the read models."""
    await projection.load()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_max_wait_ms,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=heartbeat_interval_ms,
        # Range, not round robin: every topic is keyed by tenant with the same partition count,
        # so partition n of each topic (one tenant's interactions, routing and reporting
        # events) goes to the same replica, which folds them together.
        partition_assignment_strategy=(RangePartitionAssignor,),
    )
    consumer.subscribe(list(topics), listener=_Assignments(projection, lambda: consumer))
    await consumer.start()
    try:
        while not stop.is_set():
            try:
                fetched = await consumer.getmany(timeout_ms=100, max_records=max_records)
            except KafkaError as exc:
                _log.warning("fetch failed (%r); retrying", exc)
                await asyncio.sleep(0.5)
                continue
            commits: dict[TopicPartition, int] = {}
            for tp, records in fetched.items():
                await _handle_partition(projection, processor, tp, records)
                commits[tp] = records[-1].offset + 1
            if commits:
                with contextlib.suppress(KafkaError):
                    await consumer.commit(commits)
    finally:
        await consumer.stop()


async def _handle_partition(
    projection: LiveProjection,
    processor: EnvelopeProcessor,
    tp: TopicPartition,
    records: Sequence[ConsumedRecord],
) -> None:
    total = len(records)
    checkpoint = Checkpoint(f"{tp.topic}:{tp.partition}", records[-1].offset + 1)

    async def handler(envelopes: list[EventEnvelope]) -> None:
        # The position moves with a whole batch only; a batch replayed event by event (after
        # a poison event) leaves it, and the inbox keeps the replay exactly once.
        whole = len(envelopes) == total
        await projection.handle(envelopes, checkpoint if whole else None)

    await processor.process_batch(records, handler)
