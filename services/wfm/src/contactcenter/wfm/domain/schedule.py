"""The schedule aggregate and time off: decisions over their events (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from contactcenter.contracts.errors import FailedPrecondition, NotFound, ValidationFailed
from contactcenter.wfm.domain.events import (
    PublishedShiftsAffected,
    ScheduleGenerated,
    SchedulePublished,
    ShiftData,
    TimeOffApproved,
    TimeOffDenied,
    TimeOffGranted,
    TimeOffRequested,
    WfmEvent,
)

MAX_TIME_OFF_DAYS = 62


@dataclass(frozen=True, slots=True)
class ScheduleState:
    schedule_id: str
    generated: ScheduleGenerated | None = None
    published: bool = False

    @property
    def status(self) -> str:
        if self.generated is None:
            return "absent"
        return "published" if self.published else "draft"


def evolve(state: ScheduleState, event: WfmEvent) -> ScheduleState:
    if isinstance(event, ScheduleGenerated):
        return ScheduleState(state.schedule_id, event, False)
    if isinstance(event, SchedulePublished):
        return ScheduleState(state.schedule_id, state.generated, True)
    return state


def fold(schedule_id: str, events: Iterable[WfmEvent]) -> ScheduleState:
    state = ScheduleState(schedule_id)
    for e in events:
        state = evolve(state, e)
    return state


def decide_generate(state: ScheduleState, generated: ScheduleGenerated) -> list[WfmEvent]:
    """A draft may be regenerated; a published schedule is frozen."""
    if state.published:
        raise FailedPrecondition(
            f"schedule {state.schedule_id!r} is published and cannot be regenerated",
            current_state="published",
        )
    return [generated]


def decide_publish(state: ScheduleState, tenant_id: str) -> list[WfmEvent]:
    if state.generated is None:
        raise NotFound(
            f"no schedule {state.schedule_id!r}",
            resource_type="schedule",
            resource_name=state.schedule_id,
        )
    if state.published:
        raise FailedPrecondition(
            f"schedule {state.schedule_id!r} is already published", current_state="published"
        )
    return [
        SchedulePublished(
            tenant_id=tenant_id,
            schedule_id=state.schedule_id,
            week_start=state.generated.week_start,
        )
    ]


def parse_date(field: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed([(field, "must be a date YYYY-MM-DD")]) from None


def _validate_time_off(agent_id: str, first: str, last: str) -> tuple[date, date]:
    violations: list[tuple[str, str]] = []
    if not agent_id:
        violations.append(("agent_id", "is required"))
    first_d = parse_date("first_date", first)
    last_d = parse_date("last_date", last)
    if last_d < first_d:
        violations.append(("last_date", "is before first_date"))
    elif (last_d - first_d).days + 1 > MAX_TIME_OFF_DAYS:
        violations.append(("last_date", f"time off is at most {MAX_TIME_OFF_DAYS} days"))
    if violations:
        raise ValidationFailed(violations)
    return first_d, last_d


# --- time off: requested (pending), then approved or denied ---------------------------------

PENDING, APPROVED, DENIED = "pending", "approved", "denied"


@dataclass(frozen=True, slots=True)
class TimeOffState:
    time_off_id: str
    requested: TimeOffRequested | None = None
    status: str = "absent"  # absent | pending | approved | denied
    decided_by: str = ""
    note: str = ""
    affected: tuple[PublishedShiftsAffected, ...] = ()


def evolve_time_off(state: TimeOffState, event: WfmEvent) -> TimeOffState:
    if isinstance(event, TimeOffRequested):
        return TimeOffState(state.time_off_id, event, PENDING)
    if isinstance(event, TimeOffApproved):
        return TimeOffState(
            state.time_off_id, state.requested, APPROVED, event.decided_by, event.note
        )
    if isinstance(event, TimeOffDenied):
        return TimeOffState(
            state.time_off_id, state.requested, DENIED, event.decided_by, event.note
        )
    if isinstance(event, PublishedShiftsAffected):
        return TimeOffState(
            state.time_off_id,
            state.requested,
            state.status,
            state.decided_by,
            state.note,
            (*state.affected, event),
        )
    return state


def fold_time_off(time_off_id: str, events: Iterable[WfmEvent]) -> TimeOffState:
    state = TimeOffState(time_off_id)
    for e in events:
        state = evolve_time_off(state, e)
    return state


def decide_request_time_off(
    state: TimeOffState,
    tenant_id: str,
    agent_id: str,
    first: str,
    last: str,
    reason: str,
    requested_by: str,
) -> list[WfmEvent]:
    """A new request is pending; its id is taken once."""
    first_d, last_d = _validate_time_off(agent_id, first, last)
    if state.status != "absent":
        raise FailedPrecondition(
            f"time off {state.time_off_id!r} was already requested ({state.status})",
            current_state=state.status,
        )
    return [
        TimeOffRequested(
            tenant_id=tenant_id,
            time_off_id=state.time_off_id,
            agent_id=agent_id,
            first_date=first_d.isoformat(),
            last_date=last_d.isoformat(),
            reason=reason,
            requested_by=requested_by,
        )
    ]


def _decidable(state: TimeOffState, verb: str) -> TimeOffRequested:
    if state.requested is None:
        raise NotFound(
            f"no time off {state.time_off_id!r}",
            resource_type="time_off",
            resource_name=state.time_off_id,
        )
    if state.status != PENDING:
        raise FailedPrecondition(
            f"time off {state.time_off_id!r} is {state.status} and cannot be {verb}",
            current_state=state.status,
        )
    return state.requested


@dataclass(frozen=True, slots=True)
class PublishedWeek:
    """A published schedule (the live one of its week)."""

    schedule_id: str
    week_start: str
    shifts: Sequence[ShiftData]


def decide_approve_time_off(
    state: TimeOffState,
    tenant_id: str,
    decided_by: str,
    note: str,
    published: Sequence[PublishedWeek] = (),
) -> list[WfmEvent]:
    """Approve a pending request; for every published schedule with shifts of the agent on the
    days off, say which shifts are affected."""
    requested = _decidable(state, "approved")
    events: list[WfmEvent] = [
        TimeOffApproved(
            tenant_id=tenant_id,
            time_off_id=state.time_off_id,
            agent_id=requested.agent_id,
            first_date=requested.first_date,
            last_date=requested.last_date,
            decided_by=decided_by,
            note=note,
        )
    ]
    for week in published:
        shifts = tuple(
            s
            for s in week.shifts
            if s.agent_id == requested.agent_id
            and requested.first_date <= s.local_date <= requested.last_date
        )
        if shifts:
            events.append(
                PublishedShiftsAffected(
                    tenant_id=tenant_id,
                    time_off_id=state.time_off_id,
                    agent_id=requested.agent_id,
                    schedule_id=week.schedule_id,
                    week_start=week.week_start,
                    shifts=shifts,
                )
            )
    return events


def decide_deny_time_off(
    state: TimeOffState, tenant_id: str, decided_by: str, note: str
) -> list[WfmEvent]:
    requested = _decidable(state, "denied")
    return [
        TimeOffDenied(
            tenant_id=tenant_id,
            time_off_id=state.time_off_id,
            agent_id=requested.agent_id,
            decided_by=decided_by,
            note=note,
        )
    ]


def approved_days(states: Iterable[TimeOffState]) -> dict[str, set[date]]:
    """Local dates off per agent: approved requests only (pending and denied ones change
    nothing)."""
    out: dict[str, set[date]] = {}
    for st in states:
        if st.status == APPROVED and st.requested is not None:
            d = date.fromisoformat(st.requested.first_date)
            while d <= date.fromisoformat(st.requested.last_date):
                out.setdefault(st.requested.agent_id, set()).add(d)
                d += timedelta(days=1)
    return out


def days_off(grants: Sequence[TimeOffGranted]) -> set[date]:
    out: set[date] = set()
    for g in grants:
        d = date.fromisoformat(g.first_date)
        while d <= date.fromisoformat(g.last_date):
            out.add(d)
            d += timedelta(days=1)
    return out
