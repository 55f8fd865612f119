"""The gRPC API: `contactcenter.wfm.v1.WfmService`. The tenant always comes from the token;
bad input is INVALID_ARGUMENT naming the field (the request's own field paths)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.errors import PermissionDenied, ValidationFailed
from contactcenter.grpckit import Role, ServiceRegistration, current_caller, time_remaining
from contactcenter.wfm.adapters.reporting import channel_name
from contactcenter.wfm.application import WfmApplication
from contactcenter.wfm.domain import erlang, scheduling
from contactcenter.wfm.domain.events import ShiftData
from contactcenter.wfm.domain.forecast import ForecastSpec, IntervalActual
from contactcenter.wfm.domain.schedule import ScheduleState, TimeOffState
from contactcenter.wfm.v1 import wfm_pb2 as pb
from contactcenter.wfm.v1 import wfm_pb2_grpc as pb_grpc

_SV, _S, _AD, _A = Role.SERVICE, Role.SUPERVISOR, Role.ADMIN, Role.AGENT
_PLANNERS = frozenset({_SV, _S, _AD})
METHOD_ROLES: Final[Mapping[str, frozenset[Role]]] = {
    "Forecast": _PLANNERS,
    "RequiredStaff": _PLANNERS,
    "GenerateSchedule": _PLANNERS,
    "PublishSchedule": _PLANNERS,
    "RequestTimeOff": frozenset({_SV, _S, _AD, _A}),
    "ApproveTimeOff": frozenset({_S, _AD}),
    "DenyTimeOff": frozenset({_S, _AD}),
    "ListTimeOff": frozenset({_SV, _S, _AD, _A}),
    "Adherence": _PLANNERS,
    "WatchAdherence": _PLANNERS,
}
_KIND = {
    "work": pb.ACTIVITY_KIND_WORK,
    "break": pb.ACTIVITY_KIND_BREAK,
    "lunch": pb.ACTIVITY_KIND_LUNCH,
}


def registration(servicer: WfmServicer) -> ServiceRegistration:
    return ServiceRegistration(
        descriptor=pb.DESCRIPTOR.services_by_name["WfmService"],
        servicer=servicer,
        add_to_server=pb_grpc.add_WfmServiceServicer_to_server,
        method_roles=METHOD_ROLES,
    )


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def _within_deadline(seconds: float) -> float:
    """A solver's time limit, cut to the client's deadline: no solve outlives its caller."""
    remaining = time_remaining()
    return seconds if remaining is None else min(seconds, remaining)


def _dt(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


class _Checks:
    def __init__(self) -> None:
        self.violations: list[tuple[str, str]] = []

    def fail(self, field: str, why: str) -> None:
        self.violations.append((field, why))

    def done(self) -> None:
        if self.violations:
            raise ValidationFailed(self.violations)

    def zone(self, field: str, name: str) -> str:
        name = name or "UTC"
        try:
            ZoneInfo(name)
        # OSError: a name too long to be a file name of the zone database
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.fail(field, f"unknown time zone {name!r}")
        return name

    def interval(self, field: str, value: int) -> int:
        if value not in (15, 30):
            self.fail(field, "must be 15 or 30")
        return value

    def day(self, field: str, value: str) -> date:
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.fail(field, "must be a date YYYY-MM-DD")
            return date(1970, 1, 1)

    def request_id(self, value: str) -> None:
        if not value or len(value) > 128:
            self.fail("request_id", "is required (at most 128 characters)")


def _point(field: str, p: pb.HistoryPoint, checks: _Checks) -> IntervalActual:
    if not p.queue_id:
        checks.fail(f"{field}.queue_id", "is required")
    if p.offered < 0 or p.handled < 0 or p.handle_time_ms_total < 0:
        checks.fail(field, "counters must not be negative")
    return IntervalActual(
        queue_id=p.queue_id,
        channel=channel_name(p.channel),
        interval_start=_dt(p.interval_start),
        offered=float(p.offered),
        handled=float(p.handled),
        handle_time_ms_total=float(p.handle_time_ms_total),
    )


def _channel_value(name: str) -> int:
    return int(common_pb2.Channel.Value(f"CHANNEL_{name.upper()}")) if name else 0


def _summary(state: ScheduleState, version: int = 0) -> pb.ScheduleSummary:
    g = state.generated
    if g is None:
        return pb.ScheduleSummary(schedule_id=state.schedule_id, status=state.status)
    return pb.ScheduleSummary(
        schedule_id=state.schedule_id,
        week_start=g.week_start,
        status=state.status,
        shortfall=g.shortfall,
        best_bound=g.best_bound,
        gap_pct=g.gap_pct,
        solve_seconds=g.solve_seconds,
        agents=g.agents,
        shifts=len(g.shifts),
        solver_status=g.solver_status,
        version=version,
    )


_STATUS = {
    "pending": pb.TIME_OFF_STATUS_PENDING,
    "approved": pb.TIME_OFF_STATUS_APPROVED,
    "denied": pb.TIME_OFF_STATUS_DENIED,
}
_STATUS_NAMES = {v: k for k, v in _STATUS.items()}


def _agent_only(roles: Any) -> bool:
    return set(roles) == {Role.AGENT}


def _shift(s: ShiftData) -> pb.Shift:
    return pb.Shift(
        agent_id=s.agent_id,
        template_id=s.template_id,
        local_date=s.local_date,
        start_time=_ts(s.start),
        end_time=_ts(s.end),
        activities=[
            pb.Activity(kind=_KIND[a.kind], start_time=_ts(a.start), end_time=_ts(a.end))
            for a in s.activities
        ],
    )


def _time_off(state: TimeOffState) -> pb.TimeOff:
    r = state.requested
    out = pb.TimeOff(
        time_off_id=state.time_off_id,
        status=_STATUS.get(state.status, pb.TIME_OFF_STATUS_UNSPECIFIED),
        decided_by=state.decided_by,
        note=state.note,
        affected=[
            pb.AffectedSchedule(
                schedule_id=a.schedule_id,
                week_start=a.week_start,
                shifts=[_shift(s) for s in a.shifts],
            )
            for a in state.affected
        ],
    )
    if r is not None:
        out.agent_id = r.agent_id
        out.first_date = r.first_date
        out.last_date = r.last_date
        out.reason = r.reason
        out.requested_by = r.requested_by
    return out


class WfmServicer(pb_grpc.WfmServiceServicer):  # type: ignore[misc]
    def __init__(self, app: WfmApplication, watch_interval_s: float = 1.0) -> None:
        self.app = app
        self.watch_interval_s = watch_interval_s

    async def Forecast(self, request: pb.ForecastRequest, context: Any) -> pb.ForecastResponse:
        tenant = current_caller().tenant_id
        c = _Checks()
        if not request.queue_ids:
            c.fail("queue_ids", "name at least one queue")
        minutes = c.interval("interval_minutes", request.interval_minutes)
        tz = c.zone("time_zone", request.time_zone)
        if not request.HasField("horizon_start"):
            c.fail("horizon_start", "is required")
        if not 1 <= request.horizon_days <= 62:
            c.fail("horizon_days", "must be 1..62")
        if not 0 <= request.holdout_weeks <= 8:
            c.fail("holdout_weeks", "must be 0..8")
        history = [_point(f"history[{i}]", p, c) for i, p in enumerate(request.history)]
        actuals = [_point(f"actuals[{i}]", p, c) for i, p in enumerate(request.actuals)]
        special: dict[date, float] = {}
        for i, d in enumerate(request.special_days):
            day = c.day(f"special_days[{i}].date", d.date)
            if d.volume_factor < 0:
                c.fail(f"special_days[{i}].volume_factor", "must not be negative")
            special[day] = d.volume_factor
        history_range = None
        if not history:
            r = request.history_range
            if not (r.HasField("start_time") and r.HasField("end_time")) or _dt(r.end_time) <= _dt(
                r.start_time
            ):
                c.fail("history_range", "give a range (start before end) or the history inline")
            else:
                history_range = (_dt(r.start_time), _dt(r.end_time))
        c.done()
        spec = ForecastSpec(
            interval_minutes=minutes,
            horizon_start=_dt(request.horizon_start),
            horizon_days=request.horizon_days,
            time_zone=tz,
            special_days=special,
            holdout_weeks=request.holdout_weeks,
        )
        result = await self.app.forecast(
            tenant, list(request.queue_ids), spec, history or None, history_range, actuals
        )
        return pb.ForecastResponse(
            intervals=[
                pb.ForecastInterval(
                    queue_id=p.queue_id,
                    channel=_channel_value(p.channel),
                    interval_start=_ts(p.interval_start),
                    volume=p.volume,
                    aht_seconds=p.aht_seconds,
                )
                for p in result.points
            ],
            accuracy=[
                pb.ForecastAccuracy(
                    queue_id=a.queue_id,
                    channel=_channel_value(a.channel),
                    wape_pct=a.wape_pct,
                    seasonal_naive_wape_pct=a.seasonal_naive_wape_pct,
                    method=a.method,
                )
                for a in result.accuracy
            ],
            intraday_factor=result.intraday_factor,
        )

    async def RequiredStaff(
        self, request: pb.RequiredStaffRequest, context: Any
    ) -> pb.RequiredStaffResponse:
        c = _Checks()
        minutes = c.interval("interval_minutes", request.interval_minutes)
        for i, q in enumerate(request.queues):
            f = f"queues[{i}]"
            t = q.target
            if not q.queue_id:
                c.fail(f"{f}.queue_id", "is required")
            if q.model == pb.STAFFING_MODEL_UNSPECIFIED or q.model not in pb.StaffingModel.values():
                c.fail(f"{f}.model", "is required")
            if not 0 <= t.service_level <= 1:
                c.fail(f"{f}.target.service_level", "must be in [0, 1]")
            if not 0 <= t.max_occupancy <= 1:
                c.fail(f"{f}.target.max_occupancy", "must be in [0, 1]")
            if not 0 <= t.shrinkage < 1:
                c.fail(f"{f}.target.shrinkage", "must be in [0, 1)")
            if not 0 <= t.max_abandon_rate <= 1:
                c.fail(f"{f}.target.max_abandon_rate", "must be in [0, 1]")
            if q.model == pb.STAFFING_MODEL_ERLANG_A and t.patience_seconds <= 0:
                c.fail(f"{f}.target.patience_seconds", "must be positive for Erlang A")
            if q.model == pb.STAFFING_MODEL_CHAT and t.concurrency < 1:
                c.fail(f"{f}.target.concurrency", "must be at least 1 for chat")
            if q.model == pb.STAFFING_MODEL_DEFERRED and t.response_time_seconds <= 0:
                c.fail(f"{f}.target.response_time_seconds", "must be positive for deferred work")
            if q.model in (pb.STAFFING_MODEL_ERLANG_C, pb.STAFFING_MODEL_CHAT) and not (
                t.service_level > 0 or t.max_asa_seconds > 0
            ):
                c.fail(f"{f}.target", "set a service level or an ASA target")
            for k, w in enumerate(q.intervals):
                if w.volume < 0 or not np.isfinite(w.volume):
                    c.fail(f"{f}.intervals[{k}].volume", "must be a finite number >= 0")
                if w.aht_seconds <= 0 and w.volume > 0:
                    c.fail(f"{f}.intervals[{k}].aht_seconds", "must be positive")
        c.done()
        out = pb.RequiredStaffResponse()
        interval_s = minutes * 60.0
        for q in request.queues:
            t = q.target
            vol = np.array([w.volume for w in q.intervals], dtype=np.float64)
            aht = np.array([w.aht_seconds if w.aht_seconds > 0 else 1.0 for w in q.intervals])
            target = erlang.Target(
                service_level=t.service_level,
                service_level_seconds=float(t.service_level_seconds or 20),
                max_asa_seconds=t.max_asa_seconds,
                max_abandon_rate=t.max_abandon_rate,
                max_occupancy=t.max_occupancy,
            )
            abandon = np.zeros(vol.shape)
            if q.model == pb.STAFFING_MODEL_DEFERRED:
                agents, _ = erlang.deferred_required(
                    vol, aht, interval_s, t.response_time_seconds, t.initial_backlog
                )
                sl = np.ones(vol.shape)
                asa = np.zeros(vol.shape)
                traffic = vol * aht / interval_s
                occ = np.where(agents > 0, traffic / np.maximum(agents, 1), 0.0)
            elif q.model == pb.STAFFING_MODEL_ERLANG_A:
                s = await asyncio.to_thread(
                    erlang.erlang_a_required, vol, aht, t.patience_seconds, interval_s, target
                )
                agents, sl, asa, abandon, occ, traffic = (
                    s.agents,
                    s.service_level,
                    s.asa_seconds,
                    s.abandon_rate,
                    s.occupancy,
                    s.traffic,
                )
            else:
                conc = t.concurrency if q.model == pb.STAFFING_MODEL_CHAT else 1
                s = await asyncio.to_thread(
                    erlang.erlang_c_required, vol, aht, interval_s, target, servers_per_agent=conc
                )
                agents, sl, asa, occ, traffic = (
                    s.agents,
                    s.service_level,
                    s.asa_seconds,
                    s.occupancy,
                    s.traffic,
                )
            scheduled = erlang.with_shrinkage(agents, t.shrinkage)
            out.queues.append(
                pb.QueueStaffing(
                    queue_id=q.queue_id,
                    intervals=[
                        pb.StaffingInterval(
                            interval_start=w.interval_start,
                            agents=int(agents[k]),
                            scheduled_agents=int(scheduled[k]),
                            service_level=float(sl[k]),
                            asa_seconds=float(asa[k]) if np.isfinite(asa[k]) else -1.0,
                            abandon_rate=float(abandon[k]),
                            occupancy=float(occ[k]),
                            traffic_erlangs=float(traffic[k]),
                        )
                        for k, w in enumerate(q.intervals)
                    ],
                )
            )
        return out

    async def GenerateSchedule(
        self, request: pb.GenerateScheduleRequest, context: Any
    ) -> pb.GenerateScheduleResponse:
        tenant = current_caller().tenant_id
        c = _Checks()
        c.request_id(request.request_id)
        if not request.schedule_id:
            c.fail("schedule_id", "is required")
        week = c.day("week_start", request.week_start)
        tz = c.zone("time_zone", request.time_zone)
        minutes = c.interval("interval_minutes", request.interval_minutes)
        if not request.templates:
            c.fail("templates", "give at least one shift template")
        if not request.agents:
            c.fail("agents", "give at least one agent")
        templates = []
        for i, t in enumerate(request.templates):
            if not t.template_id:
                c.fail(f"templates[{i}].template_id", "is required")
            if not 60 <= t.length_minutes <= 16 * 60 or t.length_minutes % 15:
                c.fail(f"templates[{i}].length_minutes", "must be 60..960, a multiple of 15")
            if not 1 <= t.days_per_week <= 7:
                c.fail(f"templates[{i}].days_per_week", "must be 1..7")
            for k, o in enumerate([*t.lunch_offsets_minutes, *t.break_offsets_minutes]):
                if o % 15 or not 0 <= o < t.length_minutes:
                    c.fail(f"templates[{i}]", f"offset {k} must be inside the shift, on 15 minutes")
            window = (0, 24 * 60 - scheduling.START_GRID_MINUTES)
            if t.HasField("start_window"):
                w = t.start_window
                window = (w.earliest_start_minute, w.latest_start_minute)
                if not 0 <= window[0] <= window[1] < 24 * 60:
                    c.fail(f"templates[{i}].start_window", "must be within a day, earliest first")
            templates.append(
                scheduling.ShiftTemplate(
                    t.template_id,
                    t.length_minutes,
                    t.days_per_week,
                    t.lunch_minutes,
                    tuple(t.lunch_offsets_minutes),
                    t.break_minutes,
                    tuple(t.break_offsets_minutes),
                    *window,
                )
            )
        rules = []
        for i, r in enumerate(request.rules):
            if not r.rules_id:
                c.fail(f"rules[{i}].rules_id", "is required")
            if not 0 <= r.earliest_start_minute <= r.latest_start_minute < 24 * 60:
                c.fail(f"rules[{i}].latest_start_minute", "start window must be within a day")
            if not 0 <= r.min_daily_minutes <= (r.max_daily_minutes or 24 * 60) <= 24 * 60:
                c.fail(f"rules[{i}].max_daily_minutes", "must be 0 or min_daily_minutes..1440")
            if not 0 <= r.min_consecutive_days <= (r.max_consecutive_days or 7) <= 7:
                c.fail(f"rules[{i}].max_consecutive_days", "must be 0 or min_consecutive_days..7")
            if not r.min_rest_minutes >= 0:
                c.fail(f"rules[{i}].min_rest_minutes", "must not be negative")
            for k, d in enumerate(r.required_days_off):
                if not 0 <= d <= 6:
                    c.fail(f"rules[{i}].required_days_off[{k}]", "must be a weekday 0..6")
            known = {t.template_id for t in request.templates}
            for k, week_rule in enumerate(r.rotation):
                if not week_rule.template_ids:
                    c.fail(f"rules[{i}].rotation[{k}].template_ids", "give at least one template")
                for name in week_rule.template_ids:
                    if name not in known:
                        c.fail(f"rules[{i}].rotation[{k}].template_ids", f"unknown {name!r}")
            anchor = (
                c.day(f"rules[{i}].rotation_anchor", r.rotation_anchor)
                if r.rotation_anchor
                else date(2024, 1, 1)
            )
            rules.append(
                scheduling.WorkRules(
                    r.rules_id,
                    r.min_weekly_minutes,
                    r.max_weekly_minutes or 7 * 24 * 60,
                    r.earliest_start_minute,
                    r.latest_start_minute,
                    r.min_rest_minutes,
                    r.consecutive_days_off,
                    tuple(r.template_ids),
                    tuple(r.required_days_off),
                    min_daily_minutes=r.min_daily_minutes,
                    max_daily_minutes=r.max_daily_minutes or 24 * 60,
                    min_consecutive_days=max(1, r.min_consecutive_days),
                    max_consecutive_days=r.max_consecutive_days or 7,
                    mix_templates=not r.single_template_per_week,
                    rotation=tuple(tuple(w.template_ids) for w in r.rotation),
                    rotation_anchor=anchor,
                )
            )
        rule_ids = {r.rules_id for r in rules}
        agents = []
        seen: set[str] = set()
        for i, a in enumerate(request.agents):
            if not a.agent_id or a.agent_id in seen:
                c.fail(f"agents[{i}].agent_id", "is required and unique")
            seen.add(a.agent_id)
            zone = c.zone(f"agents[{i}].time_zone", a.time_zone)
            if a.rules_id not in rule_ids:
                c.fail(f"agents[{i}].rules_id", f"unknown rules {a.rules_id!r}")
            if not 0 <= a.previous_consecutive_days <= 366:
                c.fail(f"agents[{i}].previous_consecutive_days", "must be 0..366")
            agents.append(
                scheduling.AgentSpec(
                    a.agent_id,
                    tuple(a.skills),
                    zone,
                    a.rules_id,
                    tuple(a.unavailable_weekdays),
                    rotation_offset=a.rotation_offset,
                    previous_shift_end=(
                        _dt(a.previous_shift_end) if a.HasField("previous_shift_end") else None
                    ),
                    previous_consecutive_days=a.previous_consecutive_days,
                )
            )
        requirements: dict[tuple[str, datetime], int] = {}
        for i, q in enumerate(request.requirements):
            if not q.queue_id or q.agents < 0:
                c.fail(f"requirements[{i}]", "needs a queue_id and agents >= 0")
            requirements[(q.queue_id, _dt(q.interval_start))] = q.agents
        if request.time_limit_seconds < 0 or request.time_limit_seconds > 600:
            c.fail("time_limit_seconds", "must be 0..600")
        c.done()
        problem = scheduling.ScheduleProblem(
            week_start=week,
            time_zone=tz,
            interval_minutes=minutes,
            templates=tuple(templates),
            rules=tuple(rules),
            agents=tuple(agents),
            requirements=requirements,
            time_limit_s=_within_deadline(request.time_limit_seconds or 50.0),
            relative_gap=request.relative_gap or 0.005,
        )
        try:
            generated, roster, _ = await self.app.generate_schedule(
                tenant, request.request_id, request.schedule_id, problem
            )
        except scheduling.ScheduleInfeasible as error:
            raise ValidationFailed([("agents", str(error))]) from error
        state = ScheduleState(request.schedule_id, generated, False)
        response = pb.GenerateScheduleResponse(summary=_summary(state))
        for s in generated.shifts:
            response.shifts.append(_shift(s))
        if roster is not None:
            for (queue, start), (required, scheduled) in sorted(roster.coverage.items()):
                response.coverage.append(
                    pb.CoverageInterval(
                        queue_id=queue,
                        interval_start=_ts(start),
                        required=required,
                        scheduled=scheduled,
                    )
                )
        return response

    async def PublishSchedule(
        self, request: pb.PublishScheduleRequest, context: Any
    ) -> pb.PublishScheduleResponse:
        tenant = current_caller().tenant_id
        c = _Checks()
        c.request_id(request.request_id)
        if not request.schedule_id:
            c.fail("schedule_id", "is required")
        c.done()
        state = await self.app.publish_schedule(tenant, request.request_id, request.schedule_id)
        return pb.PublishScheduleResponse(summary=_summary(state))

    async def RequestTimeOff(
        self, request: pb.RequestTimeOffRequest, context: Any
    ) -> pb.RequestTimeOffResponse:
        caller = current_caller()
        c = _Checks()
        c.request_id(request.request_id)
        c.done()
        if _agent_only(caller.roles) and request.agent_id != caller.subject:
            raise PermissionDenied("an agent may request time off only for themselves")
        state = await self.app.request_time_off(
            caller.tenant_id,
            request.request_id,
            request.agent_id,
            request.first_date,
            request.last_date,
            request.reason,
            caller.subject,
        )
        return pb.RequestTimeOffResponse(
            time_off_id=state.time_off_id, status=state.status, time_off=_time_off(state)
        )

    async def _decide(self, request: Any, *, approve: bool) -> pb.TimeOff:
        caller = current_caller()
        c = _Checks()
        c.request_id(request.request_id)
        if not request.time_off_id:
            c.fail("time_off_id", "is required")
        c.done()
        state = await self.app.decide_time_off(
            caller.tenant_id,
            request.request_id,
            request.time_off_id,
            caller.subject,
            request.note,
            approve=approve,
        )
        return _time_off(state)

    async def ApproveTimeOff(
        self, request: pb.ApproveTimeOffRequest, context: Any
    ) -> pb.ApproveTimeOffResponse:
        return pb.ApproveTimeOffResponse(time_off=await self._decide(request, approve=True))

    async def DenyTimeOff(
        self, request: pb.DenyTimeOffRequest, context: Any
    ) -> pb.DenyTimeOffResponse:
        return pb.DenyTimeOffResponse(time_off=await self._decide(request, approve=False))

    async def ListTimeOff(
        self, request: pb.ListTimeOffRequest, context: Any
    ) -> pb.ListTimeOffResponse:
        caller = current_caller()
        agent_ids = list(request.agent_ids)
        if _agent_only(caller.roles):
            if any(a != caller.subject for a in agent_ids):
                raise PermissionDenied("an agent may list only their own time off")
            agent_ids = [caller.subject]
        c = _Checks()
        statuses = []
        for k, value in enumerate(request.statuses):
            name = _STATUS_NAMES.get(value)
            if name is None:
                c.fail(f"statuses[{k}]", "must be PENDING, APPROVED or DENIED")
            else:
                statuses.append(name)
        c.done()
        states = await self.app.list_time_off(caller.tenant_id, agent_ids, statuses)
        return pb.ListTimeOffResponse(time_off=[_time_off(s) for s in states])

    async def Adherence(self, request: pb.AdherenceRequest, context: Any) -> pb.AdherenceResponse:
        tenant = current_caller().tenant_id
        c = _Checks()
        r = request.range
        if not (r.HasField("start_time") and r.HasField("end_time")) or _dt(r.end_time) <= _dt(
            r.start_time
        ):
            c.fail("range", "give a start before the end")
        elif _dt(r.end_time) - _dt(r.start_time) > timedelta(days=31):
            c.fail("range", "at most 31 days")
        c.done()
        schedule_id, rows = await self.app.adherence(
            tenant, _dt(r.start_time), _dt(r.end_time), list(request.agent_ids)
        )
        return pb.AdherenceResponse(
            schedule_id=schedule_id,
            agents=[
                pb.AgentAdherence(
                    agent_id=a.agent_id,
                    scheduled_minutes=a.scheduled_minutes,
                    in_adherence_minutes=a.in_adherence_minutes,
                    out_of_adherence_minutes=a.out_of_adherence_minutes,
                    adherence_pct=a.adherence_pct,
                    conformance_pct=a.conformance_pct,
                )
                for a in rows
            ],
        )

    async def WatchAdherence(
        self, request: pb.WatchAdherenceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.WatchAdherenceResponse]:
        tenant = current_caller().tenant_id
        agents = list(request.agent_ids)
        last: dict[str, tuple[str, str, bool]] = {}
        reported: set[tuple[str, datetime]] = set()
        while True:
            for s in await self.app.live(tenant, agents):
                key = (s.scheduled, s.state, s.in_adherence)
                if last.get(s.agent_id) != key:
                    last[s.agent_id] = key
                    yield pb.WatchAdherenceResponse(
                        status=pb.AgentAdherenceStatus(
                            agent_id=s.agent_id,
                            scheduled=_KIND.get(s.scheduled, 0),
                            state=s.state,
                            in_adherence=s.in_adherence,
                            since=_ts(s.since),
                        )
                    )
                now = datetime.now(UTC)
                if (
                    not s.in_adherence
                    and now - s.since >= self.app.adherence_threshold
                    and (s.agent_id, s.since) not in reported
                ):
                    reported.add((s.agent_id, s.since))
                    yield pb.WatchAdherenceResponse(
                        exception=pb.AdherenceException(
                            agent_id=s.agent_id,
                            since=_ts(s.since),
                            out_of_adherence_seconds=int((now - s.since).total_seconds()),
                            scheduled=_KIND.get(s.scheduled, 0),
                            state=s.state,
                        )
                    )
            self.app.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.app.changed.wait(), self.watch_interval_s)
