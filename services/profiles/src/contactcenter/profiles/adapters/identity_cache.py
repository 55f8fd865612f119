"""An in-process cache of the identity index (tenant, kind, ref) -> IdentityRow: a resolve of a
known identity then costs no PostgreSQL round trip.

Correct across the service's processes (workers, replicas) and crashes because:
- it holds only confirmed rows, and is only used while this process LISTENs on
  `cc_profiles_identity_changed`: a trigger (migration 0005) notifies, at commit, every change
  that can move an identity (an identity deleted or re-owned; a redirect added, moved or dropped
  by a merge, an unmerge or an erasure), and each process then drops the tenant's entries;
- a process that is not listening (before its listener connects, after the connection drops)
  neither reads nor fills it, and every (re)connection starts from an empty cache, so no
  notification missed while disconnected can leave a stale entry;
- a lookup fills it only if no notification arrived between the read and the fill (the
  `generation`): a row read just before a merge commits is never kept after the merge;
- the process that commits a change drops the tenant's entries itself too (before it answers),
  so its own next lookups never wait for the notification;
- nothing of it is persisted: a restarted process starts empty.

What other processes see between a change's commit and its notification reaching them (well
under a millisecond on a healthy server) is what they would have seen had their lookup started
a moment earlier: the same as a lookup racing the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from contactcenter.profiles.adapters.tables import IdentityRow

_log = logging.getLogger(__name__)

CHANNEL = "cc_profiles_identity_changed"


class IdentityCache:
    """Bounded (a full cache starts over); empty and unused until `listen` connects."""

    def __init__(self, schema: str, max_entries: int = 100_000) -> None:
        self.schema = schema
        self.max_entries = max_entries
        self.live = False
        #: Bumped by every invalidation: a fill read before one is dropped.
        self.generation = 0
        self._entries: dict[tuple[str, str, str], IdentityRow] = {}
        self._by_tenant: dict[str, set[tuple[str, str, str]]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, tenant_id: str, kind: str, ref: str) -> IdentityRow | None:
        if not self.live:
            return None
        row = self._entries.get((tenant_id, kind, ref))
        if row is None:
            self.misses += 1
        else:
            self.hits += 1
        return row

    def put(self, tenant_id: str, kind: str, ref: str, row: IdentityRow, generation: int) -> None:
        """Keep a confirmed row read at `generation` (unless an invalidation came since)."""
        if not self.live or generation != self.generation or not row.confirmed:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # simple and bounded: a full cache starts over
            self._by_tenant.clear()
        key = (tenant_id, kind, ref)
        self._entries[key] = row
        self._by_tenant.setdefault(tenant_id, set()).add(key)

    def invalidate(self, tenant_id: str) -> None:
        self.generation += 1
        for key in self._by_tenant.pop(tenant_id, ()):
            self._entries.pop(key, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_tenant.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        schema, _, tenant_id = payload.partition(":")
        if schema == self.schema:
            self.invalidate(tenant_id)

    async def listen(self, database_url: str, stop: asyncio.Event) -> None:
        """Serve the cache while a listening connection lasts (a background loop: servicekit
        restarts it when it ends before `stop`, e.g. when PostgreSQL restarts)."""
        conn = await asyncpg.connect(database_url)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(CHANNEL, self._notified)
            self.clear()
            self.live = True  # listening from here on: every later change reaches us
            _log.info("identity cache live (schema %s)", self.schema)
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
            try:
                while not stop.is_set() and not lost.is_set():
                    await asyncio.wait(waits, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
                    if not stop.is_set() and not lost.is_set():
                        # A connection that died silently (no FIN) is noticed here.
                        await asyncio.wait_for(conn.execute("select 1"), 5.0)
            finally:
                for w in waits:
                    w.cancel()
        finally:
            self.live = False
            self.clear()
            with contextlib.suppress(Exception):
                await conn.close()
        if not stop.is_set():
            raise ConnectionError("the identity cache's listening connection was lost")
