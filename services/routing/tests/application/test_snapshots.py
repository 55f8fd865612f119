"""Snapshots: the snapshotter saves due tenants only; an engine rebuilt from its snapshot plus
the events after it is the engine rebuilt from every event; a snapshot of other code is
ignored."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from contactcenter.eventstore import PostgresEventStore
from contactcenter.routing.application import RoutingApplication
from contactcenter.routing.application.snapshots import Snapshotter, snapshot_schema_version
from contactcenter.routing.domain import (
    AcceptOffer,
    Channel,
    ConfigureAgent,
    ConfigureQueue,
    Presence,
    QueueContact,
    SetAgentState,
)
from contactcenter.routing.domain.events import stream_id_for
from contactcenter.routing.snapshotter import serve


async def _traffic(app: RoutingApplication, tenant: str) -> None:
    await app.execute(tenant, ConfigureQueue(queue_id="q", wrap_up_s=0, offer_timeout_s=60))
    for n in range(4):
        await app.execute(tenant, ConfigureAgent(agent_id=f"a-{n}", queues=("q",)))
        await app.execute(tenant, SetAgentState(agent_id=f"a-{n}", presence=Presence.AVAILABLE))
    for n in range(6):
        executed = await app.execute(
            tenant, QueueContact(interaction_id=f"i-{n}", queue_id="q", channel=Channel.CHAT)
        )
        assert executed.outcome is not None
        for offer in executed.outcome.offers:
            await app.execute(tenant, AcceptOffer(offer_id=offer.offer_id, agent_id=offer.agent_id))


async def test_a_rebuild_from_a_snapshot_equals_a_rebuild_from_every_event(
    store: PostgresEventStore, tenant_id: str
) -> None:
    writer = RoutingApplication(store)
    await _traffic(writer, tenant_id)
    snapshotted = await store.stream_version(stream_id_for(tenant_id))
    snapshotter = Snapshotter(store, every=snapshotted, explain_capacity=10_000)
    assert tenant_id in await snapshotter.snapshot_due()
    snapshot = await store.load_snapshot(stream_id_for(tenant_id))
    assert snapshot is not None and snapshot.version == snapshotted
    assert snapshot.schema_version == snapshot_schema_version()

    # One event more: not due again until the stream moves `every` events past the snapshot,
    # neither here nor for a snapshotter just started (it reads where the snapshot is).
    await writer.execute(tenant_id, ConfigureAgent(agent_id="a-9", queues=("q",)))
    version = await store.stream_version(stream_id_for(tenant_id))
    assert version == snapshotted + 1
    assert tenant_id not in await snapshotter.snapshot_due()
    restarted = Snapshotter(store, every=2, explain_capacity=10_000)
    assert tenant_id not in await restarted.snapshot_due()

    from_snapshot = RoutingApplication(store)
    from_events = RoutingApplication(store)
    await store.save_snapshot(
        stream_id_for(tenant_id), snapshot.version, snapshot.state, snapshot.schema_version + 1
    )  # another release's snapshot: ignored
    full = await from_events.query(tenant_id, lambda engine: (engine.version, engine.fingerprint()))
    await store.save_snapshot(
        stream_id_for(tenant_id), snapshot.version, snapshot.state, snapshot.schema_version
    )
    rebuilt = await from_snapshot.query(
        tenant_id, lambda engine: (engine.version, engine.fingerprint())
    )
    assert rebuilt == full
    assert full[0] == version


async def test_one_snapshotter_per_schema_works_and_an_orphan_ends(
    store: PostgresEventStore, database_url: str, tenant_id: str
) -> None:
    await _traffic(RoutingApplication(store), tenant_id)
    stream = stream_id_for(tenant_id)
    stop = asyncio.Event()
    settings = {"every": 1, "explain_capacity": 100, "poll_s": 0.05, "stop": stop}
    working = asyncio.create_task(
        serve(database_url, "routing", parent_pid=os.getppid(), **settings)
    )
    while await store.load_snapshot(stream) is None:
        await asyncio.sleep(0.05)
    # A second one (another instance's) stands by while the first holds the schema's lock...
    standby = asyncio.create_task(
        serve(database_url, "routing", parent_pid=os.getppid(), **settings)
    )
    await asyncio.sleep(0.3)
    assert not standby.done()
    # ...and one whose parent is gone (a SIGKILLed service) ends by itself.
    await asyncio.wait_for(
        serve(database_url, "routing", parent_pid=os.getpid() + 1_000_000, **settings), 5
    )
    stop.set()
    await asyncio.wait_for(asyncio.gather(working, standby), 5)


_DEEP_PICKLE = """
import asyncio, pickle, sys
from datetime import UTC, datetime
from contactcenter.routing.application.snapshots import deep_pickling
from contactcenter.routing.domain import *
engine = RoutingEngine("t")
context = CommandContext(now=datetime(2026, 3, 2, tzinfo=UTC))
engine.execute(ConfigureQueue(queue_id="q"), context)
for n in range(50):
    engine.execute(ConfigureAgent(agent_id=f"a-{n}", queues=("q",)), context)
    engine.execute(SetAgentState(agent_id=f"a-{n}", presence=Presence.AVAILABLE), context)
    contact = QueueContact(interaction_id=f"i-{n}", queue_id="q", channel=Channel.VOICE)
    engine.execute(contact, context)
sys.setrecursionlimit(40)  # below this engine's depth (48): as 1,000 is for the reference load
try:
    pickle.dumps(engine)
    sys.exit("expected a RecursionError")
except RecursionError:
    pass
deep_pickling()
pickled = asyncio.run(asyncio.to_thread(pickle.dumps, engine))  # as the snapshotter does
assert pickle.loads(pickled).fingerprint() == engine.fingerprint()
"""


def test_the_snapshotter_process_pickles_engines_deeper_than_the_recursion_limit() -> None:
    """Pickling recurses along the engine's references: at the reference load (20,000 agents,
    100,000 contacts) 10,000 to 50,000 levels, past Python's default limit. Shown at a small
    scale against a limit lowered to match; `deep_pickling` is process-wide, so in a process
    of its own, as the snapshotter runs."""
    done = subprocess.run(
        [sys.executable, "-c", _DEEP_PICKLE], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
