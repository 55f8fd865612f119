"""Given events / when command / then events: the time-off lifecycle (requested -> approved or
denied), and the published shifts an approval affects."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from contactcenter.contracts.errors import FailedPrecondition, NotFound, ValidationFailed
from contactcenter.wfm.domain.events import (
    PublishedShiftsAffected,
    ShiftData,
    TimeOffApproved,
    TimeOffDenied,
    TimeOffGranted,
    TimeOffRequested,
    WfmEvent,
)
from contactcenter.wfm.domain.schedule import (
    PublishedWeek,
    approved_days,
    days_off,
    decide_approve_time_off,
    decide_deny_time_off,
    decide_request_time_off,
    fold_time_off,
)

ID = "off-1"


def _requested(first: str = "2026-03-03", last: str = "2026-03-05") -> TimeOffRequested:
    return TimeOffRequested(
        tenant_id="t1",
        time_off_id=ID,
        agent_id="a1",
        first_date=first,
        last_date=last,
        reason="vacation",
        requested_by="a1",
    )


def _approved() -> TimeOffApproved:
    return TimeOffApproved(
        tenant_id="t1",
        time_off_id=ID,
        agent_id="a1",
        first_date="2026-03-03",
        last_date="2026-03-05",
        decided_by="sup",
    )


def _denied() -> TimeOffDenied:
    return TimeOffDenied(tenant_id="t1", time_off_id=ID, agent_id="a1", decided_by="sup")


def _shift(agent: str, day: str) -> ShiftData:
    start = datetime.fromisoformat(f"{day}T09:00:00+00:00")
    return ShiftData(
        agent_id=agent,
        template_id="day",
        local_date=day,
        start=start,
        end=start.replace(hour=17),
    )


def test_given_nothing_when_requested_then_pending() -> None:
    state = fold_time_off(ID, [])
    (event,) = decide_request_time_off(
        state, "t1", "a1", "2026-03-03", "2026-03-05", "vacation", "a1"
    )
    envelope = {"event_id", "occurred_at", "correlation_id", "causation_id"}
    assert event.model_dump(exclude=envelope) == _requested().model_dump(exclude=envelope)
    assert fold_time_off(ID, [event]).status == "pending"
    # Pending time off removes no availability.
    assert approved_days([fold_time_off(ID, [event])]) == {}


def test_when_the_request_is_backwards_then_the_field_is_named() -> None:
    state = fold_time_off(ID, [])
    with pytest.raises(ValidationFailed) as error:
        decide_request_time_off(state, "t1", "a1", "2026-03-05", "2026-03-03", "", "a1")
    assert error.value.field_violations[0].field == "last_date"
    with pytest.raises(ValidationFailed) as error:
        decide_request_time_off(state, "t1", "a1", "March", "2026-03-03", "", "a1")
    assert error.value.field_violations[0].field == "first_date"
    with pytest.raises(ValidationFailed) as error:
        decide_request_time_off(state, "t1", "", "2026-03-03", "2026-03-03", "", "a1")
    assert error.value.field_violations[0].field == "agent_id"


def test_given_pending_when_approved_then_approved_and_the_days_are_off() -> None:
    state = fold_time_off(ID, [_requested()])
    events = decide_approve_time_off(state, "t1", "sup", "enjoy")
    assert [type(e) for e in events] == [TimeOffApproved]
    approved = events[0]
    assert isinstance(approved, TimeOffApproved)
    assert (approved.agent_id, approved.first_date, approved.last_date, approved.decided_by) == (
        "a1",
        "2026-03-03",
        "2026-03-05",
        "sup",
    )
    after = fold_time_off(ID, [_requested(), *events])
    assert after.status == "approved"
    assert approved_days([after]) == {"a1": {date(2026, 3, d) for d in (3, 4, 5)}}


def test_given_pending_when_denied_then_denied_and_nothing_is_off() -> None:
    state = fold_time_off(ID, [_requested()])
    events = decide_deny_time_off(state, "t1", "sup", "busy week")
    assert [type(e) for e in events] == [TimeOffDenied]
    after = fold_time_off(ID, [_requested(), *events])
    assert (after.status, after.note) == ("denied", "busy week")
    assert approved_days([after]) == {}


@pytest.mark.parametrize(
    ("given", "current"),
    [([_requested(), _approved()], "approved"), ([_requested(), _denied()], "denied")],
)
def test_given_decided_when_decided_again_then_failed_precondition_naming_the_state(
    given: list[WfmEvent], current: str
) -> None:
    state = fold_time_off(ID, given)
    for decide in (
        lambda: decide_approve_time_off(state, "t1", "sup", ""),
        lambda: decide_deny_time_off(state, "t1", "sup", ""),
    ):
        with pytest.raises(FailedPrecondition) as error:
            decide()
        assert error.value.current_state == current
        assert current in str(error.value)


def test_given_requested_when_requested_again_then_failed_precondition() -> None:
    state = fold_time_off(ID, [_requested()])
    with pytest.raises(FailedPrecondition) as error:
        decide_request_time_off(state, "t1", "a1", "2026-03-03", "2026-03-03", "", "a1")
    assert error.value.current_state == "pending"


def test_given_nothing_when_decided_then_not_found() -> None:
    with pytest.raises(NotFound):
        decide_approve_time_off(fold_time_off(ID, []), "t1", "sup", "")
    with pytest.raises(NotFound):
        decide_deny_time_off(fold_time_off(ID, []), "t1", "sup", "")


def test_when_approved_over_a_published_schedule_then_the_affected_shifts_are_named() -> None:
    state = fold_time_off(ID, [_requested()])
    week = PublishedWeek(
        "week-10",
        "2026-03-02",
        [_shift("a1", "2026-03-02"), _shift("a1", "2026-03-04"), _shift("a2", "2026-03-04")],
    )
    other = PublishedWeek("week-11", "2026-03-09", [_shift("a1", "2026-03-09")])
    events = decide_approve_time_off(state, "t1", "sup", "", [week, other])
    assert [type(e) for e in events] == [TimeOffApproved, PublishedShiftsAffected]
    affected = events[1]
    assert isinstance(affected, PublishedShiftsAffected)
    assert affected.schedule_id == "week-10"
    assert [(s.agent_id, s.local_date) for s in affected.shifts] == [("a1", "2026-03-04")]
    assert fold_time_off(ID, [_requested(), *events]).affected == (affected,)


def test_time_off_granted_before_the_workflow_still_counts() -> None:
    granted = TimeOffGranted(
        tenant_id="t1",
        time_off_id="old",
        agent_id="a1",
        first_date="2026-03-03",
        last_date="2026-03-04",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert days_off([granted]) == {date(2026, 3, 3), date(2026, 3, 4)}
