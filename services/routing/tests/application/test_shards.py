"""Tenant shards: an instance owns the tenants of its assigned partitions, rebuilds them at
once (so their timers run with no command arriving) and forgets them on revocation."""

from __future__ import annotations

from typing import Any

from contactcenter.eventstore import PostgresEventStore
from contactcenter.routing.application import RoutingApplication
from contactcenter.routing.application.timers import TimerLoop
from contactcenter.routing.domain import (
    Channel,
    ConfigureAgent,
    ConfigureQueue,
    Presence,
    QueueContact,
    SetAgentState,
)
from contactcenter.routing.domain.events import OfferTimedOut, stream_id_for

PARTITIONS = 4


async def _offer_pending(app: RoutingApplication, tenant: str) -> None:
    await app.execute(tenant, ConfigureQueue(queue_id="q", wrap_up_s=0, offer_timeout_s=10))
    await app.execute(tenant, ConfigureAgent(agent_id="a", queues=("q",)))
    await app.execute(tenant, SetAgentState(agent_id="a", presence=Presence.AVAILABLE))
    await app.execute(tenant, QueueContact(interaction_id="i", queue_id="q", channel=Channel.CHAT))


def _tenants_on_distinct_partitions(app: RoutingApplication, prefix: str) -> dict[int, str]:
    by_partition: dict[int, str] = {}
    n = 0
    while len(by_partition) < PARTITIONS:
        tenant = f"{prefix}-{n}"
        by_partition.setdefault(app.partition_of(tenant), tenant)
        n += 1
    return by_partition


async def test_an_assignment_rebuilds_owned_tenants_and_runs_their_timers(
    store: PostgresEventStore, clock: Any, tenant_id: str
) -> None:
    writer = RoutingApplication(store, clock=clock)
    await writer.assign(range(PARTITIONS), partition_count=PARTITIONS)
    tenants = _tenants_on_distinct_partitions(writer, tenant_id)
    for tenant in tenants.values():
        await _offer_pending(writer, tenant)

    # A fresh instance (a restart, or the survivor of a failover) gets partitions 0 and 1.
    survivor = RoutingApplication(store, clock=clock)
    owned = await survivor.assign([0, 1], partition_count=PARTITIONS)
    assert sorted(owned) == sorted([tenants[0], tenants[1]])
    assert sorted(survivor.loaded_tenants()) == sorted(owned)
    assert not survivor.owns(tenants[2]) and survivor.owns(tenants[0])

    # No command arrives, yet the owned tenants' offers expire on time; the others' do not.
    clock.advance(11)
    assert await TimerLoop(survivor, clock=clock).fire_due() == 2
    for partition, tenant in tenants.items():
        types = [r.event_type for r in await store.read_stream(stream_id_for(tenant))]
        assert (OfferTimedOut.event_type in types) == (partition in (0, 1))

    # Revocation forgets a partition's tenants; a later assignment brings them back.
    assert survivor.revoke([1]) == [tenants[1]]
    assert survivor.loaded_tenants() == [tenants[0]]
    assert sorted(await survivor.assign([0, 1, 2, 3], PARTITIONS)) == sorted(tenants.values())


async def test_without_an_assignment_every_tenant_is_owned(
    store: PostgresEventStore, tenant_id: str
) -> None:
    app = RoutingApplication(store)
    assert app.owns(tenant_id) and app.owns("another")
    assert await app.known_tenants() == []
