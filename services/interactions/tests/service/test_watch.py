"""WatchInteraction: a snapshot, then every event live, ending on a final state."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from contactcenter.common.v1 import common_pb2
from contactcenter.interactions.v1 import interactions_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_watch_streams_until_completion_and_resumes(api) -> None:
    iid = (await api.create(channel=common_pb2.CHANNEL_CHAT, agent_id="a-1")).interaction_id
    stream = api.stub.WatchInteraction(
        pb.WatchInteractionRequest(interaction_id=iid), metadata=api.md(), timeout=20
    )
    received: list[pb.WatchInteractionResponse] = []

    async def read() -> None:
        async for item in stream:
            received.append(item)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.2)
    await api.call("Connect", interaction_id=iid)
    await api.call(
        "AppendMessage",
        interaction_id=iid,
        author=pb.Author(role=pb.AUTHOR_ROLE_AGENT, id="a-1"),
        direction=pb.MESSAGE_DIRECTION_OUTBOUND,
        body="How can I help?",
    )
    await api.call("End", interaction_id=iid, ended_by=pb.ENDED_BY_AGENT)
    await api.call("Complete", interaction_id=iid)
    await asyncio.wait_for(reader, 10)  # the stream ends by itself on the final state

    assert received[0].WhichOneof("item") == "snapshot"
    assert received[0].snapshot.version == 2
    events = [r.event for r in received[1:]]
    assert [e.WhichOneof("payload") for e in events] == [
        "connected",
        "message_appended",
        "ended",
        "wrap_up_ended",
        "completed",
    ]
    assert [e.version for e in events] == [3, 4, 5, 6, 7]
    assert events[1].message_appended.message.body == "How can I help?"
    assert events[-1].state == pb.INTERACTION_STATE_COMPLETED
    assert all(e.interaction_id == iid and e.event_id for e in events)

    # Resuming after version 4: the events after it, then the end.
    resumed = [
        r.event.version
        async for r in api.stub.WatchInteraction(
            pb.WatchInteractionRequest(interaction_id=iid, after_version=4),
            metadata=api.md(),
            timeout=5,
        )
    ]
    assert resumed == [5, 6, 7]


async def test_watch_honours_the_deadline(api, service) -> None:
    iid = (await api.create(queue=pb.QueueTarget(queue_id="q"))).interaction_id
    watchers = service.app.signals.watchers
    with pytest.raises(grpc.aio.AioRpcError) as expired:
        async for _ in api.stub.WatchInteraction(
            pb.WatchInteractionRequest(interaction_id=iid), metadata=api.md(), timeout=0.5
        ):
            pass
    assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(50):
        if service.app.signals.watchers == watchers:
            break
        await asyncio.sleep(0.05)
    assert service.app.signals.watchers == watchers

    with pytest.raises(grpc.aio.AioRpcError) as beyond:
        async for _ in api.stub.WatchInteraction(
            pb.WatchInteractionRequest(interaction_id=iid, after_version=9),
            metadata=api.md(),
            timeout=5,
        ):
            pass
    assert beyond.value.code() == grpc.StatusCode.INVALID_ARGUMENT
