"""An agent whose AgentStream is open on one instance gets the offers another instance
decides (the store feed), once each."""

from __future__ import annotations

import asyncio
import contextlib

from contactcenter.eventstore import PgPool, PostgresEventStore
from contactcenter.routing.application import RoutingApplication, StoreOfferFeed
from contactcenter.routing.domain import (
    Channel,
    ConfigureAgent,
    ConfigureQueue,
    Presence,
    QueueContact,
    SetAgentState,
)


async def test_offers_decided_elsewhere_reach_this_instances_streams(
    pool: PgPool, tenant_id: str
) -> None:
    # Two instances: separate stores over the same database, as two processes would have.
    deciding_store = PostgresEventStore(pool, "routing")
    streaming_store = PostgresEventStore(pool, "routing")
    deciding = RoutingApplication(deciding_store)
    streaming = RoutingApplication(streaming_store)
    await deciding.execute(tenant_id, ConfigureQueue(queue_id="q", offer_timeout_s=30))
    await deciding.execute(tenant_id, ConfigureAgent(agent_id="a", queues=("q",)))
    await deciding.execute(tenant_id, SetAgentState(agent_id="a", presence=Presence.AVAILABLE))

    stop = asyncio.Event()
    feed = asyncio.create_task(
        StoreOfferFeed(streaming_store, streaming.fanout, poll_s=5).run(stop)
    )
    try:
        async with streaming.fanout.subscribe(tenant_id, "a") as offers:
            await asyncio.sleep(0.2)  # the feed has read its starting point
            executed = await deciding.execute(
                tenant_id, QueueContact(interaction_id="i", queue_id="q", channel=Channel.CHAT)
            )
            assert executed.outcome is not None
            (decided,) = executed.outcome.offers
            # Woken by the store's notification, long before the 5 s poll.
            received = await asyncio.wait_for(offers.get(), 2)
            assert received is not None and received.offer_id == decided.offer_id
            assert offers.empty()
    finally:
        stop.set()
        feed.cancel()  # it may be waiting out its 5 s poll
        with contextlib.suppress(asyncio.CancelledError):
            await feed
        await deciding_store.aclose()
        await streaming_store.aclose()
