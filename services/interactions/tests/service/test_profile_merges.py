"""Profile merges from `cc.profiles.events.v1`: the merged profile's contacts count under the
profile it was merged into (first-contact resolution, the customer filter of ListInteractions),
an unmerge restores them, a redelivered event changes nothing, a malformed one is dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contactcenter.interactions.v1 import interactions_pb2 as pb
from contactcenter.messaging.cloudevents import decode

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROFILES = "cc.profiles.events.v1"
MERGED = "profiles.ProfileMerged.v1"
UNMERGED = "profiles.ProfileUnmerged.v1"


async def _handled_contact(api, profile_id: str) -> str:
    iid = (await api.create(customer_profile_id=profile_id, agent_id="a-1")).interaction_id
    await api.call("Connect", interaction_id=iid)
    await api.call("End", interaction_id=iid, ended_by=pb.ENDED_BY_CUSTOMER)
    await api.call("Complete", interaction_id=iid)
    return iid


async def _listed(api, profile_id: str) -> set[str]:
    found = await api.call("ListInteractions", customer_profile_id=profile_id)
    return {i.interaction_id for i in found.interactions}


async def _merge_rows(service, tenant_id: str) -> list[tuple]:
    conn = await asyncpg.connect(service.database_url)
    try:
        rows = await conn.fetch(
            "select profile_id, target_profile_id, merge_id, updated_at "
            "from interactions.profile_merges where tenant_id = $1 order by profile_id",
            tenant_id,
        )
    finally:
        await conn.close()
    return [tuple(r) for r in rows]


async def _dead_letters(bootstrap: str, tenant_id: str, within_s: float) -> list[uuid.UUID]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        topic = f"{PROFILES}.dlq"
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen: list[uuid.UUID] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s):
                while True:
                    for records in (await consumer.getmany(timeout_ms=200)).values():
                        for record in records:
                            if record.key == tenant_id.encode():
                                seen.append(decode(record.headers, record.value, key=record.key).id)
        return seen
    finally:
        await consumer.stop()


async def test_contacts_of_a_merged_profile_count_under_the_winner(
    api, publisher, eventually, service
) -> None:
    tenant = api.tenant_id
    loser, winner, older = "p-loser", "p-winner", "p-older-loser"
    lost = await _handled_contact(api, loser)
    older_contact = (await api.create(customer_profile_id=older)).interaction_id
    merge = {"profile_id": loser, "merge_id": "m-0", "source_profile_id": older}
    # `older` was merged into `loser` before; then `loser` into `winner` (which takes it along).
    await publisher.publish(PROFILES, tenant, MERGED, merge)
    merged = {
        "profile_id": winner,
        "merge_id": "m-1",
        "source_profile_id": loser,
        "redirected_profile_ids": [older],
    }
    merged_id = await publisher.publish(PROFILES, tenant, MERGED, merged)

    async def counted_under_the_winner() -> None:
        assert await _listed(api, winner) == {lost, older_contact}

    await eventually(counted_under_the_winner)
    assert await _listed(api, loser) == {lost, older_contact}  # one customer, by any of its ids
    rows = await _merge_rows(service, tenant)
    assert [(p, t) for p, t, _, _ in rows] == [(loser, winner), (older, winner)]

    # First-contact resolution: the winner's new contact repeats the loser's handled one.
    again = await api.create(customer_profile_id=winner, queue=pb.QueueTarget(queue_id="q"))
    assert (await api.get(again.interaction_id)).repeat_of_interaction_id == lost

    # Redelivery changes nothing (not even the rows' time).
    await publisher.publish(PROFILES, tenant, MERGED, merged, event_id=merged_id)
    unmerged = {
        "profile_id": winner,
        "merge_id": "m-1",
        "source_profile_id": loser,
        "redirected_profile_ids": [older],
    }
    unmerged_id = await publisher.publish(PROFILES, tenant, UNMERGED, unmerged)

    async def restored() -> None:
        assert await _listed(api, winner) == {again.interaction_id}
        assert await _listed(api, loser) == {lost, older_contact}

    await eventually(restored)
    rows_after = await _merge_rows(service, tenant)
    assert [(p, t) for p, t, _, _ in rows_after] == [(older, loser)]
    # The merge and the unmerge delivered again, then a marker: still unmerged.
    await publisher.publish(PROFILES, tenant, MERGED, merged, event_id=merged_id)
    await publisher.publish(PROFILES, tenant, UNMERGED, unmerged, event_id=unmerged_id)
    marker = {"profile_id": "p-m2", "merge_id": "m-2", "source_profile_id": "p-m1"}
    await publisher.publish(PROFILES, tenant, MERGED, marker)

    async def marker_applied() -> None:
        assert ("p-m1", "p-m2") in [(p, t) for p, t, _, _ in await _merge_rows(service, tenant)]

    await eventually(marker_applied)
    assert [r for r in await _merge_rows(service, tenant) if r[0] != "p-m1"] == rows_after
    assert await _listed(api, winner) == {again.interaction_id}
    third = await api.create(customer_profile_id=winner, queue=pb.QueueTarget(queue_id="q"))
    assert (await api.get(third.interaction_id)).repeat_of_interaction_id == ""


async def test_a_malformed_merge_goes_to_the_dlq_and_later_events_still_apply(
    api, publisher, eventually, service
) -> None:
    tenant = api.tenant_id
    bad = await publisher.publish(PROFILES, tenant, MERGED, {"profile_id": "p-x"})
    good = {"profile_id": "p-b", "merge_id": "m-9", "source_profile_id": "p-a"}
    await publisher.publish(PROFILES, tenant, MERGED, good)

    async def applied() -> None:
        assert [(p, t) for p, t, _, _ in await _merge_rows(service, tenant)] == [("p-a", "p-b")]

    await eventually(applied)
    assert await _dead_letters(service.kafka_bootstrap, tenant, within_s=4) == [bad]
