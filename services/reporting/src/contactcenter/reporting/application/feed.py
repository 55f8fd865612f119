"""The wallboard change feed: the live projection publishes changed tiles, subscribers
(WatchWallboard streams, the page's server-sent events) receive them.

Each subscriber has its own pending map keyed by tile: publishing merges into it (the latest
value of a tile replaces an older one not yet sent) and never waits, so a slow subscriber only
skips intermediate values and never slows the projection or the other subscribers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Update:
    snapshot: bool
    queues: dict[str, Any] = field(default_factory=dict)
    agents: dict[str, Any] = field(default_factory=dict)
    last_event_id: str = ""
    last_event_time: int = 0


class Subscription:
    def __init__(self, tenant_id: str, queue_ids: frozenset[str], include_agents: bool) -> None:
        self.tenant_id = tenant_id
        self.queue_ids = queue_ids
        self.include_agents = include_agents
        self._pending = Update(snapshot=False)
        self._ready = asyncio.Event()
        self.closed = False
        self.dropped = 0

    def offer(self, update: Update) -> None:
        p = self._pending
        for qid, view in update.queues.items():
            if not self.queue_ids or qid in self.queue_ids:
                self.dropped += qid in p.queues
                p.queues[qid] = view
        if self.include_agents:
            for aid, view in update.agents.items():
                self.dropped += aid in p.agents
                p.agents[aid] = view
        if update.last_event_id:
            p.last_event_id, p.last_event_time = update.last_event_id, update.last_event_time
        if p.queues or p.agents:
            self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def updates(self) -> AsyncIterator[Update]:
        while not self.closed:
            await self._ready.wait()
            self._ready.clear()
            if self.closed:
                return
            update, self._pending = self._pending, Update(snapshot=False)
            if update.queues or update.agents:
                yield update


class WallboardFeed:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}

    def has_subscribers(self, tenant_id: str) -> bool:
        return bool(self._subs.get(tenant_id))

    def subscribers(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def subscribe(
        self,
        tenant_id: str,
        snapshot: Callable[[], Update],
        queue_ids: frozenset[str] = frozenset(),
        include_agents: bool = True,
    ) -> tuple[Subscription, Update]:
        """Register and return the first message (the snapshot taken at the same moment, so no
        change falls between the two)."""
        sub = Subscription(tenant_id, queue_ids, include_agents)
        self._subs.setdefault(tenant_id, set()).add(sub)
        first = snapshot()
        if queue_ids:
            first.queues = {k: v for k, v in first.queues.items() if k in queue_ids}
        if not include_agents:
            first.agents = {}
        return sub, first

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        subs = self._subs.get(sub.tenant_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.tenant_id]

    def publish(self, tenant_id: str, update: Update) -> None:
        for sub in self._subs.get(tenant_id, ()):
            sub.offer(update)

    def close_all(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.close()
        self._subs.clear()
