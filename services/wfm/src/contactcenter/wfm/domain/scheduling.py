"""Named weekly rosters with OR-Tools CP-SAT.

Decomposition: every agent gets one weekly pattern = (shift template, block of days off, daily
start time on a 30-minute grid of their LOCAL clock, lunch offset). Each pattern satisfies the
agent's local labour rules by construction (weekly minutes, start window, days off consecutive
and covering their unavailability, rotation and time off, rest between shifts: the same start
every day leaves 24 h - shift length, checked against the minimum rest). Agents with the same
skills, rules, time zone and unavailability are one group: the model chooses how many agents of
a group take each pattern (integer counts), which removes the symmetry between identical agents
entirely; names are given afterwards in agent-id order.

Coverage is measured in the queue's time zone on its intervals, in half-agent units (a 15-minute
break in a 30-minute interval counts half; lunch counts zero). An agent with several skills is
allocated per interval to at most one queue (allocation variables whose sum is the group's agents
on duty), so one agent is never counted twice. The objective is the total shortfall in
half-agent intervals; the gap is (objective - best bound) / max(1, objective).
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ortools.sat.python import cp_model

#: Start times are on this grid (minutes); activities on the 15-minute grid.
START_GRID_MINUTES = 30
SLOT_MINUTES = 15


@dataclass(frozen=True, slots=True)
class ShiftTemplate:
    template_id: str
    length_minutes: int  # start to end, lunch included
    days_per_week: int
    lunch_minutes: int = 0
    lunch_offsets_minutes: tuple[int, ...] = ()
    break_minutes: int = 0
    break_offsets_minutes: tuple[int, ...] = ()

    @property
    def paid_minutes(self) -> int:
        return self.length_minutes - (self.lunch_minutes if self.lunch_offsets_minutes else 0)


@dataclass(frozen=True, slots=True)
class WorkRules:
    rules_id: str
    min_weekly_minutes: int = 0
    max_weekly_minutes: int = 7 * 24 * 60
    earliest_start_minute: int = 0
    latest_start_minute: int = 24 * 60 - START_GRID_MINUTES
    min_rest_minutes: int = 0
    consecutive_days_off: bool = True
    template_ids: tuple[str, ...] = ()
    required_days_off: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentSpec:
    agent_id: str
    skills: tuple[str, ...]
    time_zone: str
    rules_id: str
    unavailable_weekdays: tuple[int, ...] = ()
    #: local dates off (approved time off)
    time_off: tuple[date, ...] = ()


@dataclass(frozen=True, slots=True)
class ScheduleProblem:
    week_start: date  # local date in the queue's time zone
    time_zone: str
    interval_minutes: int
    templates: tuple[ShiftTemplate, ...]
    rules: tuple[WorkRules, ...]
    agents: tuple[AgentSpec, ...]
    #: (queue_id, interval start UTC) -> agents required
    requirements: Mapping[tuple[str, datetime], int]
    time_limit_s: float = 50.0
    relative_gap: float = 0.005
    workers: int = 2


@dataclass(frozen=True, slots=True)
class Activity:
    kind: str  # work | break | lunch
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class AssignedShift:
    agent_id: str
    template_id: str
    local_date: date
    start: datetime
    end: datetime
    activities: tuple[Activity, ...]


@dataclass(frozen=True, slots=True)
class Roster:
    shifts: tuple[AssignedShift, ...]
    #: (queue_id, interval start) -> (required, scheduled agents)
    coverage: dict[tuple[str, datetime], tuple[int, float]]
    shortfall: float  # agent-intervals
    best_bound: float
    gap_pct: float
    solve_seconds: float
    solver_status: str
    unassigned: tuple[str, ...] = field(default_factory=tuple)


class ScheduleInfeasible(ValueError):
    """An agent has no pattern that satisfies their rules (named), or the solver found none."""


@dataclass(frozen=True, slots=True)
class _Pattern:
    template: ShiftTemplate
    days: tuple[int, ...]  # local day indexes 0..6 of the week worked
    start_minute: int
    lunch_offset: int | None
    #: interval index -> half-agent units on duty
    units: tuple[tuple[int, int], ...]


def _days_off_blocks(
    rules: WorkRules, off_needed: int, forced_off: set[int]
) -> list[frozenset[int]]:
    blocks: set[frozenset[int]] = set()
    if rules.consecutive_days_off:
        for first in range(7):
            blocks.add(frozenset((first + k) % 7 for k in range(off_needed)))
        found = sorted((b for b in blocks if forced_off <= b), key=sorted)
        if found:
            return found
        # Time off and unavailability that no consecutive block holds override the rule.
    blocks.update(frozenset(c) for c in itertools.combinations(range(7), off_needed))
    return sorted((b for b in blocks if forced_off <= b), key=sorted)


def _activities(
    t: ShiftTemplate, start: datetime, lunch_offset: int | None
) -> list[tuple[str, datetime, datetime]]:
    """Work / break / lunch pieces of one shift (absolute times, timezone-aware)."""
    off: list[tuple[int, int, str]] = []
    for b in t.break_offsets_minutes:
        off.append((b, b + t.break_minutes, "break"))
    if lunch_offset is not None and t.lunch_minutes:
        off.append((lunch_offset, lunch_offset + t.lunch_minutes, "lunch"))
    off.sort()
    pieces: list[tuple[str, datetime, datetime]] = []
    cursor = 0
    for a, b, kind in off:
        if a > cursor:
            pieces.append(("work", start + timedelta(minutes=cursor), start + timedelta(minutes=a)))
        pieces.append((kind, start + timedelta(minutes=a), start + timedelta(minutes=b)))
        cursor = b
    if cursor < t.length_minutes:
        pieces.append(
            ("work", start + timedelta(minutes=cursor), start + timedelta(minutes=t.length_minutes))
        )
    return pieces


class _Calendar:
    def __init__(self, problem: ScheduleProblem) -> None:
        self.tz = ZoneInfo(problem.time_zone)
        start_local = datetime.combine(problem.week_start, datetime.min.time(), self.tz)
        end_local = datetime.combine(
            problem.week_start + timedelta(days=7), datetime.min.time(), self.tz
        )
        self.start = start_local.astimezone(UTC)
        self.end = end_local.astimezone(UTC)
        self.minutes = problem.interval_minutes
        self.count = int((self.end - self.start) / timedelta(minutes=self.minutes))

    def interval_of(self, instant: datetime) -> int | None:
        offset = (instant.astimezone(UTC) - self.start) / timedelta(minutes=self.minutes)
        index = int(offset // 1)
        return index if 0 <= index < self.count else None

    def interval_start(self, index: int) -> datetime:
        return self.start + timedelta(minutes=self.minutes * index)


def _local_start(day: date, minute: int, tz: ZoneInfo) -> datetime:
    naive = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def _units(cal: _Calendar, t: ShiftTemplate, start: datetime, lunch: int | None) -> dict[int, int]:
    """Half-agent units per queue interval of one shift (15-minute pieces: 2 per 30 minutes)."""
    units: dict[int, int] = defaultdict(int)
    quarter = timedelta(minutes=SLOT_MINUTES)
    per_interval = cal.minutes // SLOT_MINUTES
    for kind, a, b in _activities(t, start, lunch):
        if kind != "work":
            continue
        cursor = a
        while cursor < b:
            index = cal.interval_of(cursor)
            if index is not None:
                units[index] += 1
            cursor += quarter
    # Units are quarters; scale to half-agent units for 30-minute intervals.
    scale = 2 / per_interval
    return (
        {k: v for k, v in units.items() if v}
        if scale == 1
        else {k: round(v * scale) for k, v in units.items() if round(v * scale)}
    )


def _group_patterns(
    problem: ScheduleProblem, cal: _Calendar, agent: AgentSpec, rules: WorkRules
) -> list[_Pattern]:
    tz = ZoneInfo(agent.time_zone)
    local_days = [problem.week_start + timedelta(days=d) for d in range(7)]
    forced = {d for d, day in enumerate(local_days) if day.weekday() in agent.unavailable_weekdays}
    forced |= {d for d, day in enumerate(local_days) if day.weekday() in rules.required_days_off}
    time_off = {d for d, day in enumerate(local_days) if day in agent.time_off}
    forced |= time_off
    allowed = [
        t
        for t in problem.templates
        if (not rules.template_ids or t.template_id in rules.template_ids)
        and t.paid_minutes * t.days_per_week <= rules.max_weekly_minutes
        and 24 * 60 - t.length_minutes >= rules.min_rest_minutes
    ]
    patterns: list[_Pattern] = []
    for t in allowed:
        # More days unavailable than the template has off: the agent works fewer days; time
        # off is paid and counts toward the weekly minimum.
        off_needed = max(7 - t.days_per_week, len(forced))
        worked = 7 - off_needed
        paid = t.paid_minutes * (worked + min(len(time_off), t.days_per_week - worked))
        if paid < rules.min_weekly_minutes and worked == t.days_per_week:
            continue
        if off_needed > 7 - t.days_per_week and not forced:
            continue
        for block in _days_off_blocks(rules, off_needed, forced):
            days = tuple(d for d in range(7) if d not in block)
            first = rules.earliest_start_minute
            first += (-first) % START_GRID_MINUTES
            for minute in range(first, rules.latest_start_minute + 1, START_GRID_MINUTES):
                for lunch in t.lunch_offsets_minutes or (None,):
                    units: dict[int, int] = defaultdict(int)
                    for d in days:
                        start = _local_start(local_days[d], minute, tz)
                        for k, v in _units(cal, t, start, lunch).items():
                            units[k] += v
                    patterns.append(_Pattern(t, days, minute, lunch, tuple(sorted(units.items()))))
    return patterns


def solve(problem: ScheduleProblem) -> Roster:
    """Solve the roster; raises ScheduleInfeasible naming an agent without a legal pattern."""
    started = time.perf_counter()
    cal = _Calendar(problem)
    rules_by_id = {r.rules_id: r for r in problem.rules}
    queues = sorted({q for q, _ in problem.requirements})
    need: dict[tuple[str, int], int] = {}
    for (queue, instant), agents in problem.requirements.items():
        index = cal.interval_of(instant)
        if index is not None and agents > 0:
            need[(queue, index)] = need.get((queue, index), 0) + 2 * agents  # half-agent units

    groups: dict[tuple[object, ...], list[AgentSpec]] = defaultdict(list)
    for agent in sorted(problem.agents, key=lambda a: a.agent_id):
        if agent.rules_id not in rules_by_id:
            raise ScheduleInfeasible(f"agent {agent.agent_id}: unknown rules {agent.rules_id!r}")
        key = (
            tuple(sorted(set(agent.skills) & set(queues))),
            agent.time_zone,
            agent.rules_id,
            tuple(sorted(agent.unavailable_weekdays)),
            tuple(sorted(agent.time_off)),
        )
        groups[key].append(agent)

    model = cp_model.CpModel()
    contributions: dict[tuple[str, int], list[cp_model.LinearExprT]] = defaultdict(list)
    group_vars: list[tuple[list[AgentSpec], list[_Pattern], list[cp_model.IntVar]]] = []
    for gi, (key, members) in enumerate(groups.items()):
        skills = key[0]
        assert isinstance(skills, tuple)
        patterns = _group_patterns(problem, cal, members[0], rules_by_id[members[0].rules_id])
        if not patterns:
            raise ScheduleInfeasible(
                f"agent {members[0].agent_id}: no shift pattern satisfies the rules, "
                "availability and time off"
            )
        size = len(members)
        xs = [model.new_int_var(0, size, f"x{gi}_{p}") for p in range(len(patterns))]
        model.add(sum(xs) == size)
        group_vars.append((members, patterns, xs))
        on: dict[int, list[tuple[int, cp_model.IntVar]]] = defaultdict(list)
        for p, pattern in enumerate(patterns):
            for index, units in pattern.units:
                on[index].append((units, xs[p]))
        relevant = [q for q in skills if isinstance(q, str)]
        for index, terms in on.items():
            wanted = [q for q in relevant if (q, index) in need]
            if not wanted:
                continue
            expr = model.new_int_var(0, 2 * size, f"on{gi}_{index}")
            model.add(
                expr
                == cp_model.LinearExpr.weighted_sum([v for _, v in terms], [u for u, _ in terms])
            )
            if len(wanted) == 1:
                contributions[(wanted[0], index)].append(expr)
                continue
            top = 2 * size
            alloc = [model.new_int_var(0, top, f"a{gi}_{q}_{index}") for q in wanted]
            model.add(sum(alloc) <= expr)
            for q, var in zip(wanted, alloc, strict=True):
                contributions[(q, index)].append(var)

    shortfalls: list[cp_model.IntVar] = []
    for (queue, index), units in need.items():
        short = model.new_int_var(0, units, f"s_{queue}_{index}")
        model.add(short + sum(contributions.get((queue, index), [])) >= units)
        shortfalls.append(short)
    model.minimize(sum(shortfalls))

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = max(1, problem.workers)
    solver.parameters.max_time_in_seconds = max(0.1, problem.time_limit_s)
    solver.parameters.relative_gap_limit = problem.relative_gap
    solver.parameters.linearization_level = 2
    solver.parameters.cp_model_presolve = False
    solver.parameters.log_search_progress = bool(__import__("os").environ.get("WFM_CPSAT_LOG"))
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise ScheduleInfeasible(f"the solver found no roster ({solver.status_name(status)})")
    objective = solver.objective_value
    bound = solver.best_objective_bound

    shifts: list[AssignedShift] = []
    scheduled_units: dict[int, dict[tuple[str, ...], int]] = defaultdict(lambda: defaultdict(int))
    for members, patterns, xs in group_vars:
        queue = iter(members)
        for pattern, var in zip(patterns, xs, strict=True):
            for _ in range(solver.value(var)):
                agent = next(queue)
                tz = ZoneInfo(agent.time_zone)
                for d in pattern.days:
                    day = problem.week_start + timedelta(days=d)
                    start = _local_start(day, pattern.start_minute, tz)
                    pieces = _activities(pattern.template, start, pattern.lunch_offset)
                    shifts.append(
                        AssignedShift(
                            agent_id=agent.agent_id,
                            template_id=pattern.template.template_id,
                            local_date=day,
                            start=start,
                            end=start + timedelta(minutes=pattern.template.length_minutes),
                            activities=tuple(Activity(k, a, b) for k, a, b in pieces),
                        )
                    )
                skills = tuple(sorted(set(agent.skills) & set(queues)))
                for index, units in pattern.units:
                    scheduled_units[index][skills] += units

    coverage: dict[tuple[str, datetime], tuple[int, float]] = {}
    for (queue, index), units in need.items():
        value = 0.0
        for q in (queue,):
            value = _allocated(solver, contributions.get((q, index), []))
        coverage[(queue, cal.interval_start(index))] = (units // 2, value / 2)
    return Roster(
        shifts=tuple(sorted(shifts, key=lambda s: (s.agent_id, s.start))),
        coverage=coverage,
        shortfall=objective / 2,
        best_bound=bound / 2,
        gap_pct=100.0 * (objective - bound) / max(1.0, objective),
        solve_seconds=time.perf_counter() - started,
        solver_status=solver.status_name(status),
    )


def _allocated(solver: cp_model.CpSolver, exprs: Sequence[cp_model.LinearExprT]) -> float:
    return float(sum(solver.value(e) for e in exprs))
