"""The whole service as `python -m contactcenter.routing` runs it (servicekit: migrations,
broker, outbox relay, gRPC, the timer loop), against the real PostgreSQL and broker."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer
from grpc_health.v1 import health_pb2, health_pb2_grpc

from contactcenter.contracts.events import utc_now
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.routing.adapters.inbound import (
    INTERACTION_ABANDONED,
    INTERACTION_QUEUED,
    INTERACTIONS_TOPIC,
)
from contactcenter.routing.config import RoutingSettings
from contactcenter.routing.domain import Channel, Presence, QueueContact, stream_id_for
from contactcenter.routing.main import create_app
from contactcenter.routing.v1 import routing_pb2 as pb
from contactcenter.routing.v1 import routing_pb2_grpc as pb_grpc
from contactcenter.testing.services import service_test_settings, serving, temporary_database

if TYPE_CHECKING:
    from contactcenter.testing.fixtures import TestInfra


def _rid() -> str:
    return str(uuid.uuid4())


async def test_the_app_serves_fires_timers_snapshots_and_rebuilds_after_a_restart(
    infra: TestInfra, tenant_id: str
) -> None:
    admin = metadata_for(issue_token(tenant_id, (Role.ADMIN,), "admin-1"))
    agent = metadata_for(issue_token(tenant_id, (Role.AGENT,), "a-1"))
    async with temporary_database(infra.database_url, "test_routing") as url:
        settings = RoutingSettings(
            **service_test_settings(url, infra.kafka_bootstrap),
            timer_max_sleep_s=0.2,
            snapshot_every=3,
            snapshot_poll_s=0.1,
        )
        app = create_app(settings)
        async with serving(app) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="contactcenter.routing.v1.RoutingService")
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            stub = pb_grpc.RoutingServiceStub(channel)
            queue = pb.Queue(queue_id="sales", offer_timeout_s=1, wrap_up_s=0)
            await stub.UpsertQueue(
                pb.UpsertQueueRequest(request_id=_rid(), queue=queue), metadata=admin
            )
            await stub.UpsertAgent(
                pb.UpsertAgentRequest(
                    request_id=_rid(), agent=pb.Agent(agent_id="a-1", queues=["sales"])
                ),
                metadata=admin,
            )
            await stub.SetAgentState(
                pb.SetAgentStateRequest(request_id=_rid(), presence=pb.PRESENCE_AVAILABLE),
                metadata=agent,
            )
            stream = stub.AgentStream(pb.AgentStreamRequest(), metadata=agent)
            try:
                await asyncio.sleep(0.2)
                assert app.application is not None
                contact = QueueContact(
                    interaction_id="i-1", queue_id="sales", channel=Channel.VOICE
                )
                await app.application.execute(tenant_id, contact)
                response = await asyncio.wait_for(stream.read(), 5)
            finally:
                stream.cancel()
            assert response.offer.interaction_id == "i-1"

            # Nobody answers: the timer loop expires the offer, the agent is not responding.
            async def not_responding() -> Any:
                while True:
                    beat = await stub.Heartbeat(
                        pb.HeartbeatRequest(request_id=_rid()), metadata=agent
                    )
                    if beat.state == pb.AGENT_STATE_NOT_RESPONDING:
                        return beat
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(not_responding(), 5)
            before = await app.application.query(tenant_id, lambda e: e.fingerprint())

            # The snapshotter (a child process) snapshots the tenant, `snapshot_every`
            # events past its start: the restart below rebuilds from it and the tail.
            async def snapshotted() -> int:
                while (snapshot := await store.load_snapshot(stream_id_for(tenant_id))) is None:
                    await asyncio.sleep(0.05)
                return snapshot.version

            store = app.application.store
            assert await asyncio.wait_for(snapshotted(), 10) >= 3

        restarted = create_app(settings)
        async with serving(restarted) as channel:
            stub = pb_grpc.RoutingServiceStub(channel)
            assert restarted.application is not None
            after = await restarted.application.query(tenant_id, lambda e: e.fingerprint())
            assert after == before
            view = await restarted.application.query(tenant_id, lambda e: e.agent("a-1"))
            assert view is not None and view.presence is Presence.NOT_RESPONDING
            snapshot = await stub.GetQueueSnapshot(
                pb.GetQueueSnapshotRequest(queue_id="sales"), metadata=admin
            )
            assert snapshot.waiting == 1


async def _publish(
    producer: AIOKafkaProducer,
    tenant_id: str,
    event_type: str,
    data: dict[str, Any],
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """An interactions event as that service publishes it (CloudEvents, key = tenant)."""
    event_id = event_id or uuid.uuid4()
    envelope = EventEnvelope(
        id=event_id,
        type=event_type,
        source="/contactcenter/interactions",
        subject=f"interaction/{tenant_id}/{data['interaction_id']}",
        time=utc_now(),
        tenant_id=tenant_id,
        data={"event_id": str(event_id), "tenant_id": tenant_id, **data},
    )
    record = encode(envelope)
    await producer.send_and_wait(
        INTERACTIONS_TOPIC, value=record.value, key=record.key, headers=record.headers
    )
    return event_id


async def test_interactions_events_queue_and_cancel_contacts_exactly_once(
    infra: TestInfra, tenant_id: str
) -> None:
    admin = metadata_for(issue_token(tenant_id, (Role.ADMIN,), "admin-1"))
    agent = metadata_for(issue_token(tenant_id, (Role.AGENT,), "a-1"))
    async with temporary_database(infra.database_url, "test_routing") as url:
        app = create_app(RoutingSettings(**service_test_settings(url, infra.kafka_bootstrap)))
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
        await producer.start()
        try:
            async with serving(app) as channel:
                stub = pb_grpc.RoutingServiceStub(channel)
                await stub.UpsertQueue(
                    pb.UpsertQueueRequest(
                        request_id=_rid(), queue=pb.Queue(queue_id="sales", wrap_up_s=0)
                    ),
                    metadata=admin,
                )
                await stub.UpsertAgent(
                    pb.UpsertAgentRequest(
                        request_id=_rid(),
                        agent=pb.Agent(
                            agent_id="a-1",
                            queues=["sales"],
                            skills=[pb.SkillLevel(skill="english", proficiency=5)],
                        ),
                    ),
                    metadata=admin,
                )
                await stub.SetAgentState(
                    pb.SetAgentStateRequest(request_id=_rid(), presence=pb.PRESENCE_AVAILABLE),
                    metadata=agent,
                )
                stream = stub.AgentStream(pb.AgentStreamRequest(), metadata=agent)
                queued = {
                    "interaction_id": "i-1",
                    "queue_id": "sales",
                    "channel": "voice",
                    "reason": "initial",
                    "required_skills": [{"skill": "english", "min_proficiency": 7}],
                    "first_enqueued_at": utc_now().isoformat(),
                }
                try:
                    event_id = await _publish(producer, tenant_id, INTERACTION_QUEUED, queued)
                    response = await asyncio.wait_for(stream.read(), 30)
                finally:
                    stream.cancel()
                assert response.offer.interaction_id == "i-1"
                assert app.application is not None and app.context is not None
                store = app.context.store
                version = await store.stream_version(stream_id_for(tenant_id))

                # A redelivered event changes nothing; the abandon cancels the offer.
                await _publish(producer, tenant_id, INTERACTION_QUEUED, queued, event_id)
                await _publish(
                    producer,
                    tenant_id,
                    INTERACTION_ABANDONED,
                    {"interaction_id": "i-1", "abandoned_in": "offered", "waited_ms": 1},
                )

                async def cancelled() -> None:
                    while await app.application.query(  # type: ignore[union-attr]
                        tenant_id, lambda e: e.contact("i-1")
                    ):
                        await asyncio.sleep(0.05)

                await asyncio.wait_for(cancelled(), 20)
                records = await store.read_stream(
                    stream_id_for(tenant_id), from_version=version + 1
                )
                types = [r.event_type for r in records]
                assert "routing.OfferIssued.v1" not in types
                assert "routing.OfferCancelled.v1" in types
        finally:
            await producer.stop()
