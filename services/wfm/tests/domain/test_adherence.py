"""Adherence and conformance against the schedule; exceptions beyond the threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contactcenter.wfm.domain.adherence import (
    ScheduledActivity,
    StateChange,
    exceptions_due,
    live_status,
    report,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _m(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


SCHEDULE = [
    ScheduledActivity("a1", "work", _m(0), _m(120)),
    ScheduledActivity("a1", "break", _m(120), _m(135)),
    ScheduledActivity("a1", "work", _m(135), _m(240)),
]


def test_given_a_late_login_and_a_long_break_then_adherence_and_conformance() -> None:
    changes = [
        StateChange("a1", _m(10), "available"),  # 10 minutes late
        StateChange("a1", _m(120), "away"),  # break on time
        StateChange("a1", _m(145), "available"),  # 10 minutes late back
        StateChange("a1", _m(200), "busy"),
    ]
    (row,) = report(SCHEDULE, changes, _m(0), _m(240))
    assert row.scheduled_minutes == 240
    assert row.out_of_adherence_minutes == 20
    assert row.adherence_pct == pytest.approx(100 * 220 / 240)
    assert row.conformance_pct == pytest.approx(100 * (110 + 95) / 225)


def test_given_an_agent_out_of_adherence_beyond_the_threshold_then_an_exception() -> None:
    changes = [StateChange("a1", _m(-5), "available"), StateChange("a1", _m(30), "away")]
    status = live_status(SCHEDULE, changes, "a1", _m(40))
    assert (status.in_adherence, status.since, status.scheduled) == (False, _m(30), "work")
    assert exceptions_due([status], _m(34), timedelta(minutes=5)) == []
    assert exceptions_due([status], _m(36), timedelta(minutes=5)) == [status]


def test_a_scheduled_break_makes_away_adherent() -> None:
    changes = [StateChange("a1", _m(-5), "available"), StateChange("a1", _m(121), "away")]
    status = live_status(SCHEDULE, changes, "a1", _m(125))
    assert status.in_adherence and status.since == _m(121)
