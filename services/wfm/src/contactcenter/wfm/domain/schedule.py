"""The schedule aggregate and time off: decisions over their events (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from contactcenter.contracts.errors import FailedPrecondition, NotFound, ValidationFailed
from contactcenter.wfm.domain.events import (
    ScheduleGenerated,
    SchedulePublished,
    TimeOffGranted,
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


def decide_time_off(
    tenant_id: str,
    time_off_id: str,
    agent_id: str,
    first: str,
    last: str,
    reason: str,
) -> list[WfmEvent]:
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
    return [
        TimeOffGranted(
            tenant_id=tenant_id,
            time_off_id=time_off_id,
            agent_id=agent_id,
            first_date=first_d.isoformat(),
            last_date=last_d.isoformat(),
            reason=reason,
        )
    ]


def days_off(grants: Sequence[TimeOffGranted]) -> set[date]:
    out: set[date] = set()
    for g in grants:
        d = date.fromisoformat(g.first_date)
        while d <= date.fromisoformat(g.last_date):
            out.add(d)
            d += timedelta(days=1)
    return out
