"""The routing API over gRPC: configure, go available, receive and accept an offer; refusals
with the status codes the design names; tenants apart; a restart rebuilds the same state."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest

from contactcenter.common.v1 import common_pb2
from contactcenter.grpckit import Role
from contactcenter.routing.application import RoutingApplication
from contactcenter.routing.domain import Channel, QueueContact
from contactcenter.routing.v1 import routing_pb2 as pb


def _rid() -> str:
    return str(uuid.uuid4())


async def _configure(routing: Any, tenant: str, agent_id: str = "a-1") -> None:
    md = routing.md(tenant)
    queue = pb.Queue(
        queue_id="sales",
        channels=[common_pb2.CHANNEL_VOICE],
        required_skills=[pb.SkillLevel(skill="english", proficiency=2)],
        offer_timeout_s=30,
    )
    response = await routing.stub.UpsertQueue(
        pb.UpsertQueueRequest(request_id=_rid(), queue=queue), metadata=md
    )
    assert response.config_version == 1
    agent = pb.Agent(
        agent_id=agent_id, queues=["sales"], skills=[pb.SkillLevel(skill="english", proficiency=4)]
    )
    await routing.stub.UpsertAgent(
        pb.UpsertAgentRequest(request_id=_rid(), agent=agent), metadata=md
    )
    state = await routing.stub.SetAgentState(
        pb.SetAgentStateRequest(request_id=_rid(), presence=pb.PRESENCE_AVAILABLE),
        metadata=routing.agent(tenant, agent_id),
    )
    assert state.state == pb.AGENT_STATE_AVAILABLE


def _contact(interaction_id: str = "i-1") -> QueueContact:
    return QueueContact(interaction_id=interaction_id, queue_id="sales", channel=Channel.VOICE)


async def _next_offer(stream: Any) -> pb.Offer:
    response = await asyncio.wait_for(stream.read(), 5)
    assert response is not grpc.aio.EOF
    return response.offer


async def test_an_offer_reaches_the_agent_stream_and_is_accepted(
    routing: Any, tenant_id: str
) -> None:
    await _configure(routing, tenant_id)
    stream = routing.stub.AgentStream(
        pb.AgentStreamRequest(), metadata=routing.agent(tenant_id, "a-1")
    )
    try:
        await asyncio.sleep(0.2)  # the stream subscribes
        await routing.app.execute(tenant_id, _contact())
        offer = await _next_offer(stream)
    finally:
        stream.cancel()
    assert (offer.interaction_id, offer.agent_id, offer.queue_id) == ("i-1", "a-1", "sales")
    assert offer.channel == common_pb2.CHANNEL_VOICE
    md = routing.agent(tenant_id, "a-1")
    rid = _rid()
    accepted = await routing.stub.AcceptOffer(
        pb.AcceptOfferRequest(request_id=rid, offer_id=offer.offer_id), metadata=md
    )
    assert accepted.interaction_id == "i-1"
    again = await routing.stub.AcceptOffer(
        pb.AcceptOfferRequest(request_id=rid, offer_id=offer.offer_id), metadata=md
    )
    assert again == accepted
    explained = await routing.stub.ExplainDecision(
        pb.ExplainDecisionRequest(offer_id=offer.offer_id), metadata=routing.md(tenant_id)
    )
    assert explained.status == "accepted" and explained.candidates[0].id == "a-1"
    snapshot = await routing.stub.GetQueueSnapshot(
        pb.GetQueueSnapshotRequest(queue_id="sales"), metadata=routing.md(tenant_id)
    )
    assert (snapshot.waiting, snapshot.offered, snapshot.answered) == (0, 0, 1)


async def test_an_open_offer_is_sent_when_the_stream_connects(routing: Any, tenant_id: str) -> None:
    await _configure(routing, tenant_id)
    await routing.app.execute(tenant_id, _contact())
    stream = routing.stub.AgentStream(
        pb.AgentStreamRequest(), metadata=routing.agent(tenant_id, "a-1")
    )
    try:
        assert (await _next_offer(stream)).interaction_id == "i-1"
    finally:
        stream.cancel()


async def test_an_illegal_move_is_failed_precondition(routing: Any, tenant_id: str) -> None:
    await _configure(routing, tenant_id)
    md = routing.agent(tenant_id, "a-1")
    offer = (await routing.app.execute(tenant_id, _contact())).outcome.offers[0]
    await routing.stub.RejectOffer(
        pb.RejectOfferRequest(request_id=_rid(), offer_id=offer.offer_id), metadata=md
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await routing.stub.AcceptOffer(
            pb.AcceptOfferRequest(request_id=_rid(), offer_id=offer.offer_id), metadata=md
        )
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_a_bad_field_is_invalid_argument_naming_it(routing: Any, tenant_id: str) -> None:
    queue = pb.Queue(
        queue_id="sales",
        required_skills=[
            pb.SkillLevel(skill="english", proficiency=3),
            pb.SkillLevel(skill="billing", proficiency=9),
        ],
        priority=500,
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await routing.stub.UpsertQueue(
            pb.UpsertQueueRequest(request_id=_rid(), queue=queue), metadata=routing.md(tenant_id)
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    fields = routing.violations(refused.value)
    assert set(fields) == {"queue.required_skills[1].proficiency", "queue.priority"}
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await routing.stub.SetAgentState(
            pb.SetAgentStateRequest(presence=pb.PRESENCE_AVAILABLE),
            metadata=routing.agent(tenant_id, "a-1"),
        )
    assert missing.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(routing.violations(missing.value)) == {"request_id"}


async def test_roles_are_enforced(routing: Any, tenant_id: str) -> None:
    await _configure(routing, tenant_id)
    with pytest.raises(grpc.aio.AioRpcError) as agent_configures:
        await routing.stub.UpsertQueue(
            pb.UpsertQueueRequest(request_id=_rid(), queue=pb.Queue(queue_id="q")),
            metadata=routing.agent(tenant_id, "a-1"),
        )
    assert agent_configures.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as other_agent:
        await routing.stub.SetAgentState(
            pb.SetAgentStateRequest(request_id=_rid(), agent_id="a-2", presence=pb.PRESENCE_AWAY),
            metadata=routing.agent(tenant_id, "a-1"),
        )
    assert other_agent.value.code() is grpc.StatusCode.PERMISSION_DENIED
    supervisor = routing.md(tenant_id, (Role.SUPERVISOR,), "sup-1")
    state = await routing.stub.SetAgentState(
        pb.SetAgentStateRequest(request_id=_rid(), agent_id="a-1", presence=pb.PRESENCE_AWAY),
        metadata=supervisor,
    )
    assert state.state == pb.AGENT_STATE_AWAY


async def test_tenants_never_see_each_other(routing: Any, tenant_id: str) -> None:
    other = f"{tenant_id}-b"
    await _configure(routing, tenant_id)
    offer = (await routing.app.execute(tenant_id, _contact())).outcome.offers[0]
    with pytest.raises(grpc.aio.AioRpcError) as snapshot:
        await routing.stub.GetQueueSnapshot(
            pb.GetQueueSnapshotRequest(queue_id="sales"), metadata=routing.md(other)
        )
    assert snapshot.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as accept:
        await routing.stub.AcceptOffer(
            pb.AcceptOfferRequest(request_id=_rid(), offer_id=offer.offer_id),
            metadata=routing.agent(other, "a-1"),
        )
    assert accept.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as explain:
        await routing.stub.ExplainDecision(
            pb.ExplainDecisionRequest(offer_id=offer.offer_id), metadata=routing.md(other)
        )
    assert explain.value.code() is grpc.StatusCode.NOT_FOUND


async def test_a_restarted_application_rebuilds_the_same_state(
    routing: Any, tenant_id: str
) -> None:
    await _configure(routing, tenant_id)
    await routing.app.execute(tenant_id, _contact())
    await routing.app.execute(tenant_id, _contact("i-2"))
    restarted = RoutingApplication(routing.store)
    assert await restarted.query(tenant_id, lambda e: e.fingerprint()) == await routing.app.query(
        tenant_id, lambda e: e.fingerprint()
    )
    offers = await restarted.query(tenant_id, lambda e: e.pending_offers("a-1"))
    assert [o.interaction_id for o in offers] == ["i-1"]


async def test_a_request_id_reused_for_another_request_is_invalid_argument(
    routing: Any, tenant_id: str
) -> None:
    md = routing.md(tenant_id)
    rid = _rid()
    await routing.stub.UpsertQueue(
        pb.UpsertQueueRequest(request_id=rid, queue=pb.Queue(queue_id="a")), metadata=md
    )
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await routing.stub.UpsertQueue(
            pb.UpsertQueueRequest(request_id=rid, queue=pb.Queue(queue_id="b")), metadata=md
        )
    assert reused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(routing.violations(reused.value)) == {"request_id"}
