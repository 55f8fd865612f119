"""Given events / when command / then events for schedules and time off."""

from __future__ import annotations

import pytest

from contactcenter.contracts.errors import FailedPrecondition, NotFound
from contactcenter.wfm.domain.events import ScheduleGenerated, SchedulePublished
from contactcenter.wfm.domain.schedule import (
    decide_generate,
    decide_publish,
    fold,
)


def _generated() -> ScheduleGenerated:
    return ScheduleGenerated(
        tenant_id="t1",
        schedule_id="w10",
        week_start="2026-03-02",
        time_zone="UTC",
        shortfall=1,
        best_bound=1,
        gap_pct=0,
        solve_seconds=1,
        solver_status="OPTIMAL",
        agents=3,
    )


def test_given_nothing_when_publish_then_not_found() -> None:
    with pytest.raises(NotFound):
        decide_publish(fold("w10", []), "t1")


def test_given_a_draft_when_publish_then_published() -> None:
    (event,) = decide_publish(fold("w10", [_generated()]), "t1")
    assert isinstance(event, SchedulePublished) and event.week_start == "2026-03-02"


def test_given_a_published_schedule_when_regenerate_or_publish_then_refused() -> None:
    state = fold(
        "w10",
        [
            _generated(),
            SchedulePublished(tenant_id="t1", schedule_id="w10", week_start="2026-03-02"),
        ],
    )
    assert state.status == "published"
    with pytest.raises(FailedPrecondition):
        decide_generate(state, _generated())
    with pytest.raises(FailedPrecondition):
        decide_publish(state, "t1")
