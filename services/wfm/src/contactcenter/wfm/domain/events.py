"""The events of the WFM context: `wfm.<EventName>.v1`, published on `cc.wfm.events.v1`.

Streams: `wfm_schedule/<tenant>/<schedule_id>` (a schedule: generated, then published),
`wfm_publication/<tenant>/current` (which schedule is live), `wfm_time_off_request/<tenant>/<id>`
(a time-off request: requested, approved or denied), `wfm_time_off/<tenant>/<agent>` (time off
granted directly, before requests were approved: read as approved) and
`wfm_adherence/<tenant>/<agent>` (exceptions). Times are UTC instants; local dates are ISO
strings.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contactcenter.contracts.events import DomainEvent, event
from contactcenter.contracts.streams import stream_id


class WfmEvent(DomainEvent):
    """Base of every WFM event (not itself registered)."""


class ActivityData(BaseModel):
    """One piece of a shift (a value, not an event)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    start: AwareDatetime
    end: AwareDatetime


class ShiftData(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    agent_id: str
    template_id: str
    local_date: str
    start: AwareDatetime
    end: AwareDatetime
    activities: tuple[ActivityData, ...] = ()


@event
class ScheduleGenerated(WfmEvent):
    event_type: ClassVar[str] = "wfm.ScheduleGenerated.v1"

    schedule_id: str
    week_start: str
    time_zone: str
    shortfall: float
    best_bound: float
    gap_pct: float
    solve_seconds: float
    solver_status: str
    agents: int = Field(ge=0)
    shifts: tuple[ShiftData, ...] = ()


@event
class SchedulePublished(WfmEvent):
    event_type: ClassVar[str] = "wfm.SchedulePublished.v1"

    schedule_id: str
    week_start: str


@event
class TimeOffGranted(WfmEvent):
    event_type: ClassVar[str] = "wfm.TimeOffGranted.v1"

    time_off_id: str
    agent_id: str
    first_date: str
    last_date: str
    reason: str = ""


@event
class TimeOffRequested(WfmEvent):
    """An agent (or a supervisor for them) asked for time off: pending until decided."""

    event_type: ClassVar[str] = "wfm.TimeOffRequested.v1"

    time_off_id: str
    agent_id: str
    first_date: str
    last_date: str
    reason: str = ""
    requested_by: str = ""


@event
class TimeOffApproved(WfmEvent):
    """A supervisor approved the request: schedules generated from now on keep the days off."""

    event_type: ClassVar[str] = "wfm.TimeOffApproved.v1"

    time_off_id: str
    agent_id: str
    first_date: str
    last_date: str
    decided_by: str
    note: str = ""


@event
class TimeOffDenied(WfmEvent):
    event_type: ClassVar[str] = "wfm.TimeOffDenied.v1"

    time_off_id: str
    agent_id: str
    decided_by: str
    note: str = ""


@event
class PublishedShiftsAffected(WfmEvent):
    """Approved time off overlaps shifts of a published schedule (the agent's shifts named)."""

    event_type: ClassVar[str] = "wfm.PublishedShiftsAffected.v1"

    time_off_id: str
    agent_id: str
    schedule_id: str
    week_start: str
    shifts: tuple[ShiftData, ...]


@event
class AdherenceExceptionRaised(WfmEvent):
    """An agent was out of adherence for longer than the threshold."""

    event_type: ClassVar[str] = "wfm.AdherenceExceptionRaised.v1"

    agent_id: str
    schedule_id: str
    since: AwareDatetime
    out_of_adherence_seconds: int = Field(ge=0)
    scheduled: str
    state: str


EVENT_TYPES: tuple[type[WfmEvent], ...] = (
    ScheduleGenerated,
    SchedulePublished,
    TimeOffGranted,
    TimeOffRequested,
    TimeOffApproved,
    TimeOffDenied,
    PublishedShiftsAffected,
    AdherenceExceptionRaised,
)


def schedule_stream(tenant_id: str, schedule_id: str) -> str:
    return stream_id("wfm_schedule", tenant_id, schedule_id)


def publication_stream(tenant_id: str) -> str:
    return stream_id("wfm_publication", tenant_id, "current")


def time_off_stream(tenant_id: str, agent_id: str) -> str:
    return stream_id("wfm_time_off", tenant_id, agent_id)


def time_off_request_stream(tenant_id: str, time_off_id: str) -> str:
    """One time-off request: requested, then approved or denied (and the shifts it affects)."""
    return stream_id("wfm_time_off_request", tenant_id, time_off_id)


def adherence_stream(tenant_id: str, agent_id: str) -> str:
    return stream_id("wfm_adherence", tenant_id, agent_id)
