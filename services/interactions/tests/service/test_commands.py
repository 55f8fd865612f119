"""The gRPC API against the running service: lifecycle, refusals, idempotency, isolation."""

from __future__ import annotations

import uuid

import grpc
import pytest

from contactcenter.common.v1 import common_pb2
from contactcenter.grpckit import Role
from contactcenter.interactions.v1 import interactions_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")

QUEUE = "q-support"
AGENT = "agent-7"


async def test_full_lifecycle_of_a_call(api) -> None:
    created = await api.create(
        channel=common_pb2.CHANNEL_VOICE,
        customer_address="+41445551234",
        entry_point="+41800000000",
        agent_id=AGENT,
    )
    iid = created.interaction_id
    assert created.state == pb.INTERACTION_STATE_ASSIGNED and created.version == 2
    agent = api.md(roles=[Role.AGENT], subject=AGENT)

    steps = [
        ("Connect", {}, pb.INTERACTION_STATE_CONNECTED),
        ("Hold", {}, pb.INTERACTION_STATE_ON_HOLD),
        ("Resume", {}, pb.INTERACTION_STATE_CONNECTED),
        (
            "End",
            {"ended_by": pb.ENDED_BY_CUSTOMER, "reason": "resolved"},
            pb.INTERACTION_STATE_WRAP_UP,
        ),
    ]
    version = created.version
    for rpc, fields, state in steps:
        response = await api.call(rpc, interaction_id=iid, metadata=agent, **fields)
        assert response.result.state == state, rpc
        assert response.result.version > version
        version = response.result.version
    note = await api.call("AddNote", interaction_id=iid, text="called back", metadata=agent)
    assert note.note_id
    completed = await api.call(
        "Complete", interaction_id=iid, disposition_codes=["resolved"], metadata=agent
    )
    assert completed.result.state == pb.INTERACTION_STATE_COMPLETED
    await api.call("RecordSatisfaction", interaction_id=iid, score=5, comment="great")

    got = await api.get(iid)
    assert got.state == pb.INTERACTION_STATE_COMPLETED
    assert got.agent_id == AGENT and got.hold_count == 1
    assert list(got.disposition_codes) == ["resolved"]
    assert [n.text for n in got.notes] == ["called back"]
    assert got.satisfaction.score == 5 and got.satisfaction.scale == 5
    assert got.HasField("answer_time") and got.HasField("complete_time")
    assert got.version == await api.version(iid)
    # Durations are exact sums of the event timestamps.
    ms = lambda d: d.seconds * 1000 + d.nanos // 1_000_000  # noqa: E731
    end = got.end_time.ToMilliseconds()
    assert ms(got.talk_duration) + ms(got.hold_duration) == end - got.answer_time.ToMilliseconds()


async def test_chat_messages_and_transcript_refusal(api, errors) -> None:
    iid = (await api.create(channel=common_pb2.CHANNEL_CHAT, agent_id=AGENT)).interaction_id
    await api.call("Connect", interaction_id=iid)
    first = await api.call(
        "AppendMessage",
        interaction_id=iid,
        author=pb.Author(role=pb.AUTHOR_ROLE_CUSTOMER, display_name="Ann"),
        direction=pb.MESSAGE_DIRECTION_INBOUND,
        body="hello",
        external_message_id="chat-1",
    )
    again = await api.call(
        "AppendMessage",
        interaction_id=iid,
        author=pb.Author(role=pb.AUTHOR_ROLE_CUSTOMER, display_name="Ann"),
        direction=pb.MESSAGE_DIRECTION_INBOUND,
        body="hello",
        external_message_id="chat-1",
    )
    assert again.message_id == first.message_id
    assert again.result.version == first.result.version
    got = await api.get(iid)
    assert [m.body for m in got.messages] == ["hello"]
    basic = await api.get(iid, view=pb.INTERACTION_VIEW_BASIC)
    assert not basic.messages

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.call(
            "AppendTranscript",
            interaction_id=iid,
            speaker_role=pb.AUTHOR_ROLE_CUSTOMER,
            text="hi",
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_gateway_connects_a_queued_call_straight_to_an_agent(api, errors) -> None:
    iid = (await api.create(queue=pb.QueueTarget(queue_id=QUEUE))).interaction_id
    before = await api.version(iid)
    with pytest.raises(grpc.aio.AioRpcError) as nameless:
        await api.call("Connect", interaction_id=iid)
    assert nameless.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(errors.violations(nameless.value)) == {"agent_id"}
    assert await api.version(iid) == before
    connected = await api.call("Connect", interaction_id=iid, agent_id=AGENT)
    assert connected.result.state == pb.INTERACTION_STATE_CONNECTED
    assert connected.result.version == before + 2  # assigned, then connected
    got = await api.get(iid)
    assert got.agent_id == AGENT and got.HasField("answer_time")


async def test_illegal_transition_names_the_state_and_appends_nothing(api, errors) -> None:
    iid = (await api.create(queue=pb.QueueTarget(queue_id=QUEUE))).interaction_id
    before = await api.version(iid)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.call("Hold", interaction_id=iid)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "queued" in refused.value.details()
    info = errors.info(refused.value)
    assert info.reason == "ILLEGAL_TRANSITION"
    assert info.metadata["current_state"] == "queued"
    assert await api.version(iid) == before

    await api.call("Abandon", interaction_id=iid, reason="customer_hangup")
    with pytest.raises(grpc.aio.AioRpcError) as final:
        await api.call("Enqueue", interaction_id=iid, queue_id=QUEUE)
    assert final.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert errors.info(final.value).metadata["current_state"] == "abandoned"


async def test_a_retried_request_returns_the_first_result_and_appends_nothing(api, errors) -> None:
    request_id = str(uuid.uuid4())
    first = await api.create(request_id=request_id, queue=pb.QueueTarget(queue_id=QUEUE))
    retry = await api.create(request_id=request_id, queue=pb.QueueTarget(queue_id=QUEUE))
    assert retry == first
    iid = first.interaction_id
    listed = await api.call("GetInteraction", interaction_id=iid)
    assert listed.interaction.version == 2

    # A retry after the interaction moved on still gets the first answer.
    await api.call("Abandon", interaction_id=iid)  # moves on
    again = await api.create(request_id=request_id, queue=pb.QueueTarget(queue_id=QUEUE))
    assert again == first

    iid2 = (await api.create(agent_id=AGENT)).interaction_id
    await api.call("Connect", interaction_id=iid2)
    hold_id = str(uuid.uuid4())
    held = await api.call("Hold", interaction_id=iid2, request_id=hold_id)
    await api.call("Resume", interaction_id=iid2)
    version = await api.version(iid2)
    retried = await api.call("Hold", interaction_id=iid2, request_id=hold_id)
    assert retried.result == held.result
    assert retried.result.state == pb.INTERACTION_STATE_ON_HOLD
    assert await api.version(iid2) == version

    # The same request_id for another request is a client bug.
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await api.call("Resume", interaction_id=iid2, request_id=hold_id)
    assert reused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in errors.violations(reused.value)
    assert await api.version(iid2) == version


async def test_concurrent_duplicates_append_once(api) -> None:
    import asyncio

    iid = (await api.create(channel=common_pb2.CHANNEL_CHAT, agent_id=AGENT)).interaction_id
    await api.call("Connect", interaction_id=iid)
    request_id = str(uuid.uuid4())
    responses = await asyncio.gather(
        *(
            api.call(
                "AddNote",
                interaction_id=iid,
                request_id=request_id,
                author_id="sup-1",
                text="one note",
            )
            for _ in range(8)
        )
    )
    assert len({r.note_id for r in responses}) == 1
    assert len((await api.get(iid)).notes) == 1


async def test_other_tenants_see_nothing(service, api, tenant_id, errors) -> None:
    iid = (await api.create(queue=pb.QueueTarget(queue_id=QUEUE))).interaction_id
    other = service.metadata(f"{tenant_id}-other", roles=[Role.SUPERVISOR, Role.SERVICE])
    for rpc, fields in [
        ("GetInteraction", {}),
        ("Abandon", {}),
        ("AddNote", {"author_id": "sup", "text": "peek"}),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await api.call(rpc, interaction_id=iid, metadata=other, **fields)
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND, rpc
    with pytest.raises(grpc.aio.AioRpcError) as hidden:
        stream = api.stub.WatchInteraction(
            pb.WatchInteractionRequest(interaction_id=iid), metadata=other, timeout=5
        )
        async for _ in stream:
            pass
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await api.call("ListInteractions", metadata=other)
    assert list(listed.interactions) == []
    assert (await api.get(iid)).state == pb.INTERACTION_STATE_QUEUED


async def test_invalid_arguments_name_the_fields(api, errors) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await api.call("CreateInteraction", request_id="", channel=common_pb2.CHANNEL_UNSPECIFIED)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(errors.violations(bad.value)) == {"request_id", "channel"}

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await api.create(
            language="not a language",
            queue=pb.QueueTarget(
                queue_id="",
                priority=101,
                required_skills=[pb.SkillRequirement(skill="billing", min_proficiency=11)],
            ),
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(errors.violations(bad.value)) == {
        "language",
        "queue.queue_id",
        "queue.priority",
        "queue.required_skills[0].min_proficiency",
    }

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await api.call(
            "AppendMessage", interaction_id="i-1", direction=pb.MESSAGE_DIRECTION_INBOUND
        )
    assert set(errors.violations(bad.value)) == {"author"}

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await api.call("ListInteractions", page=common_pb2.PageRequest(page_token="garbage"))
    assert set(errors.violations(bad.value)) == {"page.page_token"}


async def test_roles_and_agents_acting_as_themselves(api, tenant_id, service) -> None:
    iid = (await api.create(agent_id=AGENT)).interaction_id
    agent = api.md(roles=[Role.AGENT], subject=AGENT)
    other_agent = api.md(roles=[Role.AGENT], subject="agent-8")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await api.call("RecordSatisfaction", interaction_id=iid, score=3, metadata=agent)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await api.call("Connect", interaction_id=iid, agent_id=AGENT, metadata=other_agent)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Another agent defaults to themselves, who is not on the interaction.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.call("Connect", interaction_id=iid, metadata=other_agent)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    connected = await api.call("Connect", interaction_id=iid, metadata=agent)
    assert connected.result.state == pb.INTERACTION_STATE_CONNECTED
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await api.stub.GetInteraction(pb.GetInteractionRequest(interaction_id=iid), timeout=5)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_conference_transcript_consulted_transfer_and_failure(api) -> None:
    from google.protobuf.duration_pb2 import Duration

    iid = (await api.create(channel=common_pb2.CHANNEL_VIDEO, agent_id=AGENT)).interaction_id
    await api.call("Connect", interaction_id=iid)
    joined = await api.call("Conference", interaction_id=iid, agent_id="agent-9")
    assert joined.result.state == pb.INTERACTION_STATE_CONNECTED
    segment = await api.call(
        "AppendTranscript",
        interaction_id=iid,
        segment_id="seg-1",
        speaker_role=pb.AUTHOR_ROLE_CUSTOMER,
        text="my order never arrived",
        start_offset=Duration(seconds=3),
        end_offset=Duration(seconds=5, nanos=250_000_000),
        confidence=0.9,
    )
    assert segment.segment_id == "seg-1"
    await api.call("LeaveConference", interaction_id=iid, agent_id="agent-9")
    moved = await api.call(
        "Transfer",
        interaction_id=iid,
        mode=pb.TRANSFER_MODE_CONSULTED,
        to_agent_id="agent-5",
        agent_id=AGENT,
    )
    assert moved.result.state == pb.INTERACTION_STATE_CONNECTED
    failed = await api.call("Fail", interaction_id=iid, failure_code="media_lost", detail="rtp")
    assert failed.result.state == pb.INTERACTION_STATE_FAILED

    got = await api.get(iid)
    assert got.agent_id == "agent-5" and got.transfer_count == 1
    assert got.failure_code == "media_lost"
    (spoken,) = got.transcript
    assert spoken.text == "my order never arrived"
    assert spoken.end_offset.ToMilliseconds() == 5250
    assert abs(spoken.confidence - 0.9) < 1e-6
