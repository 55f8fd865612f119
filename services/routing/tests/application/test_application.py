"""The application layer: persistence, rebuild, concurrency between replicas, idempotency,
refusals that still record fired timers, offers fanned out, tenants kept apart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from contactcenter.contracts.errors import FailedPrecondition, ValidationFailed
from contactcenter.eventstore import PostgresEventStore
from contactcenter.routing.application import RoutingApplication
from contactcenter.routing.domain import (
    AcceptOffer,
    Channel,
    ConfigureAgent,
    ConfigureQueue,
    Presence,
    QueueContact,
    SetAgentState,
)
from contactcenter.routing.domain.events import (
    OfferAccepted,
    OfferIssued,
    OfferTimedOut,
    stream_id_for,
)


async def _setup(app: RoutingApplication, tenant: str, agent: str = "a-1") -> None:
    await app.execute(tenant, ConfigureQueue(queue_id="sales", wrap_up_s=0, offer_timeout_s=15))
    await app.execute(tenant, ConfigureAgent(agent_id=agent, queues=("sales",)))
    await app.execute(tenant, SetAgentState(agent_id=agent, presence=Presence.AVAILABLE))


def _contact(interaction_id: str = "i-1") -> QueueContact:
    return QueueContact(interaction_id=interaction_id, queue_id="sales", channel=Channel.VOICE)


async def _types(store: PostgresEventStore, tenant: str) -> list[str]:
    return [r.event_type for r in await store.read_stream(stream_id_for(tenant))]


async def test_an_offer_is_recorded_and_pushed_then_accepted(
    store: PostgresEventStore, clock: Any, tenant_id: str
) -> None:
    app = RoutingApplication(store, clock=clock)
    await _setup(app, tenant_id)
    async with app.fanout.subscribe(tenant_id, "a-1") as offers:
        executed = await app.execute(tenant_id, _contact())
        offer = await asyncio.wait_for(offers.get(), 1)
    assert executed.outcome is not None and executed.outcome.offers == [offer]
    assert offer.agent_id == "a-1" and offer.interaction_id == "i-1"
    await app.execute(tenant_id, AcceptOffer(offer_id=offer.offer_id, agent_id="a-1"))
    types = await _types(store, tenant_id)
    assert OfferIssued.event_type in types and OfferAccepted.event_type in types
    stored = await store.stream_version(stream_id_for(tenant_id))
    assert stored == await app.query(tenant_id, lambda engine: engine.version)


async def test_a_new_application_rebuilds_the_same_state(
    store: PostgresEventStore, clock: Any, tenant_id: str
) -> None:
    app = RoutingApplication(store, clock=clock)
    await _setup(app, tenant_id)
    await app.execute(tenant_id, _contact())
    await app.execute(tenant_id, _contact("i-2"))
    restarted = RoutingApplication(store, clock=clock)
    assert await restarted.query(tenant_id, lambda e: e.fingerprint()) == await app.query(
        tenant_id, lambda e: e.fingerprint()
    )
    snapshot = await restarted.query(tenant_id, lambda e: e.queue_snapshot("sales"))
    assert snapshot is not None and (snapshot.offered, snapshot.waiting) == (1, 1)
    assert restarted.next_timer_at(tenant_id) == app.next_timer_at(tenant_id)


async def test_a_stale_replica_rebuilds_and_retries_on_a_conflict(
    store: PostgresEventStore, clock: Any, tenant_id: str
) -> None:
    first = RoutingApplication(store, clock=clock)
    second = RoutingApplication(store, clock=clock)
    await _setup(first, tenant_id)
    await second.query(tenant_id, lambda e: e.version)  # loaded now, stale soon
    await first.execute(tenant_id, ConfigureAgent(agent_id="a-2", queues=("sales",)))
    await second.execute(tenant_id, SetAgentState(agent_id="a-2", presence=Presence.AVAILABLE))
    records = await store.read_stream(stream_id_for(tenant_id))
    assert [r.version for r in records] == list(range(1, len(records) + 1))
    fresh = RoutingApplication(store, clock=clock)
    view = await fresh.query(tenant_id, lambda e: e.agent("a-2"))
    assert view is not None and view.presence is Presence.AVAILABLE


async def test_a_retried_request_id_returns_the_first_result_and_appends_nothing(
    store: PostgresEventStore, clock: Any, tenant_id: str
) -> None:
    app = RoutingApplication(store, clock=clock)
    await _setup(app, tenant_id)
    command = ConfigureQueue(queue_id="support", wrap_up_s=0)

    def summary(engine: Any, _: Any) -> dict[str, Any]:
        return {"config_version": engine.queue_snapshot("support").config_version}

    first = await app.execute(tenant_id, command, request_id="r-1", summary=summary)
    version = await store.stream_version(stream_id_for(tenant_id))
    clock.advance(1)
    again = await RoutingApplication(store, clock=clock).execute(
        tenant_id, command, request_id="r-1", summary=summary
    )
    assert again.replayed and again.result == first.result == {"config_version": 1}
    assert await store.stream_version(stream_id_for(tenant_id)) == version
    with pytest.raises(ValidationFailed):  # the same request_id for another command
        await app.execute(tenant_id, ConfigureQueue(queue_id="other"), request_id="r-1")


async def test_a_repeat_not_looked_up_first_is_refused_by_the_append_and_decides_nothing(
    store: PostgresEventStore, clock: Any, tenant_id: str
) -> None:
    """The consumer of interaction events skips the look-up (its stream heads drop what was
    applied); a repeat that still comes (a crash before the heads were saved) is decided in
    memory, refused by the append, and the engine that decided it is rebuilt."""
    app = RoutingApplication(store, clock=clock)
    await _setup(app, tenant_id)
    command = ConfigureQueue(queue_id="support", wrap_up_s=0)
    first = await app.execute(tenant_id, command, request_id="event:1", look_up_request=False)
    assert first.outcome is not None and first.outcome.events
    # Changed since: the repeat would decide something again (put the first configuration
    # back), were it not refused.
    await app.execute(tenant_id, ConfigureQueue(queue_id="support", wrap_up_s=5))
    version = await store.stream_version(stream_id_for(tenant_id))
    fingerprint = await app.query(tenant_id, lambda e: e.fingerprint())
    clock.advance(1)
    again = await app.execute(tenant_id, command, request_id="event:1", look_up_request=False)
    assert again.replayed and again.outcome is None
    assert await store.stream_version(stream_id_for(tenant_id)) == version
    assert await app.query(tenant_id, lambda e: e.fingerprint()) == fingerprint


async def test_a_refused_command_raises_after_recording_the_timers_it_fired(
    store: PostgresEventStore, clock: Any, tenant_id: str
) -> None:
    app = RoutingApplication(store, clock=clock)
    await _setup(app, tenant_id)
    offer = (await app.execute(tenant_id, _contact())).outcome.offers[0]  # type: ignore[union-attr]
    clock.advance(60)  # the offer expires before the agent answers
    with pytest.raises(FailedPrecondition) as refused:
        await app.execute(tenant_id, AcceptOffer(offer_id=offer.offer_id, agent_id="a-1"))
    assert refused.value.current_state == "timed_out"
    assert OfferTimedOut.event_type in await _types(store, tenant_id)
    rebuilt = RoutingApplication(store, clock=clock)
    assert await rebuilt.query(tenant_id, lambda e: e.fingerprint()) == await app.query(
        tenant_id, lambda e: e.fingerprint()
    )


async def test_advance_fires_due_timers(
    store: PostgresEventStore, clock: Any, tenant_id: str
) -> None:
    app = RoutingApplication(store, clock=clock)
    await _setup(app, tenant_id)
    await app.execute(tenant_id, _contact())
    due = app.next_timer_at(tenant_id)
    assert due is not None
    outcome = await app.advance(tenant_id, due)
    assert any(isinstance(e, OfferTimedOut) for e in outcome.events)
    assert OfferTimedOut.event_type in await _types(store, tenant_id)


async def test_tenants_are_kept_apart(
    store: PostgresEventStore, clock: Any, tenant_id: str
) -> None:
    app = RoutingApplication(store, clock=clock)
    other = f"{tenant_id}-other"
    await _setup(app, tenant_id)
    async with app.fanout.subscribe(other, "a-1") as theirs:
        await app.execute(tenant_id, _contact())
        assert theirs.empty()
    assert await app.query(other, lambda e: e.queue_snapshot("sales")) is None
    assert await store.stream_version(stream_id_for(other)) == 0
