"""ListInteractions (filters, pagination), first-contact resolution, rebuilding the list."""

from __future__ import annotations

import grpc
import pytest

from contactcenter.common.v1 import common_pb2
from contactcenter.interactions.projections import InteractionListProjection
from contactcenter.interactions.v1 import interactions_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _ids(api, **filters) -> list[str]:
    response = await api.call("ListInteractions", **filters)
    return [i.interaction_id for i in response.interactions]


async def test_filters_and_pages(api, eventually, errors) -> None:
    voice = common_pb2.CHANNEL_VOICE
    chat = common_pb2.CHANNEL_CHAT
    made: list[str] = []
    for channel, queue, profile in [
        (voice, "q-a", "p-1"),
        (chat, "q-a", "p-2"),
        (voice, "q-b", "p-1"),
        (chat, "q-b", None),
        (voice, "q-a", None),
        (voice, "q-b", "p-3"),
        (chat, "q-a", "p-1"),
    ]:
        created = await api.create(
            channel=channel,
            customer_profile_id=profile or "",
            queue=pb.QueueTarget(queue_id=queue),
        )
        made.append(created.interaction_id)
    third = made[2]
    await api.call("Abandon", interaction_id=made[0])
    await api.call("Enqueue", interaction_id=third, queue_id="q-b", priority=3)
    created_third = (await api.get(third)).create_time

    newest_first = list(reversed(made))

    async def all_listed() -> None:
        listed = (await api.call("ListInteractions")).interactions
        assert [i.interaction_id for i in listed] == newest_first
        # ... and the later commands too (the list is eventually consistent).
        assert listed[-1].state == pb.INTERACTION_STATE_ABANDONED
        assert listed[-3].queue_id == "q-b" and listed[-3].priority == 3

    await eventually(all_listed)

    assert await _ids(api, states=[pb.INTERACTION_STATE_ABANDONED]) == [made[0]]
    assert await _ids(api, channels=[chat]) == [made[6], made[3], made[1]]
    assert await _ids(api, queue_id="q-b") == [made[5], made[3], made[2]]
    assert await _ids(api, customer_profile_id="p-1") == [made[6], made[2], made[0]]
    assert await _ids(api, queue_id="q-a", channels=[voice]) == [made[4], made[0]]
    since_third = common_pb2.TimeRange(start_time=created_third)
    assert await _ids(api, create_time=since_third) == newest_first[:5]
    before_third = common_pb2.TimeRange(end_time=created_third)
    assert await _ids(api, create_time=before_third) == [made[1], made[0]]

    # Pages of 3: 3 + 3 + 1, the same order, no repeats.
    paged: list[str] = []
    tokens: list[str] = []
    while True:
        response = await api.call(
            "ListInteractions",
            page=common_pb2.PageRequest(page_size=3, page_token=tokens[-1] if tokens else ""),
        )
        paged += [i.interaction_id for i in response.interactions]
        if not response.page.next_page_token:
            break
        tokens.append(response.page.next_page_token)
    assert paged == newest_first and len(tokens) == 2

    with pytest.raises(grpc.aio.AioRpcError) as other_filters:
        await api.call(
            "ListInteractions",
            queue_id="q-a",
            page=common_pb2.PageRequest(page_size=3, page_token=tokens[0]),
        )
    assert other_filters.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page.page_token" in errors.violations(other_filters.value)

    basic = (await api.call("ListInteractions", queue_id="q-b")).interactions[0]
    assert basic.queue_id == "q-b" and basic.state == pb.INTERACTION_STATE_QUEUED
    assert basic.HasField("create_time") and basic.version == 2


async def test_agent_filter_keeps_the_last_agent(api, eventually) -> None:
    iid = (await api.create(agent_id="a-1", channel=common_pb2.CHANNEL_CHAT)).interaction_id
    await api.call("Connect", interaction_id=iid)
    await api.call("Transfer", interaction_id=iid, mode=pb.TRANSFER_MODE_BLIND, to_queue_id="q-x")

    async def listed() -> None:
        found = await api.call("ListInteractions", agent_id="a-1")
        assert [i.interaction_id for i in found.interactions] == [iid]
        assert found.interactions[0].state == pb.INTERACTION_STATE_QUEUED

    await eventually(listed)
    full = await api.call("ListInteractions", agent_id="a-1", view=pb.INTERACTION_VIEW_FULL)
    assert full.interactions[0].transfer_count == 1


async def test_a_contact_soon_after_a_handled_one_is_a_repeat(api, eventually) -> None:
    first = (await api.create(customer_profile_id="p-fcr", agent_id="a-1")).interaction_id
    await api.call("Connect", interaction_id=first)
    await api.call("End", interaction_id=first, ended_by=pb.ENDED_BY_CUSTOMER)
    await api.call("Complete", interaction_id=first)
    abandoned = (await api.create(customer_profile_id="p-fcr")).interaction_id
    await api.call("Abandon", interaction_id=abandoned)

    async def handled_in_list() -> None:
        found = await api.call("ListInteractions", customer_profile_id="p-fcr")
        states = {i.interaction_id: i.state for i in found.interactions}
        assert states == {
            first: pb.INTERACTION_STATE_COMPLETED,
            abandoned: pb.INTERACTION_STATE_ABANDONED,
        }

    await eventually(handled_in_list)
    again = await api.create(customer_profile_id="p-fcr", queue=pb.QueueTarget(queue_id="q"))
    # Marked in the same append as the creation; the abandoned contact does not count.
    assert again.version == 3
    got = await api.get(again.interaction_id)
    assert got.repeat_of_interaction_id == first
    other = await api.create(customer_profile_id="p-other")
    assert (await api.get(other.interaction_id)).repeat_of_interaction_id == ""


async def test_rebuilding_the_list_from_zero_gives_the_same_rows(service, api, eventually) -> None:
    iid = (await api.create(agent_id="a-9")).interaction_id
    await api.call("Connect", interaction_id=iid)

    async def listed() -> None:
        found = await api.call("ListInteractions")
        assert [i.state for i in found.interactions] == [pb.INTERACTION_STATE_CONNECTED]

    await eventually(listed)
    app = service.app
    assert app.context is not None
    sql = (
        "select tenant_id, interaction_id, version, state, channel, queue_id, agent_id, "
        "customer_profile_id, intent, handled, created_at, updated_at, view::text "
        "from interactions.interaction_list order by tenant_id, interaction_id"
    )
    async with app.context.pool.acquire() as conn:
        before = [tuple(r) for r in await conn.fetch(sql)]
    rebuild = InteractionListProjection(app.context.pool, app.context.store, app.context.schema)
    await rebuild.reset()
    applied = await rebuild.catch_up()
    async with app.context.pool.acquire() as conn:
        after = [tuple(r) for r in await conn.fetch(sql)]
    assert applied > 0 and len(after) >= 1
    # Rows written meanwhile by other tests' tenants aside, everything is identical.
    assert set(before) <= set(after)
