"""The gRPC API of the reporting service (contactcenter.reporting.v1.ReportingService).

Real-time calls read the live in-memory view; IntervalHistory reads the PostgreSQL read model.
The tenant is always the bearer token's.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC as _UTC
from typing import Any, Final

import asyncpg

from contactcenter.contracts.errors import ValidationFailed
from contactcenter.grpckit import Role, ServiceRegistration, current_tenant_id
from contactcenter.reporting.adapters import proto
from contactcenter.reporting.application.config import ReportingConfig
from contactcenter.reporting.application.feed import Update, WallboardFeed
from contactcenter.reporting.domain.intervals import bucket_start, bucket_starts, to_ms, zone
from contactcenter.reporting.domain.metrics import ALL_FIELDS, COUNTER_FIELDS, Counters
from contactcenter.reporting.domain.values import DEFAULT_TIME_ZONE, MINUTE_MS
from contactcenter.reporting.domain.views import (
    agent_view,
    channel_view,
    channels,
    queue_ids,
    queue_view,
)
from contactcenter.reporting.projections.live import LiveProjection, now_ms, snapshot_of
from contactcenter.reporting.projections.store import quote
from contactcenter.reporting.v1 import reporting_pb2 as pb
from contactcenter.reporting.v1 import reporting_pb2_grpc as pb_grpc

READERS: Final = (Role.SUPERVISOR, Role.ADMIN, Role.SERVICE)
METHOD_ROLES: Final = {
    "QueueStats": READERS,
    "AgentStats": READERS,
    "ChannelStats": READERS,
    "IntervalHistory": READERS,
    "WatchWallboard": READERS,
    "ConfigureTenantReporting": (Role.ADMIN, Role.SERVICE),
    "ConfigureQueueReporting": (Role.ADMIN, Role.SERVICE),
}
MAX_HISTORY_DAYS: Final = 62
DEFAULT_PAGE: Final = 1_000


class ReportingServicer(pb_grpc.ReportingServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        projection: LiveProjection,
        feed: WallboardFeed,
        config: ReportingConfig,
        pool: asyncpg.Pool,
        schema: str,
        closing: asyncio.Event,
    ) -> None:
        self._projection = projection
        self._feed = feed
        self._config = config
        self._pool = pool
        self._s = quote(schema)
        self._closing = closing

    def _tenant(self) -> Any:
        return self._projection.state.tenants.get(current_tenant_id())

    async def QueueStats(self, request: Any, context: Any) -> Any:
        t, now = self._tenant(), now_ms()
        out = pb.QueueStatsResponse(as_of=proto.timestamp(now))
        if t is not None:
            ids = list(request.queue_ids) or queue_ids(t)
            out.queues.extend(proto.queue(queue_view(t, q, now)) for q in ids)
        return out

    async def AgentStats(self, request: Any, context: Any) -> Any:
        t, now = self._tenant(), now_ms()
        out = pb.AgentStatsResponse(as_of=proto.timestamp(now))
        if t is not None:
            wanted = set(request.agent_ids)
            queues = set(request.queue_ids)
            for a in sorted(t.agents.values(), key=lambda a: a.agent_id):
                if wanted and a.agent_id not in wanted:
                    continue
                if queues and not queues.intersection(a.queues):
                    continue
                out.agents.append(proto.agent(agent_view(t, a, now)))
        return out

    async def ChannelStats(self, request: Any, context: Any) -> Any:
        t, now = self._tenant(), now_ms()
        out = pb.ChannelStatsResponse(as_of=proto.timestamp(now))
        names = []
        for i, number in enumerate(request.channels):
            if number not in proto.CHANNEL_NAMES:
                raise ValidationFailed([(f"channels[{i}]", f"unknown channel {number}")])
            names.append(proto.CHANNEL_NAMES[number])
        if t is not None:
            for ch in names or channels(t):
                out.channels.append(proto.channel(channel_view(t, ch, now)))
        return out

    async def WatchWallboard(self, request: Any, context: Any) -> AsyncIterator[Any]:
        tenant_id = current_tenant_id()
        await self._projection.loaded.wait()

        def snapshot() -> Update:
            return snapshot_of(self._projection.state.tenants.get(tenant_id), now_ms())

        sub, first = self._feed.subscribe(
            tenant_id, snapshot, frozenset(request.queue_ids), request.include_agents
        )
        try:
            yield _update(first)
            async for update in sub.updates():
                if self._closing.is_set():
                    return
                yield _update(update)
        finally:
            self._feed.unsubscribe(sub)

    async def IntervalHistory(self, request: Any, context: Any) -> Any:
        tenant_id = current_tenant_id()
        minutes = request.interval_minutes or 15
        violations = []
        if minutes not in (15, 30):
            violations.append(("interval_minutes", "must be 15 or 30"))
        if not request.range.HasField("start_time") or not request.range.HasField("end_time"):
            violations.append(("range", "start_time and end_time are required"))
        if request.page.page_size < 0:
            violations.append(("page.page_size", "must not be negative"))
        offset = 0
        if request.page.page_token:
            try:
                offset = int(base64.urlsafe_b64decode(request.page.page_token).decode())
            except ValueError:
                violations.append(("page.page_token", "is not a token of this call"))
        if violations:
            raise ValidationFailed(violations)
        start = to_ms(request.range.start_time.ToDatetime(tzinfo=_UTC))
        end = to_ms(request.range.end_time.ToDatetime(tzinfo=_UTC))
        if end <= start:
            raise ValidationFailed([("range.end_time", "must be after start_time")])
        if end - start > MAX_HISTORY_DAYS * 1440 * MINUTE_MS:
            raise ValidationFailed([("range", f"at most {MAX_HISTORY_DAYS} days")])
        t = self._projection.state.tenants.get(tenant_id)
        tz = zone(t.time_zone if t is not None else DEFAULT_TIME_ZONE)
        starts = bucket_starts(start, end, minutes, tz)
        cols = ", ".join(("queue_id", "channel", "start_ms", *ALL_FIELDS))
        args: list[Any] = [tenant_id, starts[0] if starts else start, end]
        where = "tenant_id = $1 and minutes = 15 and start_ms >= $2 and start_ms < $3"
        if request.queue_ids:
            args.append(list(request.queue_ids))
            where += " and queue_id = any($4::text[])"
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(f"select {cols} from {self._s}.rm_buckets where {where}", *args)
        series: dict[tuple[str, str], dict[int, Counters]] = {}
        for r in rows:
            per = series.setdefault((r["queue_id"], r["channel"]), {})
            key = bucket_start(r["start_ms"], minutes, tz)
            c = per.setdefault(key, Counters())
            c.add(Counters.from_row(tuple(r)[3:]))
        records = []
        for (queue_id, ch), per in sorted(series.items()):
            for st in starts:  # dense: an interval without contacts is a zero, not a gap
                c = per.get(st, Counters())
                records.append(_record(queue_id, ch, st, minutes, c))
        size = request.page.page_size or DEFAULT_PAGE
        page = records[offset : offset + size]
        out = pb.IntervalHistoryResponse(records=page)
        if offset + size < len(records):
            token = base64.urlsafe_b64encode(str(offset + size).encode()).decode()
            out.page.next_page_token = token
        return out

    async def ConfigureTenantReporting(self, request: Any, context: Any) -> Any:
        version = await self._config.configure_tenant(
            current_tenant_id(), request.request_id, request.time_zone
        )
        return pb.ConfigureTenantReportingResponse(version=version)

    async def ConfigureQueueReporting(self, request: Any, context: Any) -> Any:
        number = request.service_level_variant
        if number and number not in proto.VARIANT_OF:
            raise ValidationFailed([("service_level_variant", f"unknown value {number}")])
        version = await self._config.configure_queue(
            current_tenant_id(),
            request.request_id,
            request.queue_id,
            proto.VARIANT_OF.get(number),
            request.short_abandon_threshold_s,
            request.service_level_threshold_s,
            request.service_level_target_percent,
        )
        return pb.ConfigureQueueReportingResponse(version=version)


def _record(queue_id: str, ch: str, start: int, minutes: int, c: Counters) -> Any:
    return pb.IntervalRecord(
        queue_id=queue_id,
        channel=proto.CHANNELS.get(ch, 0),
        interval_start=proto.timestamp(start),
        interval_minutes=minutes,
        **{name: getattr(c, name) for name in COUNTER_FIELDS},
        service_level_threshold_s=c.sl_threshold_s,
        short_abandon_threshold_s=c.short_abandon_threshold_s,
    )


def _update(u: Update) -> Any:
    msg = pb.WatchWallboardResponse(
        snapshot=u.snapshot,
        as_of=proto.timestamp(now_ms()),
        queues=[proto.queue(v) for v in u.queues.values()],
        agents=[proto.agent(v) for v in u.agents.values()],
        last_event_id=u.last_event_id,
    )
    if u.last_event_time:
        msg.last_event_time.CopyFrom(proto.timestamp(u.last_event_time))
    return msg


def registration(servicer: ReportingServicer) -> ServiceRegistration:
    return ServiceRegistration(
        descriptor=pb.DESCRIPTOR.services_by_name["ReportingService"],
        servicer=servicer,
        add_to_server=pb_grpc.add_ReportingServiceServicer_to_server,
        method_roles=METHOD_ROLES,
    )
