"""Presence leases: a desktop that stops sending heartbeats is logged off after the lease; a
heartbeat or an open AgentStream keeps the agent; a logout ends the lease."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

import contactcenter.routing.main as routing_main
from contactcenter.eventstore import PgPool, PostgresEventStore, apply_migrations, create_pool
from contactcenter.grpckit import GrpcServerSettings, Role, create_server, issue_token, metadata_for
from contactcenter.routing.adapters.grpc import RoutingServicer, registration
from contactcenter.routing.adapters.leases import HEARTBEAT_LOST, LeaseSweeper, PresenceLeases
from contactcenter.routing.application import RoutingApplication
from contactcenter.routing.domain import (
    Channel,
    Decision,
    Presence,
    SelectionStrategy,
    Trigger,
)
from contactcenter.routing.domain.events import AgentStateChanged, OfferIssued, stream_id_for
from contactcenter.routing.v1 import routing_pb2 as pb
from contactcenter.routing.v1 import routing_pb2_grpc as pb_grpc
from contactcenter.servicekit import migrations_dir

SCHEMA = "routing"
LEASE_S = 0.6


@pytest.fixture
async def leased_pool(database_url: str) -> AsyncIterator[PgPool]:
    await apply_migrations(database_url, SCHEMA, [Path(migrations_dir(routing_main.__file__))])
    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


def _rid() -> str:
    return str(uuid.uuid4())


async def _available(
    stub: pb_grpc.RoutingServiceStub,
    admin: tuple[tuple[str, str]],
    agent: Callable[[str], tuple[tuple[str, str]]],
    names: tuple[str, ...],
) -> None:
    """Queue "q", and the named agents serving it, each logged in (AVAILABLE) by itself."""
    await stub.UpsertQueue(
        pb.UpsertQueueRequest(request_id=_rid(), queue=pb.Queue(queue_id="q")), metadata=admin
    )
    for name in names:
        await stub.UpsertAgent(
            pb.UpsertAgentRequest(request_id=_rid(), agent=pb.Agent(agent_id=name, queues=["q"])),
            metadata=admin,
        )
        await stub.SetAgentState(
            pb.SetAgentStateRequest(request_id=_rid(), presence=pb.PRESENCE_AVAILABLE),
            metadata=agent(name),
        )


async def test_an_agent_without_heartbeats_is_logged_off_and_the_others_stay(
    leased_pool: PgPool, tenant_id: str
) -> None:
    store = PostgresEventStore(leased_pool, SCHEMA)
    app = RoutingApplication(store)
    leases = PresenceLeases(leased_pool, SCHEMA, LEASE_S)
    sweeper = LeaseSweeper(app, leases, interval_s=0.1)
    server = create_server(GrpcServerSettings(), [registration(RoutingServicer(app, leases))])
    await server.start()
    admin = metadata_for(issue_token(tenant_id, (Role.ADMIN,), "admin"))

    def agent(agent_id: str) -> tuple[tuple[str, str]]:
        return metadata_for(issue_token(tenant_id, (Role.AGENT,), agent_id))

    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.RoutingServiceStub(channel)
            await stub.UpsertQueue(
                pb.UpsertQueueRequest(request_id=_rid(), queue=pb.Queue(queue_id="q")),
                metadata=admin,
            )
            names = ("silent", "beating", "streaming", "leaving")
            for name in names:
                await stub.UpsertAgent(
                    pb.UpsertAgentRequest(
                        request_id=_rid(), agent=pb.Agent(agent_id=name, queues=["q"])
                    ),
                    metadata=admin,
                )
                await stub.SetAgentState(
                    pb.SetAgentStateRequest(request_id=_rid(), presence=pb.PRESENCE_AVAILABLE),
                    metadata=agent(name),
                )
            await stub.SetAgentState(
                pb.SetAgentStateRequest(request_id=_rid(), presence=pb.PRESENCE_OFFLINE),
                metadata=agent("leaving"),
            )
            stream = stub.AgentStream(pb.AgentStreamRequest(), metadata=agent("streaming"))
            stop = asyncio.Event()
            sweeping = asyncio.create_task(sweeper.run(stop))
            try:
                for _ in range(int(LEASE_S * 3 / 0.2)):
                    await stub.Heartbeat(
                        pb.HeartbeatRequest(request_id=_rid()), metadata=agent("beating")
                    )
                    await asyncio.sleep(0.2)
            finally:
                stop.set()
                await sweeping
                stream.cancel()

        async def presence(name: str) -> Presence:
            view = await app.query(tenant_id, lambda engine: engine.agent(name))
            assert view is not None
            return view.presence

        assert await presence("silent") is Presence.OFFLINE
        assert await presence("beating") is Presence.AVAILABLE
        assert await presence("streaming") is Presence.AVAILABLE
        assert await presence("leaving") is Presence.OFFLINE
        records = await store.read_stream(stream_id_for(tenant_id))
        logoffs = [
            r.data
            for r in records
            if r.event_type == AgentStateChanged.event_type
            and r.data["reason_code"] == HEARTBEAT_LOST
        ]
        assert [d["agent_id"] for d in logoffs] == ["silent"]
        assert await leases.expired() == []
    finally:
        await server.stop(0)
        await store.aclose()


async def test_leases_that_ran_out_while_routing_was_down_get_one_period_to_reconnect(
    leased_pool: PgPool, tenant_id: str
) -> None:
    """A routing restart longer than the lease must not log off every agent at once: their
    desktops had nobody to renew the lease with. Who reconnects within a lease stays."""
    store = PostgresEventStore(leased_pool, SCHEMA)
    app = RoutingApplication(store)
    leases = PresenceLeases(leased_pool, SCHEMA, LEASE_S)
    server = create_server(GrpcServerSettings(), [registration(RoutingServicer(app, leases))])
    await server.start()
    admin = metadata_for(issue_token(tenant_id, (Role.ADMIN,), "admin"))

    def agent(agent_id: str) -> tuple[tuple[str, str]]:
        return metadata_for(issue_token(tenant_id, (Role.AGENT,), agent_id))

    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.RoutingServiceStub(channel)
            await _available(stub, admin, agent, ("back", "gone"))
            await asyncio.sleep(LEASE_S * 2)  # routing is down: no sweeper, no renewals
            assert len(await leases.expired()) == 2
            stop = asyncio.Event()
            sweeping = asyncio.create_task(LeaseSweeper(app, leases, interval_s=0.1).run(stop))
            await asyncio.sleep(0.1)
            stream = stub.AgentStream(pb.AgentStreamRequest(), metadata=agent("back"))
            try:
                await asyncio.sleep(LEASE_S * 3)
            finally:
                stop.set()
                await sweeping
                stream.cancel()

        async def presence(name: str) -> Presence:
            view = await app.query(tenant_id, lambda engine: engine.agent(name))
            assert view is not None
            return view.presence

        assert await presence("back") is Presence.AVAILABLE
        assert await presence("gone") is Presence.OFFLINE
    finally:
        await server.stop(0)
        await store.aclose()


async def test_a_stream_busy_with_offers_keeps_its_lease_and_a_restart_gives_a_whole_period(
    leased_pool: PgPool, tenant_id: str
) -> None:
    """The stream renews on its own clock: offers arriving faster than the renewal period do
    not put it off. And a lease still running when routing starts gets a whole period from
    the start (its desktop's channel may take seconds to reconnect)."""
    store = PostgresEventStore(leased_pool, SCHEMA)
    app = RoutingApplication(store)
    leases = PresenceLeases(leased_pool, SCHEMA, LEASE_S)
    server = create_server(GrpcServerSettings(), [registration(RoutingServicer(app, leases))])
    await server.start()
    admin = metadata_for(issue_token(tenant_id, (Role.ADMIN,), "admin"))

    def agent(agent_id: str) -> tuple[tuple[str, str]]:
        return metadata_for(issue_token(tenant_id, (Role.AGENT,), agent_id))

    def offer(n: int) -> OfferIssued:
        return OfferIssued(
            tenant_id=tenant_id,
            interaction_id=f"i-{n}",
            offer_id=f"o-{n}",
            agent_id="busy",
            queue_id="q",
            channel=Channel.CHAT,
            expires_at=datetime.now(UTC) + timedelta(minutes=1),
            cost=1,
            wait_ms=0,
            decision=Decision(
                trigger=Trigger.CONTACT_QUEUED,
                reason="test",
                strategy=SelectionStrategy.LONGEST_IDLE,
            ),
        )

    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.RoutingServiceStub(channel)
            await _available(stub, admin, agent, ("busy", "late"))
            # "late" has most of its lease behind it when routing starts; it reconnects
            # after the rest of its old lease, within a whole period from the start, and
            # then beats.
            await asyncio.sleep(LEASE_S * 0.8)
            stop = asyncio.Event()
            sweeping = asyncio.create_task(LeaseSweeper(app, leases, interval_s=0.05).run(stop))
            stream = stub.AgentStream(pb.AgentStreamRequest(), metadata=agent("busy"))
            received = 0

            async def read() -> None:
                nonlocal received
                async for _ in stream:
                    received += 1

            reading = asyncio.create_task(read())
            try:
                for n in range(int(LEASE_S * 3 / 0.05)):
                    app.fanout.publish(tenant_id, [offer(n)])
                    if n >= int(LEASE_S * 0.5 / 0.05) and n % 4 == 0:  # back, then beats
                        await stub.Heartbeat(
                            pb.HeartbeatRequest(request_id=_rid()), metadata=agent("late")
                        )
                    await asyncio.sleep(0.05)
            finally:
                stop.set()
                await sweeping
                stream.cancel()
                await asyncio.gather(reading, return_exceptions=True)

        view = await app.query(tenant_id, lambda engine: engine.agent("busy"))
        assert view is not None and view.presence is Presence.AVAILABLE
        assert received > LEASE_S * 3 / 0.05 / 2, f"the stream delivered {received} offers"
        late = await app.query(tenant_id, lambda engine: engine.agent("late"))
        assert late is not None and late.presence is Presence.AVAILABLE
    finally:
        await server.stop(0)
        await store.aclose()
