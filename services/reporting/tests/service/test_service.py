"""The service against the real broker and PostgreSQL: push, stats, configuration, interval
history, redelivery, rebuild equality."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from contactcenter.common.v1 import common_pb2
from contactcenter.reporting.projections.rebuild import rebuild
from contactcenter.reporting.projections.store import dump_tables
from contactcenter.reporting.v1 import reporting_pb2 as pb

pytestmark = pytest.mark.asyncio(loop_scope="session")

Q = "interactions.InteractionQueued.v1"


def queued(iid: str, queue: str = "q1", channel: str = "voice") -> dict[str, Any]:
    return {"interaction_id": iid, "queue_id": queue, "channel": channel, "reason": "initial"}


async def test_a_queued_contact_is_pushed_to_watchers(service: Any, tenant_id: str) -> None:
    md = service.md(tenant_id)
    stream = service.stub.WatchWallboard(pb.WatchWallboardRequest(include_agents=True), metadata=md)
    first = await asyncio.wait_for(stream.read(), 10)
    assert first.snapshot and not first.queues
    await service.publish(tenant_id, Q, queued("c-1"))
    update = await asyncio.wait_for(stream.read(), 20)
    assert not update.snapshot
    assert [(q.queue_id, q.waiting) for q in update.queues] == [("q1", 1)]
    stream.cancel()
    stats = await service.stub.QueueStats(pb.QueueStatsRequest(), metadata=md)
    (q1,) = stats.queues
    assert q1.waiting == 1 and q1.totals[0].offered == 1
    # Another tenant sees nothing of it.
    other = await service.stub.QueueStats(pb.QueueStatsRequest(), metadata=service.md("other"))
    assert not other.queues


async def test_configuration_and_interval_history(
    service: Any, tenant_id: str, eventually: Any
) -> None:
    md = service.md(tenant_id, role="admin")
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await service.stub.ConfigureTenantReporting(
            pb.ConfigureTenantReportingRequest(request_id="r1", time_zone="Mars/Base"), metadata=md
        )
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = rpc_status.from_call(bad.value).details  # type: ignore[arg-type]
    violation = error_details_pb2.BadRequest()
    details[0].Unpack(violation) or details[-1].Unpack(violation)
    assert "time_zone" in {v.field for v in violation.field_violations}
    await service.stub.ConfigureTenantReporting(
        pb.ConfigureTenantReportingRequest(request_id="r2", time_zone="Europe/Paris"), metadata=md
    )
    await service.stub.ConfigureQueueReporting(
        pb.ConfigureQueueReportingRequest(
            request_id="r3",
            queue_id="q1",
            service_level_variant=pb.SERVICE_LEVEL_VARIANT_ANSWERED_ONLY,
            short_abandon_threshold_s=3,
        ),
        metadata=md,
    )
    await service.publish(
        tenant_id,
        "routing.QueueConfigured.v1",
        {"queue_id": "q1", "name": "Sales", "sl_threshold_s": 30, "sl_target_percent": 90},
    )

    async def settings_applied() -> None:
        # The configuration travels through reporting's own outbox and topic: a bucket keeps
        # the thresholds in force when it was last counted in, so count after they apply.
        stats = await service.stub.QueueStats(pb.QueueStatsRequest(queue_ids=["q1"]), metadata=md)
        (q,) = stats.queues
        assert q.short_abandon_threshold_s == 3 and q.service_level_threshold_s == 30

    await eventually(settings_applied)
    base = datetime.now(UTC) - timedelta(minutes=5)
    await service.publish(tenant_id, Q, queued("a"), at=base)
    await service.publish(
        tenant_id,
        "interactions.InteractionConnected.v1",
        {"interaction_id": "a", "agent_id": "ag", "queue_wait_ms": 12_000, "first_answer": True},
        at=base + timedelta(seconds=12),
    )

    async def configured() -> Any:
        stats = await service.stub.QueueStats(pb.QueueStatsRequest(queue_ids=["q1"]), metadata=md)
        (q,) = stats.queues
        assert q.name == "Sales" and q.service_level_threshold_s == 30
        assert q.service_level_variant == pb.SERVICE_LEVEL_VARIANT_ANSWERED_ONLY
        assert q.short_abandon_threshold_s == 3
        assert q.totals[0].answered == 1 and q.totals[0].service_level_percent == 100.0
        return q

    await eventually(configured)

    async def history() -> Any:
        # IntervalHistory reads PostgreSQL, written just after the memory view
        found = await service.stub.IntervalHistory(
            pb.IntervalHistoryRequest(
                range=common_pb2.TimeRange(
                    start_time=_ts(base - timedelta(hours=1)),
                    end_time=_ts(base + timedelta(hours=1)),
                ),
                interval_minutes=30,
            ),
            metadata=md,
        )
        assert len(found.records) in (4, 5)  # dense: every 30-minute bucket of the range
        filled_records = [r for r in found.records if r.offered]
        assert len(filled_records) == 1
        filled = filled_records[0]
        assert (filled.answered, filled.answered_within_threshold) == (1, 1)
        assert filled.answer_wait_ms_total == 12_000
        assert filled.service_level_threshold_s == 30 and filled.short_abandon_threshold_s == 3

    await eventually(history)
    with pytest.raises(grpc.aio.AioRpcError) as bad_minutes:
        await service.stub.IntervalHistory(
            pb.IntervalHistoryRequest(interval_minutes=20), metadata=md
        )
    assert bad_minutes.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_redelivered_events_apply_once(service: Any, tenant_id: str, eventually: Any) -> None:
    md = service.md(tenant_id)
    first = await service.publish(tenant_id, Q, queued("d-1"))
    again = await service.publish(tenant_id, Q, queued("d-2"))
    for event_id in (first, again, first):  # the outbox delivers at least once
        await service.publish(
            tenant_id, Q, queued("d-1" if event_id == first else "d-2"), event_id=event_id
        )
    await service.publish(tenant_id, Q, queued("d-3"))

    async def three() -> None:
        (q,) = (await service.stub.QueueStats(pb.QueueStatsRequest(), metadata=md)).queues
        assert q.waiting == 3 and q.totals[0].offered == 3

    await eventually(three)
    conn = await asyncpg.connect(service.database_url)
    try:
        # The memory (and so QueueStats) runs just ahead of the commit of the same batch.
        async def three_committed() -> None:
            count = await conn.fetchval(
                "select count(*) from reporting.inbox where tenant_id = $1", tenant_id
            )
            assert count == 3

        await eventually(three_committed)
        # What is committed says the same as the memory.
        await service.app.projection.load()
        (q,) = (await service.stub.QueueStats(pb.QueueStatsRequest(), metadata=md)).queues
        assert q.totals[0].offered == 3
    finally:
        await conn.close()


async def test_a_contact_counts_right_when_the_broker_delivers_its_abandon_first(
    service: Any, tenant_id: str, eventually: Any
) -> None:
    """After the broker lost its logs, a consumer can read a contact's abandon (version 3)
    before the relay publishes its creation and queueing again: held back, it is applied
    after them, and the contact counts as offered and abandoned, not as waiting."""
    md = service.md(tenant_id)
    contact = f"interaction-{tenant_id}-o1"
    created = "interactions.InteractionCreated.v1"
    abandoned = "interactions.InteractionAbandoned.v1"
    gone = {"interaction_id": "o-1", "queue_wait_ms": 4000}
    abandon_id = await service.publish(tenant_id, abandoned, gone, stream=(contact, 3))
    # The republication: the whole stream again, in order (the abandon with its own id).
    await service.publish(tenant_id, created, {"interaction_id": "o-1"}, stream=(contact, 1))
    await service.publish(tenant_id, Q, queued("o-1"), stream=(contact, 2))
    await service.publish(tenant_id, abandoned, gone, stream=(contact, 3), event_id=abandon_id)

    async def offered_and_abandoned() -> None:
        (q,) = (await service.stub.QueueStats(pb.QueueStatsRequest(), metadata=md)).queues
        assert (q.waiting, q.totals[0].offered, q.totals[0].abandoned) == (0, 1, 1)

    await eventually(offered_and_abandoned)
    await asyncio.sleep(0.5)  # a late double count would show now
    await offered_and_abandoned()


async def test_a_database_outage_is_waited_out_and_nothing_counts_twice(
    service: Any, tenant_id: str, eventually: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit fails as in a PostgreSQL restart, with the memory already folded: the batch
    waits for the database (never dead-lettered) and counts once when it is back."""
    md = service.md(tenant_id)
    projection = service.app.projection
    real_commit, real_load = projection._commit, projection.load
    failures = 4  # the commit, and the reloads of the memory tried meanwhile

    def down() -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionRefusedError("the database system is shutting down")

    async def commit(*args: Any) -> None:
        down()
        await real_commit(*args)

    async def load() -> None:
        down()
        await real_load()

    monkeypatch.setattr(projection, "_commit", commit)
    monkeypatch.setattr(projection, "load", load)
    await service.publish(tenant_id, Q, queued("pg-1"))

    conn = await asyncpg.connect(service.database_url)

    async def counted_once() -> None:
        (q,) = (await service.stub.QueueStats(pb.QueueStatsRequest(), metadata=md)).queues
        assert (q.waiting, q.totals[0].offered) == (1, 1)
        # Committed (the memory shows a batch before its commit, the outage's too).
        count = await conn.fetchval(
            "select count(*) from reporting.inbox where tenant_id = $1", tenant_id
        )
        assert count == 1

    try:
        await eventually(counted_once, within_s=30)
        assert failures == 0
        monkeypatch.undo()
        await projection.load()  # what was committed says the same
        await counted_once()
    finally:
        await conn.close()


async def test_rebuild_gives_the_identical_read_models(
    service: Any, tenant_id: str, eventually: Any
) -> None:
    md = service.md(tenant_id)
    now = datetime.now(UTC) - timedelta(minutes=3)
    await service.publish(
        tenant_id,
        "routing.AgentConfigured.v1",
        {"agent_id": "ag", "name": "Ann", "queues": ["q1"], "channels": ["chat"], "capacity": 2},
    )
    await service.publish(
        tenant_id,
        "routing.AgentStateChanged.v1",
        {"agent_id": "ag", "state": "available", "load": 0, "capacity": 2},
        at=now,
    )
    for i in range(3):
        await service.publish(tenant_id, Q, queued(f"r{i}", channel="chat"), at=now)
    await service.publish(
        tenant_id,
        "interactions.InteractionConnected.v1",
        {"interaction_id": "r0", "agent_id": "ag", "queue_wait_ms": 4000},
        at=now + timedelta(seconds=4),
    )
    await service.publish(
        tenant_id,
        "interactions.InteractionAbandoned.v1",
        {"interaction_id": "r1", "queue_wait_ms": 2000},
        at=now + timedelta(seconds=2),
    )
    await service.publish(
        tenant_id,
        "interactions.InteractionEnded.v1",
        {"interaction_id": "r0", "agent_id": "ag", "agent_talk_ms": 60_000, "agent_hold_ms": 0},
        at=now + timedelta(seconds=64),
    )
    await service.publish(
        tenant_id,
        "interactions.WrapUpEnded.v1",
        {"interaction_id": "r0", "agent_id": "ag", "wrap_up_ms": 5000},
        at=now + timedelta(seconds=69),
    )
    await service.publish(
        tenant_id,
        "interactions.InteractionCompleted.v1",
        {"interaction_id": "r0", "wrap_up_ms": 5000},
        at=now + timedelta(seconds=69),
    )

    pool = service.app.context.pool

    async def applied() -> None:
        (q,) = (await service.stub.QueueStats(pb.QueueStatsRequest(), metadata=md)).queues
        assert (q.waiting, q.totals[0].handled, q.totals[0].abandoned) == (1, 1, 1)
        # The statistics are served from memory, ahead of the commit: the tables must hold
        # all ten events too.
        async with pool.acquire() as conn:
            stored = await conn.fetchval(
                "select count(*) from reporting.inbox where tenant_id = $1", tenant_id
            )
        assert stored == 10

    await eventually(applied)
    async with pool.acquire() as conn:
        before = await dump_tables(conn, "reporting", tenant_id)
    result = await rebuild(pool, "reporting")
    assert result.events >= 9
    async with pool.acquire() as conn:
        after = await dump_tables(conn, "reporting", tenant_id)
    assert after == before
    # The live projection reloads the swapped-in tables and goes on.
    await service.publish(tenant_id, Q, queued("r9", channel="chat"))

    async def goes_on() -> None:
        (q,) = (await service.stub.QueueStats(pb.QueueStatsRequest(), metadata=md)).queues
        assert q.waiting == 2
        assert service.app.projection.generation == result.generation

    await eventually(goes_on)
    agents = await service.stub.AgentStats(pb.AgentStatsRequest(), metadata=md)
    (ag,) = agents.agents
    assert ag.contacts_handled == 1 and ag.aht_ms == 65_000
    chans = await service.stub.ChannelStats(pb.ChannelStatsRequest(), metadata=md)
    assert [c.channel for c in chans.channels] == [common_pb2.CHANNEL_CHAT]


def _ts(moment: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


async def test_history_leaves_memory_and_late_counts_add_to_the_stored_rows(
    service: Any, tenant_id: str, eventually: Any
) -> None:
    """Memory keeps today; yesterday's buckets live in PostgreSQL, where a contact answered
    today after waiting since yesterday is added; a rebuild gives the same rows."""
    md = service.md(tenant_id)
    now = datetime.now(UTC)
    yesterday = now.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
    for iid in ("y1", "y2"):
        await service.publish(tenant_id, Q, queued(iid), at=yesterday)
    await service.publish(
        tenant_id,
        "interactions.InteractionConnected.v1",
        {"interaction_id": "y1", "agent_id": "ag", "queue_wait_ms": 3000},
        at=yesterday + timedelta(seconds=3),
    )
    await service.publish(tenant_id, Q, queued("t1"), at=now)  # a new day: yesterday leaves
    await service.publish(
        tenant_id,
        "interactions.InteractionConnected.v1",
        {"interaction_id": "y2", "agent_id": "ag", "queue_wait_ms": 60_000},
        at=now,
    )

    async def yesterdays_row() -> Any:
        found = await service.stub.IntervalHistory(
            pb.IntervalHistoryRequest(
                range=common_pb2.TimeRange(
                    start_time=_ts(yesterday), end_time=_ts(yesterday + timedelta(minutes=15))
                ),
                interval_minutes=15,
            ),
            metadata=md,
        )
        (r,) = found.records
        assert (r.offered, r.answered, r.answer_wait_ms_total) == (2, 2, 63_000)
        return r

    await eventually(yesterdays_row)
    t = service.app.projection.state.tenants[tenant_id]
    assert t.history_floor > int(yesterday.timestamp() * 1000)
    assert all(k[3] >= t.history_floor for k in t.buckets if k[2] == 15)
    (q,) = (await service.stub.QueueStats(pb.QueueStatsRequest(), metadata=md)).queues
    assert (q.totals[0].offered, q.waiting) == (1, 1)  # today: t1 only

    pool = service.app.context.pool
    async with pool.acquire() as conn:
        before = await dump_tables(conn, "reporting", tenant_id)
    await rebuild(pool, "reporting")
    async with pool.acquire() as conn:
        assert await dump_tables(conn, "reporting", tenant_id) == before
    # A reload (as after a restart) keeps today only, and the series it knows.
    await service.app.projection.load()
    t = service.app.projection.state.tenants[tenant_id]
    assert all(k[3] >= t.history_floor for k in t.buckets if k[2] == 15)
    assert ("q1", "voice") in t.series
