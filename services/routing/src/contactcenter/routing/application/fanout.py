"""In-process fan-out of offers to the agents' open AgentStreams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from contactcenter.contracts.events import registry
from contactcenter.eventstore import EventStore, RecordedEvent, TailPacer
from contactcenter.routing.domain.events import OfferIssued, RoutingEvent

_QueueKey = tuple[str, str]


class OfferFanout:
    """Delivers each appended OfferIssued to the subscriptions of its (tenant, agent).

    A subscriber's queue is bounded; a desktop too slow to drain it loses the oldest offers
    (they stay visible through `pending_offers` when it reconnects). `close()` puts None in
    every queue: the streams end (the service is stopping).
    """

    def __init__(self, *, max_pending: int = 256) -> None:
        self._max_pending = max_pending
        self._subscribers: dict[_QueueKey, set[asyncio.Queue[OfferIssued | None]]] = {}
        self.closed = False

    @asynccontextmanager
    async def subscribe(
        self, tenant_id: str, agent_id: str
    ) -> AsyncIterator[asyncio.Queue[OfferIssued | None]]:
        key = (tenant_id, agent_id)
        queue: asyncio.Queue[OfferIssued | None] = asyncio.Queue(self._max_pending)
        if self.closed:
            queue.put_nowait(None)
        self._subscribers.setdefault(key, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._subscribers.get(key)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._subscribers[key]

    def publish(self, tenant_id: str, events: Iterable[RoutingEvent]) -> None:
        for event in events:
            if not isinstance(event, OfferIssued):
                continue
            for queue in self._subscribers.get((tenant_id, event.agent_id), ()):
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(event)

    def subscriber_count(self, tenant_id: str, agent_id: str) -> int:
        return len(self._subscribers.get((tenant_id, agent_id), ()))

    def close(self) -> None:
        self.closed = True
        for queues in self._subscribers.values():
            for queue in queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(None)


class StoreOfferFeed:
    """Feeds the fan-out with the offers other instances decide.

    An agent's AgentStream may be open on any replica, but only the instance that owns the
    tenant decides (and pushes its own offers at once). This loop tails the event store from
    its head, woken by the store's notifications, and hands every OfferIssued for an agent
    with a stream open here to the fan-out; the streams skip offers they already sent. This
    instance's own appends do not wake it: reading the store at each of them put a database
    round trip beside every offer's publication, for offers already pushed.
    """

    def __init__(
        self, store: EventStore, fanout: OfferFanout, *, poll_s: float = 1.0, batch: int = 500
    ) -> None:
        self._store = store
        self._fanout = fanout
        self._poll_s = poll_s
        self._batch = batch

    async def run(self, stop: asyncio.Event) -> None:
        after = await self._store.head()
        async with self._store.listener(own_appends=False) as wakeup:
            pacer = TailPacer(self._store, self._poll_s)
            while not stop.is_set():
                records = await self._store.read_all(after, self._batch)
                for record in records:
                    self._deliver(record)
                if records:
                    after = records[-1].global_position
                if len(records) < self._batch:
                    await pacer.wait(wakeup, after)

    def _deliver(self, record: RecordedEvent) -> None:
        if record.event_type != OfferIssued.event_type:
            return
        if not self._fanout.subscriber_count(record.tenant_id, str(record.data.get("agent_id"))):
            return
        event = record.decode(registry)
        if isinstance(event, OfferIssued):
            self._fanout.publish(record.tenant_id, [event])
