"""Through Kafka: interactions' InteractionAssigned without an offer (a gateway connected a
queued contact straight to an agent) takes the contact out of routing's queue, cancels the
pending offer to another agent and makes the connecting agent busy, exactly once under
redelivery; an assignment routing cannot follow is logged and the partition goes on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from contactcenter.contracts.events import utc_now
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.routing.adapters.inbound import (
    INTERACTION_ASSIGNED,
    INTERACTION_COMPLETED,
    INTERACTION_QUEUED,
    INTERACTIONS_TOPIC,
)
from contactcenter.routing.config import RoutingSettings
from contactcenter.routing.domain import AgentState, stream_id_for
from contactcenter.routing.main import create_app
from contactcenter.routing.v1 import routing_pb2 as pb
from contactcenter.routing.v1 import routing_pb2_grpc as pb_grpc
from contactcenter.testing.services import service_test_settings, serving, temporary_database

if TYPE_CHECKING:
    from contactcenter.testing.fixtures import TestInfra


async def _publish(
    producer: AIOKafkaProducer,
    tenant_id: str,
    event_type: str,
    data: dict[str, Any],
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
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


async def test_a_direct_connect_takes_the_contact_and_the_agent_exactly_once(
    infra: TestInfra, tenant_id: str
) -> None:
    admin = metadata_for(issue_token(tenant_id, (Role.ADMIN,), "admin-1"))
    async with temporary_database(infra.database_url, "test_routing") as url:
        app = create_app(RoutingSettings(**service_test_settings(url, infra.kafka_bootstrap)))
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
        await producer.start()
        try:
            async with serving(app) as channel:
                stub = pb_grpc.RoutingServiceStub(channel)
                for queue_id in ("sales", "support"):
                    await stub.UpsertQueue(
                        pb.UpsertQueueRequest(
                            request_id=str(uuid.uuid4()),
                            queue=pb.Queue(queue_id=queue_id, wrap_up_s=0, offer_timeout_s=60),
                        ),
                        metadata=admin,
                    )
                for agent_id, queue_id in (("a-1", "sales"), ("a-2", "support")):
                    await stub.UpsertAgent(
                        pb.UpsertAgentRequest(
                            request_id=str(uuid.uuid4()),
                            agent=pb.Agent(agent_id=agent_id, queues=[queue_id]),
                        ),
                        metadata=admin,
                    )
                    await stub.SetAgentState(
                        pb.SetAgentStateRequest(
                            request_id=str(uuid.uuid4()), presence=pb.PRESENCE_AVAILABLE
                        ),
                        metadata=metadata_for(issue_token(tenant_id, (Role.AGENT,), agent_id)),
                    )
                assert app.application is not None and app.context is not None
                application, store = app.application, app.context.store

                async def until(check: Callable[[Any], bool]) -> None:
                    while not await application.query(tenant_id, check):
                        await asyncio.sleep(0.05)

                def state(agent_id: str) -> Callable[[Any], AgentState | None]:
                    def read(engine: Any) -> AgentState | None:
                        view = engine.agent(agent_id)
                        return None if view is None else view.state

                    return read

                await _publish(
                    producer,
                    tenant_id,
                    INTERACTION_QUEUED,
                    {"interaction_id": "i-1", "queue_id": "sales", "channel": "voice"},
                )
                await asyncio.wait_for(until(lambda e: bool(e.pending_offers("a-1"))), 30)

                # The gateway connects i-1 to a-2 (no offer); the event is delivered twice.
                assigned = {"interaction_id": "i-1", "agent_id": "a-2", "queue_id": "sales"}
                event_id = await _publish(producer, tenant_id, INTERACTION_ASSIGNED, assigned)
                await _publish(producer, tenant_id, INTERACTION_ASSIGNED, assigned, event_id)
                # One routing cannot follow (never queued here): logged, the partition goes on.
                await _publish(
                    producer,
                    tenant_id,
                    INTERACTION_ASSIGNED,
                    {"interaction_id": "i-unknown", "agent_id": "a-1"},
                )
                await _publish(
                    producer, tenant_id, INTERACTION_COMPLETED, {"interaction_id": "i-1"}
                )

                completed = asyncio.wait_for(
                    until(lambda e: e.agent("a-2").contacts_today == 1 and not e.agent("a-2").work),
                    30,
                )
                await completed
                assert await application.query(tenant_id, state("a-1")) is AgentState.AVAILABLE
                assert await application.query(tenant_id, state("a-2")) is AgentState.AVAILABLE
                assert await application.query(tenant_id, lambda e: e.contact("i-1")) is None

                records = await store.read_stream(stream_id_for(tenant_id))
                about_i1 = [r for r in records if r.data.get("interaction_id") == "i-1"]
                types = [r.event_type for r in about_i1]
                assert types.count("routing.ContactAssigned.v1") == 1
                assert types.count("routing.OfferCancelled.v1") == 1
                assert "routing.OfferAccepted.v1" not in types
                assigned_record = next(
                    r for r in about_i1 if r.event_type == "routing.ContactAssigned.v1"
                )
                assert assigned_record.data["agent_id"] == "a-2"
                assert assigned_record.data["offer_id"] is None
                assert not any(r.data.get("interaction_id") == "i-unknown" for r in records)
        finally:
            await producer.stop()
