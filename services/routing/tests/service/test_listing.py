"""ListQueues, ListAgents, GetAgent and ReplayDecisions over gRPC on the real event store:
pages with opaque cursors, filters, tenants apart, bad pages refused with the field named; a
profile read back and upserted unchanged appends nothing; the state rebuilt from the events
alone is the live one, bit for bit."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest

from contactcenter.common.v1 import common_pb2
from contactcenter.grpckit import Role
from contactcenter.routing.application import RoutingApplication
from contactcenter.routing.application.snapshots import Snapshotter
from contactcenter.routing.domain import Channel, QueueContact
from contactcenter.routing.v1 import routing_pb2 as pb


def _rid() -> str:
    return str(uuid.uuid4())


async def _setup(routing: Any, tenant: str) -> None:
    md = routing.md(tenant)
    for queue in (
        pb.Queue(
            queue_id="sales",
            name="Sales",
            channels=[common_pb2.CHANNEL_VOICE, common_pb2.CHANNEL_CHAT],
            required_skills=[pb.SkillLevel(skill="english", proficiency=2)],
            language="en",
            priority=5,
            max_wait_s=300,
            max_wait_action=pb.MAX_WAIT_ACTION_OVERFLOW,
            overflow_queue_id="support",
            strategy=pb.SELECTION_STRATEGY_MOST_SKILLED,
            wrap_up_s=10,
        ),
        pb.Queue(queue_id="support", channels=[common_pb2.CHANNEL_VOICE]),
        pb.Queue(queue_id="billing", channels=[common_pb2.CHANNEL_EMAIL]),
    ):
        await routing.stub.UpsertQueue(
            pb.UpsertQueueRequest(request_id=_rid(), queue=queue), metadata=md
        )
    for i in range(5):
        agent = pb.Agent(
            agent_id=f"a-{i}",
            name=f"Agent {i}",
            queues=["sales", "support"] if i % 2 else ["billing"],
            skills=[pb.SkillLevel(skill="english", proficiency=1 + i)],
            languages=["en"],
            channels=[common_pb2.CHANNEL_VOICE, common_pb2.CHANNEL_EMAIL],
            time_zone="Europe/Berlin",
        )
        await routing.stub.UpsertAgent(
            pb.UpsertAgentRequest(request_id=_rid(), agent=agent), metadata=md
        )
    for agent_id in ("a-1", "a-2"):
        await routing.stub.SetAgentState(
            pb.SetAgentStateRequest(
                request_id=_rid(), agent_id=agent_id, presence=pb.PRESENCE_AVAILABLE
            ),
            metadata=md,
        )


def _page(size: int = 0, token: str = "") -> common_pb2.PageRequest:
    return common_pb2.PageRequest(page_size=size, page_token=token)


async def test_queues_and_agents_come_a_page_at_a_time_with_their_definitions(
    routing: Any, tenant_id: str
) -> None:
    await _setup(routing, tenant_id)
    md = routing.md(tenant_id, (Role.SUPERVISOR,))

    first = await routing.stub.ListQueues(pb.ListQueuesRequest(page=_page(2)), metadata=md)
    assert [q.queue.queue_id for q in first.queues] == ["billing", "sales"]
    assert first.page.next_page_token
    rest = await routing.stub.ListQueues(
        pb.ListQueuesRequest(page=_page(2, first.page.next_page_token)), metadata=md
    )
    assert [q.queue.queue_id for q in rest.queues] == ["support"]
    assert rest.page.next_page_token == ""
    sales = first.queues[1]
    assert sales.config_version == 1 and sales.agents == 2 and sales.waiting == 0
    q = sales.queue
    assert (q.name, q.language, q.priority, q.max_wait_s, q.overflow_queue_id) == (
        "Sales", "en", 5, 300, "support",
    )  # fmt: skip
    assert list(q.channels) == [common_pb2.CHANNEL_VOICE, common_pb2.CHANNEL_CHAT]
    assert [(s.skill, s.proficiency) for s in q.required_skills] == [("english", 2)]
    assert q.strategy == pb.SELECTION_STRATEGY_MOST_SKILLED
    assert q.max_wait_action == pb.MAX_WAIT_ACTION_OVERFLOW
    assert (q.wrap_up_s, q.sl_target_percent, q.sl_threshold_s) == (10, 80, 20)  # defaults

    everyone = await routing.stub.ListAgents(pb.ListAgentsRequest(), metadata=md)
    assert [a.agent.agent_id for a in everyone.agents] == [f"a-{i}" for i in range(5)]
    assert everyone.page.next_page_token == ""
    a3 = everyone.agents[3]
    assert a3.agent.name == "Agent 3" and a3.agent.time_zone == "Europe/Berlin"
    assert [(s.skill, s.proficiency) for s in a3.agent.skills] == [("english", 4)]
    assert list(a3.agent.queues) == ["sales", "support"] and a3.agent.capacity == 60
    assert a3.state == pb.AGENT_STATE_OFFLINE and a3.config_version == 1

    # Filters, and paging through a filtered list.
    available = await routing.stub.ListAgents(
        pb.ListAgentsRequest(states=[pb.AGENT_STATE_AVAILABLE]), metadata=md
    )
    assert [a.agent.agent_id for a in available.agents] == ["a-1", "a-2"]
    assert all(a.presence == pb.PRESENCE_AVAILABLE for a in available.agents)
    seen: list[str] = []
    token = ""
    while True:
        page = await routing.stub.ListAgents(
            pb.ListAgentsRequest(queue_id="sales", page=_page(1, token)), metadata=md
        )
        seen += [a.agent.agent_id for a in page.agents]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == ["a-1", "a-3"]
    both = await routing.stub.ListAgents(
        pb.ListAgentsRequest(states=[pb.AGENT_STATE_AVAILABLE], queue_id="billing"), metadata=md
    )
    assert [a.agent.agent_id for a in both.agents] == ["a-2"]

    # Read-modify-write: the definition read back and upserted unchanged appends nothing.
    got = await routing.stub.GetAgent(pb.GetAgentRequest(agent_id="a-3"), metadata=md)
    assert got.agent == a3
    before = await routing.store.stream_version(f"routing/{tenant_id}/engine")
    await routing.stub.UpsertAgent(
        pb.UpsertAgentRequest(request_id=_rid(), agent=got.agent.agent), metadata=md
    )
    assert await routing.store.stream_version(f"routing/{tenant_id}/engine") == before
    changed = pb.Agent()
    changed.CopyFrom(got.agent.agent)
    changed.skills.append(pb.SkillLevel(skill="spanish", proficiency=3))
    await routing.stub.UpsertAgent(
        pb.UpsertAgentRequest(request_id=_rid(), agent=changed), metadata=md
    )
    again = await routing.stub.GetAgent(pb.GetAgentRequest(agent_id="a-3"), metadata=md)
    assert again.agent.config_version == 2
    assert {(s.skill, s.proficiency) for s in again.agent.agent.skills} == {
        ("english", 4),
        ("spanish", 3),
    }


async def test_another_tenant_sees_none_of_them(routing: Any, tenant_id: str) -> None:
    await _setup(routing, tenant_id)
    other = routing.md(f"{tenant_id}-b")
    assert not (await routing.stub.ListQueues(pb.ListQueuesRequest(), metadata=other)).queues
    assert not (await routing.stub.ListAgents(pb.ListAgentsRequest(), metadata=other)).agents
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await routing.stub.GetAgent(pb.GetAgentRequest(agent_id="a-1"), metadata=other)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    # A page token of tenant A's list shows nothing of A to B either: B's list is its own.
    mine = await routing.stub.ListQueues(
        pb.ListQueuesRequest(page=_page(1)), metadata=routing.md(tenant_id)
    )
    theirs = await routing.stub.ListQueues(
        pb.ListQueuesRequest(page=_page(1, mine.page.next_page_token)), metadata=other
    )
    assert not theirs.queues


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListQueuesRequest(page=_page(-1)), "page.page_size"),
        (pb.ListQueuesRequest(page=_page(0, "not-a-token")), "page.page_token"),
        (pb.ListAgentsRequest(page=_page(0, "e30")), "page.page_token"),  # "{}"
        (pb.ListAgentsRequest(states=[42]), "states[0]"),
        (pb.ListAgentsRequest(queue_id="has space"), "queue_id"),
    ],
    ids=["negative size", "garbage token", "empty token", "unknown state", "bad queue id"],
)
async def test_bad_pages_and_filters_are_invalid_argument_naming_the_field(
    routing: Any, tenant_id: str, request_: Any, field: str
) -> None:
    call = (
        routing.stub.ListQueues
        if isinstance(request_, pb.ListQueuesRequest)
        else routing.stub.ListAgents
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(request_, metadata=routing.md(tenant_id))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field in routing.violations(caught.value)


async def test_a_token_only_continues_its_own_list_and_agents_may_not_list(
    routing: Any, tenant_id: str
) -> None:
    await _setup(routing, tenant_id)
    md = routing.md(tenant_id)
    page = await routing.stub.ListAgents(
        pb.ListAgentsRequest(queue_id="sales", page=_page(1)), metadata=md
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await routing.stub.ListAgents(
            pb.ListAgentsRequest(queue_id="billing", page=_page(1, page.page.next_page_token)),
            metadata=md,
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "other filters" in routing.violations(caught.value)["page.page_token"]
    for call, request in (
        (routing.stub.ListAgents, pb.ListAgentsRequest()),
        (routing.stub.ListQueues, pb.ListQueuesRequest()),
        (routing.stub.GetAgent, pb.GetAgentRequest(agent_id="a-1")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, metadata=routing.agent(tenant_id, "a-1"))
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await routing.stub.GetAgent(pb.GetAgentRequest(), metadata=md)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "agent_id" in routing.violations(caught.value)


async def _replay(routing: Any, tenant_id: str) -> tuple[list[pb.ReplayProgress], pb.ReplayResult]:
    progress: list[pb.ReplayProgress] = []
    result: pb.ReplayResult | None = None
    async for update in routing.stub.ReplayDecisions(
        pb.ReplayDecisionsRequest(), metadata=routing.md(tenant_id)
    ):
        if update.HasField("progress"):
            progress.append(update.progress)
        else:
            result = update.result
    assert result is not None
    return progress, result


async def test_replay_rebuilds_the_decisions_from_the_events_bit_for_bit(
    routing: Any, tenant_id: str
) -> None:
    await _setup(routing, tenant_id)
    for i in range(3):
        await routing.app.execute(
            tenant_id,
            QueueContact(interaction_id=f"i-{i}", queue_id="support", channel=Channel.VOICE),
        )
    progress, result = await _replay(routing, tenant_id)
    version = await routing.store.stream_version(f"routing/{tenant_id}/engine")
    assert result.events == version and result.decisions == 1  # one available agent in support
    assert result.reproduced and result.decisions_differing == 0
    assert result.live_fingerprint == result.replayed_fingerprint
    assert progress[-1].events_applied == progress[-1].events_total == version

    # A live state that drifted from its events is reported, not hidden.
    def drift(engine: Any) -> None:
        engine.agents["a-1"].reason_code = "drifted"

    await routing.app.query(tenant_id, drift)
    _, drifted = await _replay(routing, tenant_id)
    assert not drifted.reproduced
    assert drifted.live_fingerprint != drifted.replayed_fingerprint

    # A restarted instance (from a snapshot and the events after it) is the same too, and
    # this one (its live engine drifted, and is stale now) rebuilds to the same.
    restarted = RoutingApplication(routing.store)
    await restarted.execute(
        tenant_id, QueueContact(interaction_id="i-9", queue_id="sales", channel=Channel.VOICE)
    )
    await Snapshotter(routing.store, every=1, explain_capacity=10_000).snapshot_due()
    fresh = RoutingApplication(routing.store)  # loads the snapshot `restarted` saved
    report = await fresh.replay(tenant_id)
    assert report.reproduced and report.decisions == result.decisions
    assert report.events == await routing.store.stream_version(f"routing/{tenant_id}/engine")


async def test_replay_is_for_admins_and_an_empty_tenant_replays_nothing(
    routing: Any, tenant_id: str
) -> None:
    _, result = await _replay(routing, f"{tenant_id}-empty")
    assert (result.events, result.decisions, result.reproduced) == (0, 0, True)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        stream = routing.stub.ReplayDecisions(
            pb.ReplayDecisionsRequest(), metadata=routing.md(tenant_id, (Role.SUPERVISOR,))
        )
        await asyncio.wait_for(stream.read(), 10)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
