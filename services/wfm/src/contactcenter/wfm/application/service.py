"""The WFM application: command handlers (event-sourced schedules and time off), forecasting
and staffing queries, adherence reports and the live adherence checker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from contactcenter.contracts.errors import FailedPrecondition
from contactcenter.contracts.events import registry, utc_now
from contactcenter.eventstore import ANY, PgPool, PostgresEventStore
from contactcenter.wfm.application.ports import IntervalHistory
from contactcenter.wfm.domain import adherence as adh
from contactcenter.wfm.domain import schedule as sched
from contactcenter.wfm.domain import scheduling
from contactcenter.wfm.domain.events import (
    ActivityData,
    AdherenceExceptionRaised,
    ScheduleGenerated,
    SchedulePublished,
    ShiftData,
    TimeOffGranted,
    WfmEvent,
    adherence_stream,
    publication_stream,
    schedule_stream,
    time_off_request_stream,
    time_off_stream,
)
from contactcenter.wfm.domain.forecast import (
    ForecastResult,
    ForecastSpec,
    IntervalActual,
    forecast,
    reforecast_intraday,
)

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Published:
    schedule_id: str
    activities: tuple[adh.ScheduledActivity, ...]


class WfmApplication:
    def __init__(
        self,
        store: PostgresEventStore,
        pool: PgPool,
        schema: str,
        history: IntervalHistory,
        *,
        adherence_threshold: timedelta = timedelta(minutes=5),
    ) -> None:
        self.store = store
        self.pool = pool
        self.schema = schema
        self.history = history
        self.adherence_threshold = adherence_threshold
        self._published: dict[str, tuple[int, Published | None]] = {}
        self.changed = asyncio.Event()

    # --- forecasting ------------------------------------------------------------------------

    async def forecast(
        self,
        tenant_id: str,
        queue_ids: Sequence[str],
        spec: ForecastSpec,
        history: Sequence[IntervalActual] | None,
        history_range: tuple[datetime, datetime] | None,
        actuals: Sequence[IntervalActual] = (),
    ) -> ForecastResult:
        if history is None:
            assert history_range is not None
            history = await self.history.history(
                tenant_id, queue_ids, history_range[0], history_range[1], spec.interval_minutes
            )
        wanted = set(queue_ids)
        records = [r for r in history if r.queue_id in wanted]
        result = await asyncio.to_thread(forecast, records, spec)
        if actuals:
            points, factor = reforecast_intraday(result.points, actuals)
            result = replace(result, points=points, intraday_factor=factor)
        return result

    # --- schedules --------------------------------------------------------------------------

    async def _schedule_state(
        self, tenant_id: str, schedule_id: str
    ) -> tuple[sched.ScheduleState, int]:
        stream = schedule_stream(tenant_id, schedule_id)
        recorded = await self.store.read_stream(stream)
        events = [r.decode(registry) for r in recorded]
        state = sched.fold(schedule_id, [e for e in events if isinstance(e, WfmEvent)])
        return state, (recorded[-1].version if recorded else 0)

    async def time_off_days(self, tenant_id: str, agent_ids: Sequence[str]) -> dict[str, set[date]]:
        """Approved time off per agent (and time off granted before approvals existed)."""
        wanted = set(agent_ids)
        out: dict[str, set[date]] = {
            a: d
            for a, d in sched.approved_days(await self.list_time_off(tenant_id)).items()
            if a in wanted
        }
        for agent_id in agent_ids:
            recorded = await self.store.read_stream(time_off_stream(tenant_id, agent_id))
            grants = [
                e for e in (r.decode(registry) for r in recorded) if isinstance(e, TimeOffGranted)
            ]
            if grants:
                out.setdefault(agent_id, set()).update(sched.days_off(grants))
        return out

    async def published_weeks(self, tenant_id: str) -> list[sched.PublishedWeek]:
        """The live published schedule of every week (the latest publication per week)."""
        recorded = await self.store.read_stream(publication_stream(tenant_id))
        latest: dict[str, str] = {}
        for r in recorded:
            e = r.decode(registry)
            if isinstance(e, SchedulePublished):
                latest[e.week_start] = e.schedule_id
        weeks = []
        for week_start, schedule_id in sorted(latest.items()):
            state = await self.schedule(tenant_id, schedule_id)
            if state.generated is not None:
                weeks.append(sched.PublishedWeek(schedule_id, week_start, state.generated.shifts))
        return weeks

    async def previous_week(
        self, tenant_id: str, problem: scheduling.ScheduleProblem
    ) -> scheduling.ScheduleProblem:
        """Each agent's last shift and working run of the published week before this one, so
        rest and consecutive days hold across the week boundary."""
        before = (problem.week_start - timedelta(days=7)).isoformat()
        weeks = [w for w in await self.published_weeks(tenant_id) if w.week_start == before]
        if not weeks:
            return problem
        shifts: dict[str, list[ShiftData]] = {}
        for s in weeks[-1].shifts:
            shifts.setdefault(s.agent_id, []).append(s)
        agents = []
        for a in problem.agents:
            mine = shifts.get(a.agent_id)
            if not mine or a.previous_shift_end is not None:
                agents.append(a)
                continue
            worked = {date.fromisoformat(s.local_date) for s in mine}
            day, run = problem.week_start - timedelta(days=1), 0
            while day in worked:
                run, day = run + 1, day - timedelta(days=1)
            agents.append(
                replace(
                    a,
                    previous_shift_end=max(s.end for s in mine),
                    previous_consecutive_days=max(run, a.previous_consecutive_days),
                )
            )
        return replace(problem, agents=tuple(agents))

    async def generate_schedule(
        self, tenant_id: str, request_id: str, schedule_id: str, problem: scheduling.ScheduleProblem
    ) -> tuple[ScheduleGenerated, scheduling.Roster | None, bool]:
        """(the ScheduleGenerated event, the roster, replayed)."""
        prior = await self.store.lookup_request(tenant_id, request_id)
        state, version = await self._schedule_state(tenant_id, schedule_id)
        if prior is not None and state.generated is not None:
            return state.generated, None, True
        sched.decide_generate(state, _placeholder(tenant_id, schedule_id))
        offs = await self.time_off_days(tenant_id, [a.agent_id for a in problem.agents])
        agents = tuple(
            replace(a, time_off=tuple(sorted(set(a.time_off) | offs.get(a.agent_id, set()))))
            for a in problem.agents
        )
        problem = await self.previous_week(tenant_id, replace(problem, agents=agents))
        roster = await asyncio.to_thread(scheduling.solve, problem)
        generated = ScheduleGenerated(
            tenant_id=tenant_id,
            schedule_id=schedule_id,
            week_start=problem.week_start.isoformat(),
            time_zone=problem.time_zone,
            shortfall=roster.shortfall,
            best_bound=roster.best_bound,
            gap_pct=roster.gap_pct,
            solve_seconds=roster.solve_seconds,
            solver_status=roster.solver_status,
            agents=len(problem.agents),
            shifts=tuple(
                ShiftData(
                    agent_id=s.agent_id,
                    template_id=s.template_id,
                    local_date=s.local_date.isoformat(),
                    start=s.start,
                    end=s.end,
                    activities=tuple(
                        ActivityData(kind=a.kind, start=a.start, end=a.end) for a in s.activities
                    ),
                )
                for s in roster.shifts
            ),
        )
        events = sched.decide_generate(state, generated)
        result = await self.store.append(
            schedule_stream(tenant_id, schedule_id),
            events,
            expected_version=version,
            request_id=request_id,
            command={"rpc": "GenerateSchedule", "schedule_id": schedule_id},
        )
        if result.replayed:
            state, _ = await self._schedule_state(tenant_id, schedule_id)
            assert state.generated is not None
            return state.generated, None, True
        return generated, roster, False

    async def schedule(self, tenant_id: str, schedule_id: str) -> sched.ScheduleState:
        state, _ = await self._schedule_state(tenant_id, schedule_id)
        return state

    async def publish_schedule(
        self, tenant_id: str, request_id: str, schedule_id: str
    ) -> sched.ScheduleState:
        command = {"rpc": "PublishSchedule", "schedule_id": schedule_id}
        prior = await self.store.lookup_request(tenant_id, request_id, command=command)
        state, version = await self._schedule_state(tenant_id, schedule_id)
        if prior is not None:
            return state
        events = sched.decide_publish(state, tenant_id)
        await self.store.append(
            schedule_stream(tenant_id, schedule_id),
            events,
            expected_version=version,
            request_id=request_id,
            command=command,
        )
        # The tenant's live schedule pointer (its own stream, so adherence reads one stream).
        await self.store.append(
            publication_stream(tenant_id),
            [
                SchedulePublished(
                    tenant_id=tenant_id, schedule_id=schedule_id, week_start=events[0].week_start
                )
            ],  # type: ignore[attr-defined]
            expected_version=ANY,
            request_id=f"{request_id}:pointer",
            command=command,
        )
        self._published.pop(tenant_id, None)
        self.changed.set()
        state, _ = await self._schedule_state(tenant_id, schedule_id)
        return state

    async def _time_off(self, tenant_id: str, time_off_id: str) -> tuple[sched.TimeOffState, int]:
        recorded = await self.store.read_stream(time_off_request_stream(tenant_id, time_off_id))
        events = [e for e in (r.decode(registry) for r in recorded) if isinstance(e, WfmEvent)]
        return sched.fold_time_off(time_off_id, events), (recorded[-1].version if recorded else 0)

    async def request_time_off(
        self,
        tenant_id: str,
        request_id: str,
        agent_id: str,
        first: str,
        last: str,
        reason: str,
        requested_by: str,
    ) -> sched.TimeOffState:
        """A pending request (its id derived from the request id: a retry returns it)."""
        command = {
            "rpc": "RequestTimeOff",
            "agent_id": agent_id,
            "first": first,
            "last": last,
            "reason": reason,
        }
        time_off_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{request_id}"))
        prior = await self.store.lookup_request(tenant_id, request_id, command=command)
        state, version = await self._time_off(tenant_id, time_off_id)
        if prior is not None:
            return state
        events = sched.decide_request_time_off(
            state, tenant_id, agent_id, first, last, reason, requested_by
        )
        await self.store.append(
            time_off_request_stream(tenant_id, time_off_id),
            events,
            expected_version=version,
            request_id=request_id,
            command=command,
        )
        state, _ = await self._time_off(tenant_id, time_off_id)
        return state

    async def decide_time_off(
        self,
        tenant_id: str,
        request_id: str,
        time_off_id: str,
        decided_by: str,
        note: str,
        *,
        approve: bool,
    ) -> sched.TimeOffState:
        """Approve or deny a pending request; a retried request returns the first result."""
        rpc = "ApproveTimeOff" if approve else "DenyTimeOff"
        command = {"rpc": rpc, "time_off_id": time_off_id, "note": note}
        prior = await self.store.lookup_request(tenant_id, request_id, command=command)
        state, version = await self._time_off(tenant_id, time_off_id)
        if prior is not None:
            return state
        if approve:
            published = await self.published_weeks(tenant_id) if state.status == "pending" else []
            events = sched.decide_approve_time_off(state, tenant_id, decided_by, note, published)
        else:
            events = sched.decide_deny_time_off(state, tenant_id, decided_by, note)
        await self.store.append(
            time_off_request_stream(tenant_id, time_off_id),
            events,
            expected_version=version,
            request_id=request_id,
            command=command,
        )
        state, _ = await self._time_off(tenant_id, time_off_id)
        return state

    async def list_time_off(
        self, tenant_id: str, agent_ids: Sequence[str] = (), statuses: Sequence[str] = ()
    ) -> list[sched.TimeOffState]:
        """The tenant's time-off requests (only its own streams), oldest id first."""
        prefix = time_off_request_stream(tenant_id, "")
        out = []
        for stream in await self.store.list_streams(prefix):
            state, _ = await self._time_off(tenant_id, stream[len(prefix) :])
            if state.requested is None:
                continue
            if agent_ids and state.requested.agent_id not in agent_ids:
                continue
            if statuses and state.status not in statuses:
                continue
            out.append(state)
        return out

    # --- adherence --------------------------------------------------------------------------

    async def published(self, tenant_id: str) -> Published | None:
        stream = publication_stream(tenant_id)
        version = await self.store.stream_version(stream)
        cached = self._published.get(tenant_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        if version == 0:
            self._published[tenant_id] = (0, None)
            return None
        last = (await self.store.read_stream(stream, from_version=version))[-1].decode(registry)
        assert isinstance(last, SchedulePublished)
        state = await self.schedule(tenant_id, last.schedule_id)
        assert state.generated is not None
        acts = tuple(
            adh.ScheduledActivity(s.agent_id, a.kind, a.start, a.end)
            for s in state.generated.shifts
            for a in s.activities
        )
        value = Published(last.schedule_id, acts)
        self._published[tenant_id] = (version, value)
        return value

    async def state_changes(
        self, tenant_id: str, start: datetime, end: datetime, agent_ids: Sequence[str] = ()
    ) -> list[adh.StateChange]:
        table = f'"{self.schema}".agent_state_log'
        async with self.pool.acquire() as conn:
            # The last change before the range gives the state at its start.
            rows = await conn.fetch(
                f"""
                select agent_id, occurred_at, state from {table}
                where tenant_id = $1 and occurred_at < $3
                  and (cardinality($4::text[]) = 0 or agent_id = any($4::text[]))
                  and occurred_at >= coalesce((
                      select max(p.occurred_at) from {table} p
                      where p.tenant_id = $1 and p.agent_id = {table}.agent_id
                        and p.occurred_at <= $2
                  ), $2)
                order by occurred_at
                """,
                tenant_id,
                start,
                end,
                list(agent_ids),
            )
        return [adh.StateChange(r["agent_id"], r["occurred_at"], r["state"]) for r in rows]

    async def adherence(
        self, tenant_id: str, start: datetime, end: datetime, agent_ids: Sequence[str] = ()
    ) -> tuple[str, list[adh.AgentAdherence]]:
        published = await self.published(tenant_id)
        if published is None:
            raise FailedPrecondition("no schedule is published", current_state="unpublished")
        changes = await self.state_changes(tenant_id, start, end, agent_ids)
        return published.schedule_id, adh.report(
            published.activities, changes, start, end, agent_ids
        )

    async def live(self, tenant_id: str, agent_ids: Sequence[str] = ()) -> list[adh.LiveStatus]:
        published = await self.published(tenant_id)
        if published is None:
            return []
        now = utc_now()
        agents = sorted(set(agent_ids) or {a.agent_id for a in published.activities})
        changes = await self.state_changes(tenant_id, now - timedelta(days=2), now, agents)
        return [adh.live_status(published.activities, changes, a, now) for a in agents]

    async def raise_exceptions(self, tenant_id: str) -> list[AdherenceExceptionRaised]:
        """Append an exception for every agent out of adherence beyond the threshold (once per
        episode: the request id names the agent and the episode's start)."""
        published = await self.published(tenant_id)
        if published is None:
            return []
        now = utc_now()
        raised: list[AdherenceExceptionRaised] = []
        for status in adh.exceptions_due(await self.live(tenant_id), now, self.adherence_threshold):
            event = AdherenceExceptionRaised(
                tenant_id=tenant_id,
                agent_id=status.agent_id,
                schedule_id=published.schedule_id,
                since=status.since,
                out_of_adherence_seconds=int((now - status.since).total_seconds()),
                scheduled=status.scheduled,
                state=status.state,
            )
            result = await self.store.append(
                adherence_stream(tenant_id, status.agent_id),
                [event],
                expected_version=ANY,
                request_id=f"adherence:{status.agent_id}:{status.since.isoformat()}",
                command={"agent_id": status.agent_id, "since": status.since.isoformat()},
            )
            if not result.replayed:
                raised.append(event)
        return raised

    async def tenants_with_schedules(self) -> list[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f'select distinct tenant_id from "{self.schema}".agent_state_log'
            )
        return [r["tenant_id"] for r in rows]

    async def run_exceptions(self, stop: asyncio.Event, interval_s: float) -> None:
        while not stop.is_set():
            for tenant_id in await self.tenants_with_schedules():
                try:
                    await self.raise_exceptions(tenant_id)
                except Exception:
                    _log.exception("adherence check of tenant %s failed", tenant_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)


def _placeholder(tenant_id: str, schedule_id: str) -> ScheduleGenerated:
    return ScheduleGenerated(
        tenant_id=tenant_id,
        schedule_id=schedule_id,
        week_start="",
        time_zone="UTC",
        shortfall=0,
        best_bound=0,
        gap_pct=0,
        solve_seconds=0,
        solver_status="",
        agents=0,
    )
