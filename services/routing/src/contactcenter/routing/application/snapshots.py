"""Snapshots of the tenants' engines, made apart from the engines that decide.

A snapshot is a pickle of a tenant's engine, and pickling holds the event loop for as long as
the engine is large: 22-28 ms for a tenant of 260 agents, seconds at the reference load. On
the loop that decides, every contact queued meanwhile waited for it (it was the p99 of the
offer path). A rebuild reproduces the live engine bit for bit, so a snapshot is a function of
the stream alone, and anyone can make it: the `Snapshotter` loads a tenant's latest snapshot,
applies the events after it and saves the result, for every tenant whose stream moved
`every` events past its snapshot. The routing service runs it in a child process of its own
(`contactcenter.routing.snapshotter`), so the deciding loop never pickles.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import pickle
import sys
import threading
import zlib
from pathlib import Path

import contactcenter.routing.domain as domain_package
from contactcenter.contracts.events import registry
from contactcenter.eventstore import EventStore
from contactcenter.routing.domain import RoutingEngine
from contactcenter.routing.domain.events import STREAM_CATEGORY, RoutingEvent, stream_id_for


@functools.cache
def snapshot_schema_version() -> int:
    """Snapshots are pickles of the engine, valid only for the code that wrote them: the
    version is a checksum of the domain package's source, so a new release ignores older
    snapshots and rebuilds from the events (which stay the source of truth)."""
    digest = zlib.crc32(b"")
    for path in sorted(Path(domain_package.__file__).parent.glob("*.py")):
        digest = zlib.crc32(path.read_bytes(), digest)
    return digest & 0x7FFFFFFF


async def rebuild_engine(
    store: EventStore, tenant_id: str, *, explain_capacity: int
) -> RoutingEngine:
    """The tenant's engine: its latest snapshot (when one of this code's schema exists),
    then the events after it; or every event of the stream."""
    stream = stream_id_for(tenant_id)
    engine: RoutingEngine | None = None
    snapshot = await store.load_snapshot(stream)
    if snapshot is not None and snapshot.schema_version == snapshot_schema_version():
        engine = pickle.loads(base64.b64decode(snapshot.state["engine"]))
    if engine is None:
        engine = RoutingEngine(tenant_id, explain_capacity=explain_capacity)
    for record in await store.read_stream(stream, from_version=engine.version + 1):
        engine.apply(routing_event(record.decode(registry)))
    return engine


#: Pickling recurses along the engine's references (an object pickles those it refers to
#: before it is done): 10,000 to 50,000 levels at the reference load (20,000 agents, 100,000
#: contacts), where the default limit of 1,000 raises RecursionError. Loading does not recurse.
PICKLE_RECURSION_LIMIT = 1_000_000
#: The C stack those levels need (the reference load pickled in 512 MiB); only the pages a
#: pickle touches are ever committed.
PICKLE_STACK_BYTES = 1 << 30


def deep_pickling() -> None:
    """Let threads started from now on pickle engines of any size (a process-wide setting:
    the snapshotter's own process calls it before it starts any thread)."""
    threading.stack_size(PICKLE_STACK_BYTES)
    sys.setrecursionlimit(PICKLE_RECURSION_LIMIT)


def routing_event(event: object) -> RoutingEvent:
    if not isinstance(event, RoutingEvent):
        raise TypeError(f"not a routing event in a routing stream: {event!r}")
    return event


class Snapshotter:
    """`await snapshotter.snapshot_due()` snapshots every tenant whose stream is `every`
    events or more past its latest snapshot."""

    def __init__(self, store: EventStore, *, every: int, explain_capacity: int) -> None:
        if every < 1:
            raise ValueError(f"every must be positive, got {every}")
        self._store = store
        self._every = every
        self._explain_capacity = explain_capacity
        #: The version of each tenant's latest snapshot, as far as this snapshotter knows
        #: (read from the store once, then what it saved itself).
        self._snapshotted: dict[str, int] = {}

    async def snapshot_due(self) -> list[str]:
        """Snapshot the tenants that are due; returns them."""
        saved = []
        for stream in await self._store.list_streams(f"{STREAM_CATEGORY}/"):
            tenant_id = stream.split("/")[1]
            version = await self._store.stream_version(stream)
            if tenant_id not in self._snapshotted:
                snapshot = await self._store.load_snapshot(stream)
                self._snapshotted[tenant_id] = (
                    snapshot.version
                    if snapshot is not None and snapshot.schema_version == snapshot_schema_version()
                    else 0
                )
            if version - self._snapshotted[tenant_id] < self._every:
                continue
            engine = await rebuild_engine(
                self._store, tenant_id, explain_capacity=self._explain_capacity
            )
            # In a thread: the process that runs the snapshotter gives threads a deep stack
            # (see `deep_pickling`), and the event loop stays free meanwhile.
            pickled = await asyncio.to_thread(pickle.dumps, engine)
            state = {"engine": base64.b64encode(pickled).decode()}
            await self._store.save_snapshot(
                stream, engine.version, state, snapshot_schema_version()
            )
            self._snapshotted[tenant_id] = engine.version
            saved.append(tenant_id)
        return saved
