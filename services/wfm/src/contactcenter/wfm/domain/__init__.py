"""The pure WFM domain: queueing formulas, forecasting, scheduling, adherence, and the events
of schedules, time off and adherence exceptions."""

from contactcenter.wfm.domain.events import (
    EVENT_TYPES,
    AdherenceExceptionRaised,
    PublishedShiftsAffected,
    ScheduleGenerated,
    SchedulePublished,
    TimeOffApproved,
    TimeOffDenied,
    TimeOffGranted,
    TimeOffRequested,
    WfmEvent,
)

__all__ = [
    "EVENT_TYPES",
    "AdherenceExceptionRaised",
    "PublishedShiftsAffected",
    "ScheduleGenerated",
    "SchedulePublished",
    "TimeOffApproved",
    "TimeOffDenied",
    "TimeOffGranted",
    "TimeOffRequested",
    "WfmEvent",
]
