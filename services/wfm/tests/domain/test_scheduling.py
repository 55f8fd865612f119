"""The roster: every agent's week follows their local rules; coverage counts each agent once."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from contactcenter.wfm.demo import RULES, scenario
from contactcenter.wfm.domain.scheduling import (
    AgentSpec,
    ScheduleInfeasible,
    ScheduleProblem,
    ShiftTemplate,
    WorkRules,
    _start_band,
    solve,
)


@pytest.fixture(scope="module")
def roster_and_problem():  # type: ignore[no-untyped-def]
    problem = scenario(60, time_limit_s=5.0, seed=3)
    return solve(problem), problem


def test_every_agent_follows_their_local_rules(roster_and_problem) -> None:  # type: ignore[no-untyped-def]
    roster, problem = roster_and_problem
    rules = {r.rules_id: r for r in RULES}
    templates = {t.template_id: t for t in problem.templates}
    by_agent = defaultdict(list)
    for s in roster.shifts:
        by_agent[s.agent_id].append(s)
    assert set(by_agent) == {a.agent_id for a in problem.agents}
    for agent in problem.agents:
        r = rules[agent.rules_id]
        shifts = sorted(by_agent[agent.agent_id], key=lambda s: s.start)
        tz = ZoneInfo(agent.time_zone)
        t = templates[shifts[0].template_id]
        assert {s.template_id for s in shifts} == {t.template_id}
        assert len(shifts) <= t.days_per_week
        band = _start_band(r, t)
        for s in shifts:
            local = s.start.astimezone(tz)
            assert local.date() == s.local_date
            assert local.hour * 60 + local.minute in band
            assert s.local_date not in agent.time_off
            assert s.local_date.weekday() not in agent.unavailable_weekdays
            assert s.local_date.weekday() not in r.required_days_off
            paid = sum(
                (a.end - a.start).total_seconds() / 60 for a in s.activities if a.kind != "lunch"
            )
            assert paid == t.paid_minutes
        for a, b in itertools.pairwise(shifts):
            assert (b.start - a.end) >= timedelta(minutes=r.min_rest_minutes)
        if r.consecutive_days_off and not (agent.time_off or agent.unavailable_weekdays):
            off = sorted(
                {(d - problem.week_start).days for d in _week(problem)}
                - {(s.local_date - problem.week_start).days for s in shifts}
            )
            assert any(all((o + k) % 7 in off for k in range(len(off))) for o in off)


def _week(problem: ScheduleProblem) -> list[date]:
    return [problem.week_start + timedelta(days=d) for d in range(7)]


def test_coverage_counts_each_agent_once(roster_and_problem) -> None:  # type: ignore[no-untyped-def]
    roster, _problem = roster_and_problem
    on_duty: dict[object, float] = defaultdict(float)
    for s in roster.shifts:
        for a in s.activities:
            if a.kind != "work":
                continue
            t = a.start
            while t < a.end:
                slot = t - timedelta(minutes=t.minute % 30, seconds=t.second)
                on_duty[slot] += 0.5
                t += timedelta(minutes=15)
    scheduled: dict[object, float] = defaultdict(float)
    for (_queue, start), (_req, value) in roster.coverage.items():
        scheduled[start] += value
    assert all(value <= on_duty[start] + 1e-9 for start, value in scheduled.items())
    short = sum(max(0.0, req - got) for req, got in roster.coverage.values())
    assert short == pytest.approx(roster.shortfall)
    assert roster.best_bound <= roster.shortfall + 1e-9
    assert 0 <= roster.gap_pct <= 100


def test_multi_skill_agent_is_not_counted_twice() -> None:
    week = date(2026, 3, 2)
    t = ShiftTemplate("8h", 480, 5)
    rules = WorkRules("r", 0, 2400, 9 * 60, 9 * 60)
    problem = ScheduleProblem(
        week_start=week,
        time_zone="UTC",
        interval_minutes=30,
        templates=(t,),
        rules=(rules,),
        agents=(AgentSpec("a1", ("sales", "support"), "UTC", "r"),),
        requirements={(q, _at(week, 10)): 1 for q in ("sales", "support")},
        time_limit_s=5,
    )
    roster = solve(problem)
    assert roster.shortfall == 1  # one agent, two queues wanting one each at 10:00
    got = {q: v for (q, _), (_, v) in roster.coverage.items()}
    assert sum(got.values()) == 1


def _at(day: date, hour: int):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, time

    return datetime.combine(day, time(hour), UTC)


def test_an_agent_without_a_legal_week_is_named() -> None:
    week = date(2026, 3, 2)
    problem = ScheduleProblem(
        week_start=week,
        time_zone="UTC",
        interval_minutes=30,
        templates=(ShiftTemplate("8h", 480, 5),),
        rules=(WorkRules("r", 3000, 3000),),  # 50 hours a week from 40-hour templates
        agents=(AgentSpec("a7", ("sales",), "UTC", "r"),),
        requirements={},
        time_limit_s=2,
    )
    with pytest.raises(ScheduleInfeasible, match="a7"):
        solve(problem)
