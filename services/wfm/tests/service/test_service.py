"""The WFM service in-process against the real PostgreSQL and broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.events import registry
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.testing.fixtures import TestInfra as Infra
from contactcenter.testing.services import service_test_settings, serving, temporary_database
from contactcenter.wfm.config import WfmSettings
from contactcenter.wfm.domain.events import AdherenceExceptionRaised, adherence_stream
from contactcenter.wfm.main import WfmApp, create_app
from contactcenter.wfm.v1 import wfm_pb2 as pb
from contactcenter.wfm.v1 import wfm_pb2_grpc as pb_grpc

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Service:
    def __init__(self, app: WfmApp, channel: grpc.aio.Channel, bootstrap: str) -> None:
        self.app = app
        self.stub = pb_grpc.WfmServiceStub(channel)
        self.bootstrap = bootstrap

    def md(self, tenant: str, roles: tuple[Role, ...] = (Role.SUPERVISOR,), sub: str = "sup"):  # type: ignore[no-untyped-def]
        return metadata_for(issue_token(tenant, roles, sub))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(infra: Infra) -> AsyncIterator[Service]:
    async with temporary_database(infra.database_url, "test_wfm") as url:
        settings = WfmSettings(
            **service_test_settings(url, infra.kafka_bootstrap),
            adherence_threshold_s=1.0,
            adherence_check_interval_s=0.3,
            reporting_address="127.0.0.1:1",
        )
        app = create_app(settings)
        async with serving(app) as channel:
            yield Service(app, channel, infra.kafka_bootstrap)


def _violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    for packed in status.details:
        if packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            packed.Unpack(bad)
            return {v.field: v.description for v in bad.field_violations}
    raise AssertionError(f"no BadRequest in {error}")


def _ts(value: datetime) -> Any:
    from google.protobuf.timestamp_pb2 import Timestamp

    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


async def test_required_staff_and_its_bad_input(service: Service, tenant_id: str) -> None:
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    request = pb.RequiredStaffRequest(
        interval_minutes=30,
        queues=[
            pb.QueueWorkload(
                queue_id="sales",
                model=pb.STAFFING_MODEL_ERLANG_A,
                target=pb.StaffingTarget(
                    service_level=0.8, service_level_seconds=20, patience_seconds=120, shrinkage=0.3
                ),
                intervals=[
                    pb.WorkloadInterval(interval_start=_ts(start), volume=100, aht_seconds=180)
                ],
            ),
            pb.QueueWorkload(
                queue_id="chat",
                model=pb.STAFFING_MODEL_CHAT,
                target=pb.StaffingTarget(
                    service_level=0.8, service_level_seconds=60, concurrency=3
                ),
                intervals=[
                    pb.WorkloadInterval(interval_start=_ts(start), volume=150, aht_seconds=600)
                ],
            ),
        ],
    )
    response = await service.stub.RequiredStaff(request, metadata=service.md(tenant_id))
    voice = response.queues[0].intervals[0]
    assert 9 <= voice.agents <= 14 and voice.service_level >= 0.8
    assert voice.scheduled_agents == -(-voice.agents * 10 // 7)
    assert 0 < voice.abandon_rate < 0.1
    assert response.queues[1].intervals[0].agents >= 17

    request.queues[0].target.service_level = 1.5
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await service.stub.RequiredStaff(request, metadata=service.md(tenant_id))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "queues[0].target.service_level" in _violations(error.value)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await service.stub.RequiredStaff(
            request, metadata=service.md(tenant_id, (Role.AGENT,), "a1")
        )
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_forecast_from_inline_history(service: Service, tenant_id: str) -> None:
    start = datetime(2026, 2, 2, tzinfo=UTC)
    history = [
        pb.HistoryPoint(
            queue_id="q",
            channel=common_pb2.CHANNEL_VOICE,
            interval_start=_ts(start + timedelta(minutes=30 * i)),
            offered=10 + (i % 48),
            handled=10,
            handle_time_ms_total=3_000_000,
        )
        for i in range(7 * 48)
    ]
    response = await service.stub.Forecast(
        pb.ForecastRequest(
            queue_ids=["q"],
            interval_minutes=30,
            history=history,
            horizon_start=_ts(start + timedelta(days=7)),
            horizon_days=1,
        ),
        metadata=service.md(tenant_id),
    )
    assert len(response.intervals) == 48
    assert [round(p.volume) for p in response.intervals[:3]] == [10, 11, 12]
    assert response.intervals[0].aht_seconds == pytest.approx(300)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await service.stub.Forecast(
            pb.ForecastRequest(queue_ids=["q"], interval_minutes=20, horizon_days=1),
            metadata=service.md(tenant_id),
        )
    assert {"interval_minutes", "horizon_start", "history_range"} <= set(_violations(error.value))


def _problem_now(now: datetime, agents: list[str], schedule_id: str) -> pb.GenerateScheduleRequest:
    base = (now - timedelta(minutes=60)).replace(second=0, microsecond=0)
    base -= timedelta(minutes=base.minute % 30)
    minute = base.hour * 60 + base.minute
    return pb.GenerateScheduleRequest(
        request_id=str(uuid.uuid4()),
        schedule_id=schedule_id,
        week_start=base.date().isoformat(),
        time_zone="UTC",
        interval_minutes=30,
        templates=[pb.ShiftTemplate(template_id="day", length_minutes=480, days_per_week=7)],
        rules=[
            pb.WorkRules(rules_id="r", earliest_start_minute=minute, latest_start_minute=minute)
        ],
        agents=[
            pb.AgentSpec(agent_id=a, skills=["sales"], time_zone="UTC", rules_id="r")
            for a in agents
        ],
        requirements=[
            pb.Requirement(queue_id="sales", interval_start=_ts(base), agents=len(agents))
        ],
        time_limit_seconds=5,
    )


async def test_schedules_time_off_and_adherence(service: Service, tenant_id: str) -> None:
    md = service.md(tenant_id)
    now = datetime.now(UTC)
    request = _problem_now(now, ["a1", "a2"], "week-1")
    tomorrow = (datetime.fromisoformat(request.week_start) + timedelta(days=1)).date().isoformat()

    off = pb.RequestTimeOffRequest(
        request_id=str(uuid.uuid4()), agent_id="a2", first_date=tomorrow, last_date=tomorrow
    )
    first = await service.stub.RequestTimeOff(off, metadata=md)
    again = await service.stub.RequestTimeOff(off, metadata=md)
    assert first.time_off_id == again.time_off_id and first.status == "pending"
    # Pending time off removes no availability; a supervisor approves it.
    approve = pb.ApproveTimeOffRequest(
        request_id=str(uuid.uuid4()), time_off_id=first.time_off_id, note="ok"
    )
    approved = await service.stub.ApproveTimeOff(approve, metadata=md)
    assert approved.time_off.status == pb.TIME_OFF_STATUS_APPROVED
    assert (await service.stub.ApproveTimeOff(approve, metadata=md)) == approved
    with pytest.raises(grpc.aio.AioRpcError) as error:
        other = pb.RequestTimeOffRequest(
            request_id=str(uuid.uuid4()), agent_id="a2", first_date=tomorrow, last_date=tomorrow
        )
        await service.stub.RequestTimeOff(
            other, metadata=service.md(tenant_id, (Role.AGENT,), "a1")
        )
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED

    generated = await service.stub.GenerateSchedule(request, metadata=md)
    assert generated.summary.status == "draft"
    days = {(s.agent_id, s.local_date) for s in generated.shifts}
    assert ("a2", tomorrow) not in days and ("a1", tomorrow) in days
    replay = await service.stub.GenerateSchedule(request, metadata=md)
    assert replay.summary.shifts == generated.summary.shifts
    assert (
        await service.app.context.store.stream_version(  # type: ignore[union-attr]
            f"wfm_schedule/{tenant_id}/week-1"
        )
        == 1
    )

    # Routing says a1 is working and a2 went away during scheduled work.
    producer = AIOKafkaProducer(bootstrap_servers=service.bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for agent, state, at in (
            ("a1", "available", now - timedelta(minutes=20)),
            ("a2", "away", now - timedelta(minutes=10)),
        ):
            event_id = uuid.uuid4()
            envelope = EventEnvelope(
                id=event_id,
                type="routing.AgentStateChanged.v1",
                source="/contactcenter/routing",
                subject=agent,
                time=at,
                tenant_id=tenant_id,
                data={
                    "event_id": str(event_id),
                    "tenant_id": tenant_id,
                    "occurred_at": at.isoformat(),
                    "agent_id": agent,
                    "state": state,
                    "previous_state": "offline",
                    "presence": state,
                    "load": 0,
                    "capacity": 1,
                    "future_field": 1,
                },
            )
            record = encode(envelope)
            await producer.send_and_wait(
                "cc.routing.events.v1", value=record.value, key=record.key, headers=record.headers
            )
    finally:
        await producer.stop()

    # Both states are recorded before the schedule is published: the live check compares
    # the schedule with what WFM knows, and an agent it knows nothing of counts as offline.
    assert service.app.application is not None
    deadline = time.monotonic() + 45
    while True:
        known = await service.app.application.state_changes(
            tenant_id, now - timedelta(hours=1), now + timedelta(minutes=1), ["a1", "a2"]
        )
        if len(known) == 2 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert len(known) == 2, known

    published = await service.stub.PublishSchedule(
        pb.PublishScheduleRequest(request_id=str(uuid.uuid4()), schedule_id="week-1"), metadata=md
    )
    assert published.summary.status == "published"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await service.stub.PublishSchedule(
            pb.PublishScheduleRequest(request_id=str(uuid.uuid4()), schedule_id="week-1"),
            metadata=md,
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Another tenant sees nothing of it.
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await service.stub.PublishSchedule(
            pb.PublishScheduleRequest(request_id=str(uuid.uuid4()), schedule_id="week-1"),
            metadata=service.md(f"{tenant_id}-other"),
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND

    # Approving time off over the published week names a1's affected shift.
    a1_off = await service.stub.RequestTimeOff(
        pb.RequestTimeOffRequest(
            request_id=str(uuid.uuid4()), agent_id="a1", first_date=tomorrow, last_date=tomorrow
        ),
        metadata=service.md(tenant_id, (Role.AGENT,), "a1"),
    )
    decided = await service.stub.ApproveTimeOff(
        pb.ApproveTimeOffRequest(request_id=str(uuid.uuid4()), time_off_id=a1_off.time_off_id),
        metadata=md,
    )
    (affected,) = decided.time_off.affected
    assert affected.schedule_id == "week-1"
    assert [(s.agent_id, s.local_date) for s in affected.shifts] == [("a1", tomorrow)]
    stored = await service.app.context.store.read_stream(  # type: ignore[union-attr]
        f"wfm_time_off_request/{tenant_id}/{a1_off.time_off_id}"
    )
    assert [r.event_type for r in stored] == [
        "wfm.TimeOffRequested.v1",
        "wfm.TimeOffApproved.v1",
        "wfm.PublishedShiftsAffected.v1",
    ]

    store = service.app.context.store  # type: ignore[union-attr]
    deadline = time.monotonic() + 45
    while True:
        recorded = await store.read_stream(adherence_stream(tenant_id, "a2"))
        if recorded or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert len(recorded) == 1
    exception = recorded[0].decode(registry)
    assert isinstance(exception, AdherenceExceptionRaised)
    assert (exception.scheduled, exception.state) == ("work", "away")
    assert await store.read_stream(adherence_stream(tenant_id, "a1")) == []

    shift_start = generated.shifts[0].start_time.ToDatetime(tzinfo=UTC)
    report = await service.stub.Adherence(
        pb.AdherenceRequest(
            range=common_pb2.TimeRange(start_time=_ts(shift_start), end_time=_ts(now))
        ),
        metadata=md,
    )
    rows = {a.agent_id: a for a in report.agents}
    assert report.schedule_id == "week-1"
    assert rows["a2"].out_of_adherence_minutes == pytest.approx(rows["a2"].scheduled_minutes)
    assert rows["a1"].in_adherence_minutes == pytest.approx(20, abs=0.1)

    stream = service.stub.WatchAdherence(pb.WatchAdherenceRequest(agent_ids=["a2"]), metadata=md)
    seen = []
    async for message in stream:
        seen.append(message.WhichOneof("kind"))
        if len(seen) == 2:
            break
    stream.cancel()
    assert seen == ["status", "exception"]


async def test_time_off_approval_workflow(service: Service, tenant_id: str) -> None:
    sup = service.md(tenant_id)
    agent = service.md(tenant_id, (Role.AGENT,), "ann")

    async def request(agent_id: str, day: str, md: Any = agent) -> pb.RequestTimeOffResponse:
        return await service.stub.RequestTimeOff(
            pb.RequestTimeOffRequest(
                request_id=str(uuid.uuid4()), agent_id=agent_id, first_date=day, last_date=day
            ),
            metadata=md,
        )

    one = await request("ann", "2026-04-01")
    two = await request("ann", "2026-04-02")
    bob = await request("bob", "2026-04-03", sup)
    assert one.time_off.requested_by == "ann" and bob.time_off.requested_by == "sup"

    # Only a supervisor (or admin) decides.
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await service.stub.ApproveTimeOff(
            pb.ApproveTimeOffRequest(request_id=str(uuid.uuid4()), time_off_id=one.time_off_id),
            metadata=agent,
        )
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED

    deny = pb.DenyTimeOffRequest(
        request_id=str(uuid.uuid4()), time_off_id=two.time_off_id, note="busy"
    )
    denied = await service.stub.DenyTimeOff(deny, metadata=sup)
    assert denied.time_off.status == pb.TIME_OFF_STATUS_DENIED
    assert (await service.stub.DenyTimeOff(deny, metadata=sup)) == denied  # idempotent
    # A denied request cannot be approved: FAILED_PRECONDITION naming the state.
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await service.stub.ApproveTimeOff(
            pb.ApproveTimeOffRequest(request_id=str(uuid.uuid4()), time_off_id=two.time_off_id),
            metadata=sup,
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "denied" in (error.value.details() or "")

    await service.stub.ApproveTimeOff(
        pb.ApproveTimeOffRequest(request_id=str(uuid.uuid4()), time_off_id=one.time_off_id),
        metadata=sup,
    )
    listed = await service.stub.ListTimeOff(pb.ListTimeOffRequest(), metadata=sup)
    statuses = {t.time_off_id: t.status for t in listed.time_off}
    assert statuses == {
        one.time_off_id: pb.TIME_OFF_STATUS_APPROVED,
        two.time_off_id: pb.TIME_OFF_STATUS_DENIED,
        bob.time_off_id: pb.TIME_OFF_STATUS_PENDING,
    }
    pending = await service.stub.ListTimeOff(
        pb.ListTimeOffRequest(statuses=[pb.TIME_OFF_STATUS_PENDING]), metadata=sup
    )
    assert [t.time_off_id for t in pending.time_off] == [bob.time_off_id]
    mine = await service.stub.ListTimeOff(pb.ListTimeOffRequest(), metadata=agent)
    assert {t.agent_id for t in mine.time_off} == {"ann"}

    # Another tenant sees and decides nothing of it.
    other = service.md(f"{tenant_id}-other")
    assert not (await service.stub.ListTimeOff(pb.ListTimeOffRequest(), metadata=other)).time_off
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await service.stub.ApproveTimeOff(
            pb.ApproveTimeOffRequest(request_id=str(uuid.uuid4()), time_off_id=bob.time_off_id),
            metadata=other,
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await service.stub.DenyTimeOff(pb.DenyTimeOffRequest(time_off_id="x"), metadata=sup)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in _violations(error.value)
