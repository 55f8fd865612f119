"""The outbox relay: tails a service's event store in commit-safe order, publishes every event
to its context's topic (key = tenant, CloudEvents binary mode) and records how far it got.

At least once: the checkpoint is saved after the broker acknowledged the whole batch, so a
crash between the two republishes that batch (same `ce_id`s; consumers drop the repeats).
A broker that loses acknowledged records (the local Tansu after a restart) is noticed from the
offsets the relay records per partition (`loss.py`), and the store is published again.
Order: events are sent one after another in store order, and aiokafka keeps one request in
flight per partition, so each tenant's events reach its partition in store order. Each event
carries its version in its stream (`ce_streamversion`): after a broker lost its logs, that is
what lets consumers keep each stream in order (`contactcenter.messaging.ordering`).
One relay per schema runs at a time (a PostgreSQL advisory lock): replicas of a service
wait as standbys instead of publishing twice.

The relay inside a service publishes the appends of its own process as soon as they commit,
without reading them back (the store hands them over: `watching_commits`); the tail read then
skips them. An append goes this way only while the relay is in step with the store (it read
everything committed before, and nothing waits behind an older transaction) and only when
its stream's previous event is already published; anything else (an append of another
process, one committed inside a caller's transaction) takes the read path, and the fast path
stays closed until the read path has caught up again. Each stream therefore reaches its topic
in version order, and an append of this process never overtakes an earlier one of the same
process. While only this process appends, the read that skips what the fast path published
waits (up to `checkpoint_every_s`, or a batch's worth): it would only move the checkpoint, and
each read was a database round trip beside the next append's publication.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from contactcenter.contracts.topics import topic_for_event_type
from contactcenter.eventbus.loss import LogProbe, Loss, PublishedOffsets
from contactcenter.eventstore import (
    STORE_SOURCE,
    Checkpoint,
    GlobalPosition,
    PostgresEventStore,
    RecordedEvent,
    TailPacer,
    Wakeup,
    create_pool,
    load_global_position,
    reset_position,
    save_position,
)
from contactcenter.messaging.admin import dlq_topic, ensure_topics, repair_topics
from contactcenter.messaging.broker import create_broker, kafka_producer, reconnect_producer
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.messaging.ordering import STREAM_VERSION
from contactcenter.messaging.publisher import EnvelopePublisher
from contactcenter.messaging.settings import KafkaSettings
from contactcenter.observability import context_from_carrier, inject_carrier
from contactcenter.observability.lean import spans_recorded

_log = logging.getLogger(__name__)
_tracer = trace.get_tracer("contactcenter.eventbus.relay")
_meter = metrics.get_meter("contactcenter.eventbus.relay")
_lag_ms = _meter.create_histogram(
    "outbox.relay.lag", unit="ms", description="append (recorded_at) to broker ack"
)
_published = _meter.create_counter("outbox.relay.published", description="events published")
_republished = _meter.create_counter(
    "outbox.relay.losses", description="times the broker was found to have lost published events"
)

RELAY_CONSUMER = "outbox-relay"

#: Streams whose last published version the relay remembers (for the fast path); past this
#: many it forgets them all, and their next appends take the read path once.
STREAM_HEADS_KEPT = 100_000


def envelope_of(event: RecordedEvent, source: str, traceparent: str | None) -> EventEnvelope:
    return EventEnvelope(
        id=event.event_id,
        type=event.event_type,
        source=source,
        subject=event.stream_id,
        time=event.occurred_at,
        tenant_id=event.tenant_id,
        data=event.data,
        traceparent=traceparent,
        tracestate=event.metadata.get("tracestate"),
        extensions={STREAM_VERSION: str(event.version)},
    )


class LeadershipLost(Exception):
    """The connection holding the relay's lock was lost (a database restart): publishing
    stopped; running the relay again waits for the lock."""


async def _set_when_either(target: asyncio.Event, *events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        target.set()
    finally:
        for wait in waits:
            wait.cancel()


class _Wakeups(Wakeup):
    """What the relay waits for: an append this process committed (`committed()`, from the
    store's hand-over) or one another process announced (the store's `set()`, for its NOTIFY or
    a renewed LISTEN, which also marks `others_appended`: the read path is due). One event, so
    that a commit wakes the relay at once."""

    def __init__(self) -> None:
        super().__init__()
        #: Set when another process appended; the relay clears it as it starts a read.
        self.others_appended = True

    def set(self) -> None:
        self.others_appended = True
        super().set()

    def committed(self) -> None:
        super().set()


class OutboxRelay:
    """`await relay.run(stop)` publishes until `stop` is set."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        store: PostgresEventStore,
        broker: KafkaBroker,
        source: str,
        batch_size: int = 1000,
        idle_poll_s: float = 0.25,
        standby_poll_s: float = 1.0,
        checkpoint_every_s: float = 0.2,
        bootstrap_servers: str | None = None,
        partitions: int | None = None,
        loss_check_every_s: float = 2.0,
        ack_timeout_s: float = 60.0,
    ) -> None:
        """`bootstrap_servers` turns on the periodic check of the topics' end offsets (a
        broker that lost what it acknowledged); the topics are then recreated with
        `partitions` partitions before the store is published again. A batch not acknowledged
        within `ack_timeout_s` (far beyond the producer's own request timeout) is sent again
        through a new producer."""
        self._pool = pool
        self._store = store
        self._broker = broker
        self._source = source
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._standby_poll_s = standby_poll_s
        self._checkpoint_every_s = checkpoint_every_s
        self._saved = GlobalPosition.START
        self._saved_at = 0.0
        self._publishers: dict[str, EnvelopePublisher] = {}
        self.position = GlobalPosition.START
        self.published = 0
        self.losses = 0
        #: Times a batch went unacknowledged for `ack_timeout_s` (and the producer was renewed).
        self.stalls = 0
        self._offsets = PublishedOffsets(pool, store.schema)
        self._bootstrap = bootstrap_servers
        self._partitions = partitions
        self._loss_check_every_s = loss_check_every_s
        #: Losses the watcher found, for the publishing loop to act on.
        self._found_losses: list[Loss] = []
        #: The probe's consumer serves one reading at a time (the watcher, the read-back).
        self._probe_lock = asyncio.Lock()
        self._ack_timeout_s = ack_timeout_s
        #: After publishing the store again: check, once caught up, that the topics hold it.
        self._verify_republication = False
        #: Republications read back and found complete.
        self.verified = 0
        self._probe = (
            LogProbe(bootstrap_servers, client_id=f"relay-{store.schema}-probe")
            if bootstrap_servers
            else None
        )
        #: The fast path: appends of this process handed over at their commit (None: some
        #: whose events were not handed over), the ids published before the read path got
        #: to them, the last version published of each stream, and whether the read path
        #: is in step with the store (the fast path is open).
        self._committed: deque[Sequence[RecordedEvent] | None] = deque()
        self._wakeups = _Wakeups()
        self._ahead: set[UUID] = set()
        #: When the oldest id in `_ahead` was published (the read-back is due after
        #: `checkpoint_every_s`).
        self._ahead_since = 0.0
        self._stream_heads: dict[str, int] = {}
        self._in_step = False
        #: Events published by the fast path.
        self.published_at_commit = 0

    def _publisher(self, topic: str) -> EnvelopePublisher:
        publisher = self._publishers.get(topic)
        if publisher is None:
            publisher = EnvelopePublisher(self._broker, topic)
            self._publishers[topic] = publisher
        return publisher

    @asynccontextmanager
    async def _leadership(self, stop: asyncio.Event) -> AsyncIterator[asyncio.Event | None]:
        """Holds the schema's relay lock on a dedicated connection; yields an event set when
        that connection is lost (and the lock with it), or None if stopped before getting it."""
        key = zlib.crc32(f"outbox-relay:{self._store.schema}".encode())
        async with self._pool.acquire() as conn:
            while not await conn.fetchval("select pg_try_advisory_lock($1)", key):
                try:
                    async with asyncio.timeout(self._standby_poll_s):
                        await stop.wait()
                    yield None
                    return
                except TimeoutError:
                    continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())
            try:
                yield lost
            finally:
                # A lost connection took the lock with it (and asyncpg may have released it
                # to the pool already): only a live one is unlocked.
                if not lost.is_set() and not conn.is_closed():
                    await conn.execute("select pg_advisory_unlock($1)", key)

    async def run(self, stop: asyncio.Event) -> None:
        async with self._leadership(stop) as lock_lost:
            if lock_lost is None:
                return
            schema = self._store.schema
            self.position = await load_global_position(self._pool, schema, RELAY_CONSUMER)
            self._saved = self.position
            await self._offsets.load()
            _log.info("outbox relay of %s resumes after %s", schema, self.position)
            # Publishing ends with the lock: a standby (another replica) may take it at once,
            # and two relays publishing together would interleave a stream's versions.
            leading = asyncio.Event()
            ending = asyncio.create_task(_set_when_either(leading, stop, lock_lost))
            try:
                with self._store.watching_commits(self._on_commit):
                    await self._relay(leading)
            finally:
                ending.cancel()
                if self._probe is not None:
                    await self._probe.close()
                if not lock_lost.is_set():
                    await self.save_checkpoint()
            if lock_lost.is_set() and not stop.is_set():
                raise LeadershipLost(f"outbox relay of {schema}: the lock's connection was lost")

    def _on_commit(self, events: Sequence[RecordedEvent] | None) -> None:
        self._committed.append(events)
        self._wakeups.committed()

    async def _relay(self, stop: asyncio.Event) -> None:
        # Other processes' appends come as NOTIFYs; this process's own, from the store.
        self._wakeups.others_appended = True
        async with self._store.listener(own_appends=False, wakeup=self._wakeups):
            pacer = TailPacer(self._store, self._idle_poll_s)
            await self.check_for_loss()
            # The topics are probed beside the publishing, never in its way: a probe
            # takes a broker fetch (tens of milliseconds), and an event appended
            # meanwhile would wait for it (it was the p99 of routing's offers).
            watcher = asyncio.create_task(self._watch_for_loss(stop))
            try:
                await self._publish_until(stop, pacer)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher

    async def _publish_until(self, stop: asyncio.Event, pacer: TailPacer) -> None:
        wakeup = self._wakeups
        while not stop.is_set():
            if self._found_losses:
                losses, self._found_losses = self._found_losses, []
                await self._republish_from_start(losses)
            await self.publish_committed()
            if self._read_back_may_wait():
                await wakeup.wait(self._ahead_since + self._checkpoint_every_s - time.monotonic())
                continue
            # What was announced before this read is in it (or held back: see TailPacer).
            self._wakeups.others_appended = False
            if not await self.publish_next_batch():
                if self._verify_republication:
                    await self.verify_republication()
                if not await pacer.wait(wakeup, self.position):
                    # Idle: the position is saved now (while publishing, at most every
                    # `checkpoint_every_s`: not in the next event's way).
                    await self.save_checkpoint()

    def _read_back_may_wait(self) -> bool:
        """True while all there is to read is what the fast path published (in step, no other
        process appended since the last read), for less than `checkpoint_every_s` and fewer
        than a batch of events."""
        return (
            self._in_step
            and bool(self._ahead)
            and not self._wakeups.others_appended
            and len(self._ahead) < self._batch_size
            and time.monotonic() < self._ahead_since + self._checkpoint_every_s
        )

    async def publish_committed(self) -> int:
        """The fast path: publish the appends this process committed since the last call,
        in their order, as far as they may go before the read path (see the module doc);
        returns how many events went."""
        ready: list[RecordedEvent] = []
        heads: dict[str, int] = {}  # the streams' last versions, with `ready` published
        while self._committed:
            events = self._committed.popleft()
            if events is None:
                self._in_step = False
                continue
            stream = events[0].stream_id
            head = heads.get(stream, self._stream_heads.get(stream))
            if head is not None and head >= events[-1].version:
                continue  # the read path got to them first
            if self._in_step and (events[0].version == 1 or head == events[0].version - 1):
                ready.extend(events)
                heads[stream] = events[-1].version
            else:
                self._in_step = False
        if not ready:
            return 0
        losses = await self._send(ready)
        if losses is None:
            self._in_step = False  # not acknowledged: the read path publishes them
            return 0
        if losses:
            await self._republish_from_start(losses)
            return 0
        if not self._ahead:
            self._ahead_since = time.monotonic()
        self._ahead.update(e.event_id for e in ready)
        self._remember_heads(heads)
        self.published += len(ready)
        self.published_at_commit += len(ready)
        return len(ready)

    async def publish_next_batch(self) -> int:
        """Publish the next batch after the checkpoint (but what the fast path published);
        returns how many events it had."""
        batch = await self._store.read_all(self.position, self._batch_size)
        if not batch:
            if not self._in_step:
                # Everything committed so far is published unless some of it waits behind
                # an older transaction: only then may appends go ahead of the read path.
                self._in_step = not await self._store.held_back(self.position)
            return 0
        fresh = [e for e in batch if e.event_id not in self._ahead]
        if fresh:
            losses = await self._send(fresh)
            if losses is None:
                return len(batch)  # sent again from the same checkpoint
            if losses:
                await self._republish_from_start(losses)
                return len(batch)
            self._remember_heads({e.stream_id: e.version for e in fresh})
        if len(fresh) < len(batch):
            self._ahead.difference_update(e.event_id for e in batch)
        self.position = batch[-1].global_position
        self.published += len(fresh)
        # Saving the checkpoint is a write with its own commit (a disk flush): under load it
        # is saved at most every `checkpoint_every_s`. A crash republishes at most that much
        # (at least once, as always: consumers recognise the repeats by event id).
        if time.monotonic() - self._saved_at >= self._checkpoint_every_s:
            await self.save_checkpoint()
        return len(batch)

    async def _send(self, batch: Sequence[RecordedEvent]) -> list[Loss] | None:
        """Publish `batch`; the losses the acknowledgements reveal, or None when the broker
        acknowledged nothing in time (the producer is then renewed)."""
        try:
            return await self._publish(batch)
        except TimeoutError:
            self.stalls += 1
            # aiokafka's producer can stay stuck after the broker was unreachable
            # (aio-libs/aiokafka#1101): the batch goes again through a new one.
            _log.error(
                "outbox relay of %s: the broker acknowledged nothing in %.0f s; sending the "
                "batch again through a new producer",
                self._store.schema,
                self._ack_timeout_s,
            )
            await reconnect_producer(self._broker)
            return None

    def _remember_heads(self, heads: dict[str, int]) -> None:
        if len(self._stream_heads) + len(heads) > STREAM_HEADS_KEPT:
            self._stream_heads.clear()
        self._stream_heads.update(heads)

    async def save_checkpoint(self) -> None:
        """Record how far the relay published (a no-op when nothing new was published)."""
        if self.position == self._saved:
            return
        # The offsets first: a crash between the two leaves them behind the checkpoint,
        # which only makes the loss check less eager, never wrong.
        await self._offsets.save()
        await save_position(
            self._pool, self._store.schema, RELAY_CONSUMER, Checkpoint(STORE_SOURCE, self.position)
        )
        self._saved = self.position
        self._saved_at = time.monotonic()

    async def _publish(self, batch: Sequence[RecordedEvent]) -> list[Loss]:
        futures: list[asyncio.Future[Any]] = []
        # Each record goes to aiokafka exactly as `encode` makes it (what `EnvelopePublisher`
        # would send, byte for byte), without FastStream's per-publish middleware chain,
        # which cost more CPU than the rest of the relay.
        producer = kafka_producer(self._broker)
        recorded = spans_recorded()
        for event in batch:
            topic = topic_for_event_type(event.event_type).name
            # The publish span continues the trace of the command that appended the event;
            # the record carries the span's context. Started without making it current
            # (nothing runs inside it), and without attributes while nothing records spans.
            parent = context_from_carrier(event.metadata)
            span = _tracer.start_span(
                f"{topic} publish",
                context=parent,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": topic,
                    "messaging.message.id": str(event.event_id),
                    "contactcenter.tenant_id": event.tenant_id,
                    "contactcenter.event_type": event.event_type,
                }
                if recorded
                else None,
            )
            try:
                traceparent = inject_carrier(trace.set_span_in_context(span, parent)).get(
                    "traceparent"
                )
                envelope = envelope_of(event, self._source, traceparent)
                if producer is None:
                    futures.append(await self._publisher(topic).send(envelope))
                else:
                    record = encode(envelope)
                    futures.append(
                        await producer.send(
                            topic, value=record.value, key=record.key, headers=record.headers
                        )
                    )
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            finally:
                span.end()
        async with asyncio.timeout(self._ack_timeout_s):
            acks = await asyncio.gather(*futures)
        now = time.time()
        for event in batch:
            _lag_ms.record((now - event.recorded_at.timestamp()) * 1000.0)
        _published.add(len(batch))
        return self._offsets.record(acks, (str(e.event_id) for e in batch))

    # --- a broker that lost what it acknowledged (see loss.py) ------------------------------

    async def _watch_for_loss(self, stop: asyncio.Event) -> None:
        """Every `loss_check_every_s`: probe the topics; losses found are handed to the
        publishing loop, which publishes the store again (within its idle poll)."""
        while not stop.is_set():
            await asyncio.sleep(self._loss_check_every_s)
            republications = self.losses
            try:
                losses = await self._find_losses()
            except Exception:  # the next probe tries again; this one must not end the watch
                _log.exception("outbox relay of %s: probing the topics failed", self._store.schema)
                continue
            # A republication meanwhile made the probed offsets stale: probe again later.
            if losses and republications == self.losses:
                self._found_losses = losses

    async def check_for_loss(self) -> bool:
        """Check that the topics still hold the last record this relay published to each
        partition; on a loss, publish the store again. True when a loss was found."""
        losses = await self._find_losses()
        if losses:
            await self._republish_from_start(losses)
        return bool(losses)

    async def _find_losses(self) -> list[Loss]:
        """What the topics lost of the last records published to each partition. A broker
        that does not answer proves nothing (checked again later)."""
        if self._probe is None or not self._offsets.last:
            return []
        try:
            async with self._probe_lock:
                return list(await self._probe.losses(dict(self._offsets.last)))
        except (TimeoutError, KafkaError, OSError) as exc:
            _log.info("outbox relay of %s: cannot check the topics (%r)", self._store.schema, exc)
            return []

    async def verify_republication(self) -> bool:
        """After the store was published again and the relay caught up: read the topics
        back and compare them with the store; what is missing (a broker that lost records
        again while its topics were made anew: Tansu reports write conflicts on the first
        batches of a remade topic) is published again from the start. True when the topics
        hold everything."""
        if self._probe is None:
            self._verify_republication = False
            return True
        expected: dict[str, set[str]] = {}
        after = GlobalPosition.START
        while after < self.position:
            batch = await self._store.read_all(after, self._batch_size)
            if not batch:
                break
            for event in batch:
                if event.global_position <= self.position:
                    topic = topic_for_event_type(event.event_type).name
                    expected.setdefault(topic, set()).add(str(event.event_id))
            after = batch[-1].global_position
        missing: dict[str, int] = {}
        try:
            async with self._probe_lock:
                for topic, ids in sorted(expected.items()):
                    if lost := len(ids - await self._probe.ids_on(topic)):
                        missing[topic] = lost
        except (TimeoutError, KafkaError, OSError) as exc:
            _log.info(
                "outbox relay of %s: cannot read the topics back (%r)", self._store.schema, exc
            )
            return False  # checked again when next caught up
        if missing:
            await self._republish_from_start(
                [
                    Loss(topic, -1, -1, f"{n} events missing after publishing again")
                    for topic, n in missing.items()
                ]
            )
            return False
        self._verify_republication = False
        self.verified += 1
        _log.info(
            "outbox relay of %s: the topics hold every stored event again (%s)",
            self._store.schema,
            ", ".join(f"{t}: {len(ids)}" for t, ids in sorted(expected.items())),
        )
        return True

    async def _republish_from_start(self, losses: Sequence[Loss]) -> None:
        """The broker lost published events: recreate the topics, forget the offsets and the
        checkpoint (in one transaction), and publish the store again from its start."""
        self.losses += 1
        _republished.add(1)
        _log.warning(
            "outbox relay of %s: the broker lost published events (%s); publishing the event "
            "store again from its start",
            self._store.schema,
            "; ".join(str(loss) for loss in losses),
        )
        topics = self._offsets.topics | {loss.topic for loss in losses}
        if self._bootstrap and self._partitions:
            # The relay's own topics hold nothing the store cannot publish again: a topic
            # the broker auto-created meanwhile is made again as it should be. The DLQs hold
            # other services' records: only created if missing.
            await repair_topics(self._bootstrap, sorted(topics), partitions=self._partitions)
            await ensure_topics(
                self._bootstrap, sorted(dlq_topic(t) for t in topics), partitions=self._partitions
            )
        await self._refresh_producer_metadata()
        async with self._pool.acquire() as conn, conn.transaction():
            await self._offsets.forget(conn)
            await reset_position(conn, self._store.schema, RELAY_CONSUMER)
        self.position = self._saved = GlobalPosition.START
        # Everything goes again through the read path; the fast path waits until it caught up.
        self._committed.clear()
        self._ahead.clear()
        self._stream_heads.clear()
        self._in_step = False
        self._verify_republication = True

    async def _refresh_producer_metadata(self) -> None:
        """Make the producer learn the topics as they are now. A recreated topic may have
        another partition count (Tansu auto-creates a topic with 4 partitions on first use),
        and Tansu acknowledges records sent to a partition the topic no longer has: they are
        lost to every reader. The loss check reads such partitions as gone."""
        producer = kafka_producer(self._broker)
        if producer is not None:
            await producer.client.force_metadata_update()


async def _main(args: argparse.Namespace) -> None:
    pool = await create_pool(args.database_url, min_size=2, max_size=4)
    store = PostgresEventStore(pool, args.schema)
    broker = create_broker(
        KafkaSettings(bootstrap_servers=args.bootstrap_servers, client_id=f"relay-{args.schema}")
    )
    relay = OutboxRelay(
        pool=pool, store=store, broker=broker, source=args.source, batch_size=args.batch_size
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await broker.start()
    try:
        await relay.run(stop)
    finally:
        await broker.stop()
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    """Run a relay on its own: `python -m contactcenter.eventbus.relay --schema ...`.
    Services run it inside their process; this is for operators and the crash test."""
    parser = argparse.ArgumentParser(description="outbox relay of one service schema")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--source", required=True, help="CloudEvents source, e.g. /interactions")
    parser.add_argument("--batch-size", type=int, default=1000)
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
