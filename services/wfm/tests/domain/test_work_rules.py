"""Each work rule binds: a small roster where breaking the rule would cover more, solved with
the rule (the solver keeps it, at a shortfall) and without it (the same demand is covered)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from contactcenter.wfm.domain.scheduling import (
    AgentSpec,
    AssignedShift,
    Roster,
    ScheduleProblem,
    ShiftTemplate,
    WorkRules,
    rotation_templates,
    solve,
)

WEEK = date(2026, 3, 2)  # a Monday; New York moves its clocks forward on Sunday 8 March


def _template(template_id: str, hours: float, start_hour: float, days: int = 5) -> ShiftTemplate:
    minute = int(start_hour * 60)
    return ShiftTemplate(
        template_id,
        int(hours * 60),
        days,
        earliest_start_minute=minute,
        latest_start_minute=minute,
    )


EARLY = _template("early", 8, 6)  # 06:00-14:00
LATE = _template("late", 8, 16)  # 16:00-00:00 (ends at midnight)


def _demand(
    spans: Sequence[tuple[int, float, float]], zone: str = "UTC", agents: int = 1
) -> dict[tuple[str, datetime], int]:
    """(day of the week, from hour, to hour) in `zone`: `agents` wanted every 30 minutes."""
    tz = ZoneInfo(zone)
    out: dict[tuple[str, datetime], int] = {}
    for day, first, last in spans:
        local = datetime.combine(WEEK + timedelta(days=day), datetime.min.time())
        for k in range(int(first * 2), int(last * 2)):
            at = (local + timedelta(minutes=30 * k)).replace(tzinfo=tz).astimezone(UTC)
            out[("q", at)] = agents
    return out


def _solve(
    rules: WorkRules,
    templates: Sequence[ShiftTemplate],
    demand: dict[tuple[str, datetime], int],
    agents: Sequence[AgentSpec] = (),
    week: date = WEEK,
) -> Roster:
    return solve(
        ScheduleProblem(
            week_start=week,
            time_zone="UTC",
            interval_minutes=30,
            templates=tuple(templates),
            rules=(rules,),
            agents=tuple(agents) or (AgentSpec("a1", ("q",), "UTC", rules.rules_id),),
            requirements=demand,
            time_limit_s=10,
            relative_gap=0.0,
        )
    )


def _shifts(roster: Roster, agent_id: str = "a1") -> list[AssignedShift]:
    return sorted((s for s in roster.shifts if s.agent_id == agent_id), key=lambda s: s.start)


def _days(roster: Roster, agent_id: str = "a1") -> dict[int, str]:
    return {(s.local_date - WEEK).days: s.template_id for s in _shifts(roster, agent_id)}


def _rests(roster: Roster, agent_id: str = "a1") -> list[timedelta]:
    return [b.start - a.end for a, b in itertools.pairwise(_shifts(roster, agent_id))]


# --- templates per day and the rest between shifts ------------------------------------------

EARLY_THEN_LATE = _demand([(0, 6, 14), (1, 6, 14), (2, 6, 14), (3, 16, 24), (4, 16, 24)])


def test_the_solver_mixes_templates_across_the_week() -> None:
    rules = WorkRules("r", min_rest_minutes=11 * 60)
    roster = _solve(rules, (EARLY, LATE), EARLY_THEN_LATE)
    assert roster.shortfall == 0
    assert _days(roster) == {0: "early", 1: "early", 2: "early", 3: "late", 4: "late"}
    # One template for the week (the old model) leaves two days uncovered.
    single = _solve(replace(rules, mix_templates=False), (EARLY, LATE), EARLY_THEN_LATE)
    assert single.shortfall == 2 * 16
    assert len(set(_days(single).values())) == 1


LATE_THEN_EARLY = _demand([(0, 16, 24), (1, 6, 14), (2, 6, 14), (3, 6, 14), (4, 6, 14)])


def test_rest_between_shifts_across_midnight() -> None:
    """Late Monday (ends at midnight) then early Tuesday leaves 6 h: with 11 h of rest the
    solver gives up one of them; without the rule it covers both."""
    rested = _solve(WorkRules("r", min_rest_minutes=11 * 60), (EARLY, LATE), LATE_THEN_EARLY)
    assert rested.shortfall == 16  # one day of 8 h uncovered
    assert all(r >= timedelta(hours=11) for r in _rests(rested))
    unrested = _solve(WorkRules("r", min_rest_minutes=0), (EARLY, LATE), LATE_THEN_EARLY)
    assert unrested.shortfall == 0
    assert min(_rests(unrested)) == timedelta(hours=6)


def test_rest_in_the_agents_time_zone_across_a_clock_change() -> None:
    """New York, week of the spring change (Sunday 02:00 -> 03:00): Saturday's latest start and
    Sunday's earliest start of the same template are an hour closer than on the clock."""
    template = ShiftTemplate(
        "8h", 480, 7, earliest_start_minute=4 * 60, latest_start_minute=20 * 60
    )
    rules = WorkRules("r", min_rest_minutes=12 * 60, consecutive_days_off=False)
    zone = "America/New_York"
    demand = _demand([(5, 8, 16), (6, 4, 12)], zone)
    agent = AgentSpec("a1", ("q",), zone, "r")
    roster = _solve(rules, (template,), demand, [agent])
    assert len(_shifts(roster)) == 7
    assert all(r >= timedelta(hours=12) for r in _rests(roster))
    for s in _shifts(roster):
        assert s.start.astimezone(ZoneInfo(zone)).date() == s.local_date


def test_rest_across_the_week_boundary() -> None:
    """The previous week ended late on Sunday: no early shift on Monday morning."""
    demand = _demand([(d, 6, 14) for d in range(5)])
    previous_end = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # Sunday's late shift, midnight
    rules = WorkRules("r", min_rest_minutes=11 * 60, consecutive_days_off=False)
    tired = AgentSpec("a1", ("q",), "UTC", "r", previous_shift_end=previous_end)
    roster = _solve(rules, (EARLY,), demand, [tired])
    assert 0 not in _days(roster)
    assert roster.shortfall == 16
    assert _solve(rules, (EARLY,), demand).shortfall == 0


# --- rotations --------------------------------------------------------------------------------


def test_rotation_between_early_and_late_weeks() -> None:
    rules = WorkRules("r", rotation=(("early",), ("late",)), rotation_anchor=WEEK)
    agents = [
        AgentSpec("a1", ("q",), "UTC", "r"),
        AgentSpec("a2", ("q",), "UTC", "r", rotation_offset=1),
    ]
    early_demand = _demand([(d, 6, 14) for d in range(7)], agents=2)
    this_week = _solve(rules, (EARLY, LATE), early_demand, agents)
    assert set(_days(this_week, "a1").values()) == {"early"}
    assert set(_days(this_week, "a2").values()) == {"late"}
    assert this_week.shortfall > 7 * 16  # a2 may not help in the mornings this week
    next_week = WEEK + timedelta(days=7)
    assert rotation_templates(rules, next_week, 0) == ("late",)
    assert rotation_templates(rules, next_week, 1) == ("early",)
    free = _solve(replace(rules, rotation=()), (EARLY, LATE), early_demand, agents)
    assert free.shortfall < this_week.shortfall


def test_a_fixed_pattern_of_templates_over_three_weeks() -> None:
    mid = _template("mid", 8, 11)
    rules = WorkRules(
        "r", rotation=(("early",), ("mid",), ("late",)), rotation_anchor=WEEK - timedelta(days=7)
    )
    roster = _solve(rules, (EARLY, mid, LATE), _demand([(d, 6, 14) for d in range(7)]))
    assert set(_days(roster).values()) == {"mid"}  # week index 1 of the pattern


# --- hours, days and days off -----------------------------------------------------------------

SHORT_DAY = _template("short", 4, 9)  # 20 h a week, in the day
LONG_NIGHT = _template("long", 8, 0)  # 40 h a week, at night
DAY_DEMAND = _demand([(d, 9, 13) for d in range(5)])


def test_min_weekly_hours() -> None:
    free = _solve(WorkRules("r"), (SHORT_DAY, LONG_NIGHT), DAY_DEMAND)
    assert free.shortfall == 0
    bound = _solve(WorkRules("r", min_weekly_minutes=40 * 60), (SHORT_DAY, LONG_NIGHT), DAY_DEMAND)
    assert set(_days(bound).values()) == {"long"}
    assert bound.shortfall == 5 * 8


def test_max_weekly_hours() -> None:
    long_day = _template("long-day", 8, 9)
    demand = _demand([(d, 9, 17) for d in range(5)])
    free = _solve(WorkRules("r"), (SHORT_DAY, long_day), demand)
    assert free.shortfall == 0
    bound = _solve(WorkRules("r", max_weekly_minutes=30 * 60), (SHORT_DAY, long_day), demand)
    paid = sum((s.end - s.start).total_seconds() / 60 for s in _shifts(bound))
    assert paid <= 30 * 60
    assert bound.shortfall > 0


def test_min_and_max_daily_hours() -> None:
    long_day = _template("long-day", 8, 9)
    demand = _demand([(d, 9, 17) for d in range(5)])
    assert _solve(WorkRules("r"), (SHORT_DAY, long_day), demand).shortfall == 0
    capped = _solve(WorkRules("r", max_daily_minutes=6 * 60), (SHORT_DAY, long_day), demand)
    assert set(_days(capped).values()) == {"short"}
    assert capped.shortfall == 5 * 8
    floor = _solve(WorkRules("r", min_daily_minutes=6 * 60), (SHORT_DAY, LONG_NIGHT), DAY_DEMAND)
    assert set(_days(floor).values()) == {"long"}


WEEKDAYS = _demand([(d, 9, 17) for d in range(5)])
DAY = _template("day", 8, 9)


def test_max_consecutive_working_days() -> None:
    rules = WorkRules("r", consecutive_days_off=False)
    assert _solve(rules, (DAY,), WEEKDAYS).shortfall == 0
    bound = _solve(replace(rules, max_consecutive_days=4), (DAY,), WEEKDAYS)
    days = sorted(_days(bound))
    assert not any(days[k : k + 5] == list(range(days[k], days[k] + 5)) for k in range(len(days)))
    assert bound.shortfall == 16
    # The previous week's run counts: 3 days already worked, at most 1 more in a row.
    tired = AgentSpec("a1", ("q",), "UTC", "r", previous_consecutive_days=3)
    carried = _solve(replace(rules, max_consecutive_days=4), (DAY,), WEEKDAYS, [tired])
    assert not {0, 1} <= set(_days(carried))


def test_min_consecutive_working_days() -> None:
    demand = _demand([(d, 9, 17) for d in (0, 2, 4, 5, 6)])
    rules = WorkRules("r", consecutive_days_off=False)
    assert _solve(rules, (DAY,), demand).shortfall == 0
    bound = _solve(replace(rules, min_consecutive_days=2), (DAY,), demand)
    assert bound.shortfall > 0
    worked = [d in _days(bound) for d in range(7)]
    for d in range(6):  # no isolated working day inside the week
        if worked[d] and not (d > 0 and worked[d - 1]) and not worked[d + 1]:
            raise AssertionError(f"a run of one day on day {d}: {worked}")


def test_consecutive_days_off() -> None:
    demand = _demand([(d, 9, 17) for d in (0, 1, 3, 4, 5)])  # Wednesday and Sunday quiet
    assert _solve(WorkRules("r", consecutive_days_off=False), (DAY,), demand).shortfall == 0
    bound = _solve(WorkRules("r", consecutive_days_off=True), (DAY,), demand)
    off = sorted(set(range(7)) - set(_days(bound)))
    assert len(off) == 2 and (off[1] - off[0]) % 7 in (1, 6)
    assert bound.shortfall == 16


def test_required_days_off_and_days_per_week() -> None:
    demand = _demand([(d, 9, 17) for d in range(7)])
    roster = _solve(WorkRules("r", required_days_off=(0, 1)), (DAY,), demand)
    assert sorted(_days(roster)) == [2, 3, 4, 5, 6]
    assert roster.shortfall == 2 * 16
    four = _solve(WorkRules("r"), (_template("day4", 8, 9, days=4),), demand)
    assert len(_days(four)) == 4
