"""Right to be forgotten: after EraseProfile, nothing readable of the customer remains in any
table of the service or in the profile events it published."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contactcenter.profiles.v1 import profiles_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOPIC = "cc.profiles.events.v1"


async def _tenant_records(bootstrap: str, tenant_id: str) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or []]
        if not partitions:
            await consumer.topics()
            partitions = [
                TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or []
            ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        records = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(p >= end[tp] for p, tp in zip(positions, partitions, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=200)
            records += [r for rs in batch.values() for r in rs if r.key == tenant_id.encode()]
        return records
    finally:
        await consumer.stop()


async def _readable_rows(api: Any, needles: list[str]) -> dict[str, int]:
    """Rows of every table of the schema whose text form contains a needle."""
    tables = await api.sql(
        "select table_name from information_schema.tables "
        "where table_schema = 'profiles' and table_type = 'BASE TABLE'"
    )
    assert len(tables) >= 10
    patterns = [f"%{n.lower()}%" for n in needles]
    found = {}
    for t in tables:
        name = t["table_name"]
        count = await api.sql(
            f'select count(*) from profiles."{name}" t where lower(t::text) like any($1)',
            patterns,
        )
        if count[0][0]:
            found[name] = count[0][0]
    return found


async def test_erasure_leaves_nothing_readable(api: Any, publisher: Any, eventually: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    name, email, phone = f"Zelda Erasmus{tag}", f"zelda.{tag}@example.com", "+41446681899"
    city = f"Springfield{tag}"
    pid = (await api.resolve(pb.IDENTITY_KIND_EMAIL, email.upper(), display_name=name)).profile_id
    await api.call("UpdateProfile", profile_id=pid, attributes={"city": city})
    merged = (await api.resolve(pb.IDENTITY_KIND_PHONE, phone)).profile_id
    await api.call("MergeProfiles", target_profile_id=pid, source_profile_id=merged)
    await publisher.interaction(
        api.tenant_id,
        "InteractionCreated",
        f"i-{tag}",
        channel="voice",
        direction="inbound",
        customer_profile_id=merged,
    )

    async def in_history() -> None:
        page = await api.call("History", profile_id=pid)
        assert [e.interaction_id for e in page.entries] == [f"i-{tag}"]

    await eventually(in_history)
    needles = [name, email, phone, phone.lstrip("+"), city]
    # Before erasure: readable in the read models (that is their job), never in the events.
    assert "events" not in await _readable_rows(api, needles)
    assert set(await _readable_rows(api, needles)) == {"profile_view"}

    stored = await api.sql(
        "select count(*) from profiles.events where tenant_id = $1", api.tenant_id
    )
    bootstrap = api.service.kafka_bootstrap

    async def all_published() -> None:
        assert len(await _tenant_records(bootstrap, api.tenant_id)) == stored[0][0]

    await eventually(all_published)

    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await api.call("EraseProfile", profile_id=merged, roles=["supervisor"])
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    erased = await api.call(
        "EraseProfile", profile_id=merged, roles=["admin"], reason="GDPR art. 17, ticket 1"
    )
    assert set(erased.erased_profile_ids) == {pid, merged}

    assert await _readable_rows(api, needles) == {}
    profile = await api.get(pid)
    assert profile.status == pb.PROFILE_STATUS_ERASED
    assert (profile.display_name, list(profile.identities), dict(profile.attributes)) == (
        "",
        [],
        {},
    )
    assert (await api.call("History", profile_id=pid)).entries == []
    keys = await api.sql(
        "select count(*) from profiles.profile_keys where tenant_id = $1 and profile_id = any($2)",
        api.tenant_id,
        [pid, merged],
    )
    assert keys[0][0] == 0

    async def erasure_published() -> list[Any]:
        records = await _tenant_records(bootstrap, api.tenant_id)
        types = [dict(r.headers)["ce_type"].decode() for r in records]
        assert types.count("profiles.ProfileErased.v1") == 2
        return records

    records = await eventually(erasure_published)
    for record in records:
        text = (record.value + b"".join(v for _, v in record.headers)).decode().lower()
        assert not any(n.lower() in text for n in needles), record

    # The customer coming back is a new relationship: a new profile.
    again = await api.resolve(pb.IDENTITY_KIND_EMAIL, email)
    assert again.created and again.profile_id not in (pid, merged)
    # A late interaction event of the erased profile is not linked to it again.
    await publisher.interaction(
        api.tenant_id,
        "InteractionProfileLinked",
        f"i-late-{tag}",
        profile_id=pid,
        reason="resolved",
    )
    await asyncio.sleep(0.5)
    assert await _readable_rows(api, [f"i-late-{tag}"]) in ({}, {"history": 1})
    linked = await api.sql(
        "select profile_id from profiles.history where interaction_id = $1", f"i-late-{tag}"
    )
    assert all(r["profile_id"] is None for r in linked)
