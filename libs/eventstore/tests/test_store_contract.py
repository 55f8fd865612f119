"""The one contract of the event store port, run against PostgresEventStore and
InMemoryEventStore alike (the `store` fixture is parametrised)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from contactcenter.contracts.errors import AlreadyExists, ConcurrencyConflict, ValidationFailed
from contactcenter.contracts.streams import stream_id
from contactcenter.eventstore import (
    ANY,
    NO_STREAM,
    EventStore,
    GlobalPosition,
    IdempotencyKeyReused,
)


def new_stream(tenant_id: str, category: str = "thing") -> str:
    return stream_id(category, tenant_id, uuid.uuid4().hex[:8])


async def test_append_then_read_stream(store: EventStore, tenant_id, happened, events_registry):
    sid = new_stream(tenant_id)
    cause = uuid.uuid4()
    events = [happened(tenant_id, n, causation_id=cause) for n in range(3)]

    result = await store.append(
        sid, events, expected_version=NO_STREAM, metadata={"traceparent": "00-abc-def-01"}
    )

    assert (result.first_version, result.last_version) == (1, 3)
    assert result.event_ids == tuple(e.event_id for e in events)
    assert not result.replayed and result.result is None
    assert await store.stream_version(sid) == 3
    recorded = await store.read_stream(sid)
    assert [r.version for r in recorded] == [1, 2, 3]
    for r, e in zip(recorded, events, strict=True):
        assert r.stream_id == sid
        assert r.event_id == e.event_id
        assert r.event_type == "testing.ThingHappened.v1"
        assert r.tenant_id == tenant_id
        assert r.occurred_at == e.occurred_at
        assert r.correlation_id == e.correlation_id
        assert r.causation_id == cause
        assert r.data == e.payload()
        assert r.metadata == {"traceparent": "00-abc-def-01"}
        assert r.recorded_at.tzinfo is not None
        assert r.decode(events_registry) == e
    assert [r.version for r in await store.read_stream(sid, from_version=2)] == [2, 3]
    assert await store.read_stream(sid, from_version=4) == []


async def test_unknown_stream_is_empty(store: EventStore, tenant_id):
    sid = new_stream(tenant_id)
    assert await store.stream_version(sid) == 0
    assert await store.read_stream(sid) == []


async def test_expected_version_is_the_version_last_seen(store: EventStore, tenant_id, happened):
    sid = new_stream(tenant_id)
    first = await store.append(sid, [happened(tenant_id, 1)], expected_version=0)
    second = await store.append(
        sid, [happened(tenant_id, 2), happened(tenant_id, 3)], expected_version=first.last_version
    )
    assert (second.first_version, second.last_version) == (2, 3)
    third = await store.append(sid, [happened(tenant_id, 4)], expected_version=ANY)
    assert third.first_version == 4
    assert [r.data["n"] for r in await store.read_stream(sid)] == [1, 2, 3, 4]


@pytest.mark.parametrize("expected", [0, 1, 3])
async def test_concurrency_conflict_is_typed_and_stores_nothing(
    store: EventStore, tenant_id, happened, expected
):
    sid = new_stream(tenant_id)
    await store.append(sid, [happened(tenant_id, 1), happened(tenant_id, 2)], expected_version=0)
    before = await store.read_all(GlobalPosition.START)
    late = happened(tenant_id, 99)

    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append(sid, [late], expected_version=expected, request_id="r-conflict")

    assert raised.value.stream_id == sid
    assert raised.value.expected_version == expected
    assert raised.value.actual_version == 2
    assert await store.stream_version(sid) == 2
    assert await store.read_all(GlobalPosition.START) == before
    # The failed append recorded no request: the command can be retried on the new version.
    assert await store.lookup_request(tenant_id, "r-conflict") is None
    retried = await store.append(sid, [late], expected_version=2, request_id="r-conflict")
    assert retried.first_version == 3 and not retried.replayed


async def test_new_stream_with_expected_version_conflicts(store: EventStore, tenant_id, happened):
    sid = new_stream(tenant_id)
    with pytest.raises(ConcurrencyConflict) as raised:
        await store.append(sid, [happened(tenant_id)], expected_version=1)
    assert raised.value.actual_version == 0
    assert await store.read_stream(sid) == []


async def test_concurrent_appends_on_one_version_one_wins(store: EventStore, tenant_id, happened):
    sid = new_stream(tenant_id)
    await store.append(sid, [happened(tenant_id, 0)], expected_version=0)

    outcomes = await asyncio.gather(
        *(store.append(sid, [happened(tenant_id, n)], expected_version=1) for n in range(1, 11)),
        return_exceptions=True,
    )

    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(won) == 1
    assert all(isinstance(o, ConcurrencyConflict) for o in lost)
    assert await store.stream_version(sid) == 2


async def test_any_appends_all_land_in_order(store: EventStore, tenant_id, happened):
    sid = new_stream(tenant_id)
    results = await asyncio.gather(
        *(store.append(sid, [happened(tenant_id, n)], expected_version=ANY) for n in range(10))
    )
    assert sorted(r.first_version for r in results) == list(range(1, 11))
    assert [r.version for r in await store.read_stream(sid)] == list(range(1, 11))


async def test_idempotent_request_returns_first_result_and_appends_nothing(
    store: EventStore, tenant_id, happened
):
    sid = new_stream(tenant_id)
    first = await store.append(
        sid,
        [happened(tenant_id, 1)],
        expected_version=0,
        request_id="req-1",
        result={"interaction_id": "i-1", "n": [1, 2]},
    )
    assert not first.replayed
    assert first.result == {"interaction_id": "i-1", "n": [1, 2]}

    # A retry regenerates ids and timestamps (and may bring another result): still the same.
    again = await store.append(
        sid,
        [happened(tenant_id, 1)],
        expected_version=0,
        request_id="req-1",
        result={"interaction_id": "i-2"},
    )

    assert again.replayed
    assert again.result == first.result
    assert (again.stream_id, again.first_version, again.last_version) == (sid, 1, 1)
    assert again.event_ids == first.event_ids
    assert await store.stream_version(sid) == 1
    looked_up = await store.lookup_request(tenant_id, "req-1")
    assert looked_up == again
    assert await store.lookup_request(tenant_id, "req-unknown") is None


async def test_request_ids_are_per_tenant(store: EventStore, happened):
    a, b = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    ra = await store.append(new_stream(a), [happened(a)], expected_version=0, request_id="same")
    rb = await store.append(new_stream(b), [happened(b)], expected_version=0, request_id="same")
    assert not ra.replayed and not rb.replayed
    assert await store.lookup_request(b, "same") == rb.__class__(
        stream_id=rb.stream_id,
        first_version=1,
        last_version=1,
        event_ids=rb.event_ids,
        result=None,
        replayed=True,
    )


@pytest.mark.parametrize("expected_version", [0, ANY])
async def test_concurrent_duplicates_one_wins_others_get_its_result(
    store: EventStore, tenant_id, happened, expected_version
):
    sid = new_stream(tenant_id)
    outcomes = await asyncio.gather(
        *(
            store.append(
                sid,
                [happened(tenant_id, 7), happened(tenant_id, 8)],
                expected_version=expected_version,
                request_id="dup",
                result={"attempt": attempt},
            )
            for attempt in range(10)
        )
    )
    winners = [o for o in outcomes if not o.replayed]
    assert len(winners) == 1
    (winner,) = winners
    for o in outcomes:
        assert (o.first_version, o.last_version, o.event_ids) == (1, 2, winner.event_ids)
        assert o.result == winner.result
    assert [r.event_id for r in await store.read_stream(sid)] == list(winner.event_ids)


async def test_request_id_reused_for_another_command_is_rejected(
    store: EventStore, tenant_id, happened, renamed
):
    sid = new_stream(tenant_id)
    await store.append(sid, [happened(tenant_id, 1)], expected_version=0, request_id="r")

    with pytest.raises(IdempotencyKeyReused) as raised:
        await store.append(sid, [renamed(tenant_id, "x")], expected_version=1, request_id="r")
    assert isinstance(raised.value, ValidationFailed)
    assert raised.value.request_id == "r"
    assert raised.value.field_violations[0][0] == "request_id"

    with pytest.raises(IdempotencyKeyReused):  # same events, another stream
        await store.append(
            new_stream(tenant_id), [happened(tenant_id, 1)], expected_version=0, request_id="r"
        )
    assert await store.stream_version(sid) == 1


async def test_command_identifies_the_request_when_given(store: EventStore, tenant_id, happened):
    sid = new_stream(tenant_id)
    command = {"type": "Rename", "name": "a"}
    await store.append(
        sid, [happened(tenant_id, 1)], expected_version=0, request_id="c", command=command
    )
    # Events decided differently by a retry (state moved on) do not matter, the command does.
    replay = await store.append(
        sid, [happened(tenant_id, 2)], expected_version=1, request_id="c", command=command
    )
    assert replay.replayed
    assert (await store.lookup_request(tenant_id, "c", command=command)) == replay
    with pytest.raises(IdempotencyKeyReused):
        await store.lookup_request(tenant_id, "c", command={"type": "Rename", "name": "b"})
    with pytest.raises(IdempotencyKeyReused):
        await store.append(
            sid, [happened(tenant_id, 1)], expected_version=1, request_id="c", command={"x": 1}
        )


async def test_read_all_orders_globally_and_pages(store: EventStore, happened):
    tenants = [f"t-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    streams = [new_stream(t) for t in tenants for _ in range(2)]
    appended = []
    for round_ in range(3):
        for sid in streams:
            tenant = sid.split("/")[1]
            events = [happened(tenant, round_), happened(tenant, round_)]
            await store.append(sid, events, expected_version=ANY)
            appended += [e.event_id for e in events]

    everything = await store.read_all(GlobalPosition.START, limit=1000)
    assert [r.event_id for r in everything] == appended
    positions = [r.global_position for r in everything]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    for sid in streams:
        assert [r.version for r in everything if r.stream_id == sid] == list(range(1, 7))

    paged, checkpoint = [], GlobalPosition.START
    while page := await store.read_all(checkpoint, limit=5):
        assert len(page) <= 5
        paged += page
        checkpoint = page[-1].global_position
    assert [r.event_id for r in paged] == appended
    assert await store.read_all(checkpoint) == []
    middle = everything[9].global_position
    assert [r.event_id for r in await store.read_all(middle, limit=3)] == appended[10:13]
    with pytest.raises(ValueError):
        await store.read_all(GlobalPosition.START, limit=0)


async def test_snapshots(store: EventStore, tenant_id):
    sid = new_stream(tenant_id)
    assert await store.load_snapshot(sid) is None

    await store.save_snapshot(sid, 5, {"count": 5, "names": ["a"]}, schema_version=1)
    snap = await store.load_snapshot(sid)
    assert snap is not None
    assert (snap.stream_id, snap.version, snap.schema_version) == (sid, 5, 1)
    assert snap.state == {"count": 5, "names": ["a"]}

    await store.save_snapshot(sid, 3, {"count": 3}, schema_version=1)  # older: ignored
    assert (await store.load_snapshot(sid)).version == 5
    await store.save_snapshot(sid, 8, {"count": 8}, schema_version=1)
    assert (await store.load_snapshot(sid)).state == {"count": 8}
    await store.save_snapshot(sid, 2, {"v2": True}, schema_version=2)  # a new state shape wins
    snap = await store.load_snapshot(sid)
    assert (snap.version, snap.schema_version, snap.state) == (2, 2, {"v2": True})


async def test_mixed_tenants_in_one_append_are_rejected(store: EventStore, tenant_id, happened):
    sid = new_stream(tenant_id)
    with pytest.raises(ValidationFailed) as raised:
        await store.append(
            sid, [happened(tenant_id), happened("another-tenant")], expected_version=0
        )
    assert raised.value.field_violations[0][0] == "events.tenant_id"
    assert await store.read_stream(sid) == []


async def test_stream_of_another_tenant_is_rejected(store: EventStore, tenant_id, happened):
    other = new_stream("another-tenant")
    with pytest.raises(ValidationFailed):
        await store.append(other, [happened(tenant_id)], expected_version=0)
    with pytest.raises(ValidationFailed):
        await store.append("not-a-stream-id", [happened(tenant_id)], expected_version=0)
    assert await store.read_stream(other) == []


async def test_empty_append_and_bad_expected_version_are_errors(store, tenant_id, happened):
    sid = new_stream(tenant_id)
    with pytest.raises(ValueError):
        await store.append(sid, [], expected_version=0)
    with pytest.raises(ValueError):
        await store.append(sid, [happened(tenant_id)], expected_version=-5)


async def test_duplicate_event_id_is_already_exists_and_stores_nothing(
    store: EventStore, tenant_id, happened
):
    event = happened(tenant_id, 1)
    await store.append(new_stream(tenant_id), [event], expected_version=0)
    other = new_stream(tenant_id)
    with pytest.raises(AlreadyExists):
        await store.append(other, [happened(tenant_id, 2), event], expected_version=0)
    twice = happened(tenant_id, 3)
    with pytest.raises(AlreadyExists):
        await store.append(other, [twice, twice], expected_version=0)
    assert await store.read_stream(other) == []


async def test_listener_wakes_on_append(store: EventStore, tenant_id, happened):
    async with store.listener() as appends:
        assert not await appends.wait(0.05)
        await store.append(new_stream(tenant_id), [happened(tenant_id)], expected_version=0)
        assert await appends.wait(5.0)
        assert not await appends.wait(0.05)  # one wake-up per burst, then quiet again


async def test_list_streams_by_prefix(store: EventStore, tenant_id, happened):
    category = f"listing{uuid.uuid4().hex}"
    prefix = f"{category}/{tenant_id}/"
    for name in ("b", "a", "c"):
        await store.append(f"{prefix}{name}", [happened(tenant_id, 1)], expected_version=NO_STREAM)
    await store.append(f"{prefix}a", [happened(tenant_id, 2)], expected_version=1)
    await store.append(new_stream(tenant_id), [happened(tenant_id, 1)], expected_version=NO_STREAM)

    assert await store.list_streams(f"{category}/") == [f"{prefix}a", f"{prefix}b", f"{prefix}c"]
    assert await store.list_streams(f"{prefix}b") == [f"{prefix}b"]
    assert await store.list_streams(f"nothing{uuid.uuid4().hex}/") == []


async def test_head_is_where_a_reader_of_what_comes_next_starts(
    store: EventStore, tenant_id, happened
):
    await store.append(new_stream(tenant_id), [happened(tenant_id, 1)], expected_version=NO_STREAM)
    head = await store.head()
    assert head != GlobalPosition.START
    assert await store.read_all(head) == []
    later = happened(tenant_id, 2)
    await store.append(new_stream(tenant_id), [later], expected_version=NO_STREAM)
    assert [r.event_id for r in await store.read_all(head)] == [later.event_id]
    assert await store.head() > head


async def test_nothing_is_held_back_once_every_writer_committed(
    store: EventStore, tenant_id, happened
):
    await store.append(new_stream(tenant_id), [happened(tenant_id, 1)], expected_version=NO_STREAM)
    assert not await store.held_back(GlobalPosition.START)
    assert not await store.held_back(await store.head())
