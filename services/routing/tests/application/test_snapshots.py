"""Snapshots: an engine rebuilt from its snapshot plus the events after it is the engine
rebuilt from every event; a snapshot of other code is ignored."""

from __future__ import annotations

from contactcenter.eventstore import PostgresEventStore
from contactcenter.routing.application import RoutingApplication
from contactcenter.routing.application.service import snapshot_schema_version
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
    writer = RoutingApplication(store, snapshot_every=5)
    await _traffic(writer, tenant_id)
    await writer.snapshots_written()
    version = await store.stream_version(stream_id_for(tenant_id))
    snapshot = await store.load_snapshot(stream_id_for(tenant_id))
    assert snapshot is not None and 5 <= snapshot.version < version
    assert snapshot.schema_version == snapshot_schema_version()

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
