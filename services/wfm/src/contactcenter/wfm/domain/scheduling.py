"""Named weekly rosters with OR-Tools CP-SAT.

Decomposition: every agent gets one weekly pattern = (days off, a shift template per working
day), and each day's shifts of a template get a start time on a 30-minute grid of the agent's
LOCAL clock and a lunch offset. Each pattern satisfies the agent's local labour rules by
construction: weekly and daily paid minutes, consecutive working days (continuing the previous
week), days off (how many, consecutive, required weekdays, unavailability and approved time
off), the templates their rotation allows this week, and the minimum rest between shifts. Starts
lie in a band of each template's window narrow enough that two shifts of that template on
consecutive days always keep the rest (also on a night a clock change shortens); a pattern
mixing templates (early Monday, late Tuesday) is kept only when the latest end of one day's
template leaves the rest before the earliest start of the next day's, as instants, so any
assignment of a day's starts to the agents working it is legal. Agents with the same
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
import math
import os
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
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
    #: the template's own local start window (e.g. early or late shifts), within the rules' one
    earliest_start_minute: int = 0
    latest_start_minute: int = 24 * 60 - START_GRID_MINUTES

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
    #: paid minutes of one day's shift (templates outside are never used)
    min_daily_minutes: int = 0
    max_daily_minutes: int = 24 * 60
    #: working days in a row (runs touching the week's end may continue next week; a run at
    #: the week's start continues the agent's previous week)
    min_consecutive_days: int = 1
    max_consecutive_days: int = 7
    #: the solver may give an agent different templates on different days of a week (templates
    #: of the same days_per_week), keeping the rest between shifts
    mix_templates: bool = True
    #: rotation: week k (k = weeks since `rotation_anchor` + the agent's offset, modulo the
    #: length) allows only the templates of entry k, e.g. (("early",), ("late",))
    rotation: tuple[tuple[str, ...], ...] = ()
    rotation_anchor: date = date(2024, 1, 1)


@dataclass(frozen=True, slots=True)
class AgentSpec:
    agent_id: str
    skills: tuple[str, ...]
    time_zone: str
    rules_id: str
    unavailable_weekdays: tuple[int, ...] = ()
    #: local dates off (approved time off)
    time_off: tuple[date, ...] = ()
    #: the agent's place in their rules' rotation
    rotation_offset: int = 0
    #: the end of the agent's last shift before this week and the working days in a row it
    #: closed (from the previous week's published schedule): rest and consecutive days hold
    #: across the week boundary
    previous_shift_end: datetime | None = None
    previous_consecutive_days: int = 0


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


def _start_band(rules: WorkRules, t: ShiftTemplate, dst_slack: int = 0) -> list[int]:
    """Local start minutes allowed for a template: the rules' and the template's windows,
    narrowed so that any two starts on consecutive days keep the minimum rest (start-time
    variation within a week is at most 24 h - shift length - rest - the hour a clock change
    takes from a night)."""
    earliest = max(rules.earliest_start_minute, t.earliest_start_minute)
    first = earliest + (-earliest) % START_GRID_MINUTES
    spread = 24 * 60 - t.length_minutes - rules.min_rest_minutes - dst_slack
    last = min(rules.latest_start_minute, t.latest_start_minute, first + max(0, spread))
    return list(range(first, last + 1, START_GRID_MINUTES))


def _dst_slack(week_start: date, tz: ZoneInfo) -> int:
    """Minutes the shortest night of the week (and the night before it) loses to a clock
    change in `tz` (60 in a week where the clocks go forward, else 0)."""
    shortest = 24 * 60
    for d in range(-1, 7):
        day = week_start + timedelta(days=d)
        a = _local_start(day, 0, tz)
        b = _local_start(day + timedelta(days=1), 0, tz)
        shortest = min(shortest, int((b - a) / timedelta(minutes=1)))
    return max(0, 24 * 60 - shortest)


def _forced_days(
    problem: ScheduleProblem, agent: AgentSpec, rules: WorkRules
) -> tuple[frozenset[int], frozenset[int]]:
    """(local day indexes the agent cannot work, the subset that is paid time off)."""
    days = [problem.week_start + timedelta(days=d) for d in range(7)]
    time_off = frozenset(d for d, day in enumerate(days) if day in agent.time_off)
    forced = {d for d, day in enumerate(days) if day.weekday() in agent.unavailable_weekdays}
    forced |= {d for d, day in enumerate(days) if day.weekday() in rules.required_days_off}
    return frozenset(forced) | time_off, time_off


def rotation_templates(rules: WorkRules, week_start: date, offset: int) -> tuple[str, ...] | None:
    """The templates the rotation allows in the week of `week_start` (None: no rotation)."""
    if not rules.rotation:
        return None
    week = (week_start - rules.rotation_anchor).days // 7
    return rules.rotation[(week + offset) % len(rules.rotation)]


def _runs(worked: Sequence[bool]) -> list[tuple[int, int]]:
    """(first day, length) of every run of working days in the week."""
    runs: list[tuple[int, int]] = []
    d = 0
    while d < len(worked):
        if worked[d]:
            first = d
            while d < len(worked) and worked[d]:
                d += 1
            runs.append((first, d - first))
        else:
            d += 1
    return runs


#: A week of one agent: the template of each local day (None: a day off).
Pattern = tuple[ShiftTemplate | None, ...]


@dataclass(frozen=True, slots=True)
class _Window:
    """Earliest start and latest end (UTC) of a template's shifts on each local day."""

    first_start: tuple[datetime, ...]
    last_end: tuple[datetime, ...]


def _windows(
    local_days: Sequence[date], tz: ZoneInfo, t: ShiftTemplate, band: Sequence[int]
) -> _Window:
    return _Window(
        tuple(_local_start(day, band[0], tz) for day in local_days),
        tuple(
            _local_start(day, band[-1], tz) + timedelta(minutes=t.length_minutes)
            for day in local_days
        ),
    )


def _week_options(
    rules: WorkRules,
    templates: Sequence[ShiftTemplate],
    windows: Mapping[str, _Window],
    forced: frozenset[int],
    time_off: frozenset[int],
    previous_end: datetime | None = None,
    previous_run: int = 0,
) -> list[Pattern]:
    """Every legal week of one agent: days off (how many the templates leave, consecutive when
    the rules say so, covering unavailability and time off), a template per working day (one
    days_per_week per week; mixed only when the rules allow), weekly paid minutes (time off
    credited), consecutive working days, and the minimum rest between any two shifts the day
    plans may give (the latest end of one day's template to the earliest start of the next
    day's, as instants: across midnight, a clock change and the week boundary)."""
    rest = timedelta(minutes=rules.min_rest_minutes)
    by_days: dict[int, list[ShiftTemplate]] = defaultdict(list)
    for t in templates:
        by_days[t.days_per_week].append(t)
    options: list[Pattern] = []
    for days_per_week, group in sorted(by_days.items()):
        off_needed = max(7 - days_per_week, len(forced))
        unavailable = len(forced - time_off)
        if rules.mix_templates:
            fills: list[tuple[ShiftTemplate, ...] | None] = [None]
        else:
            fills = [(t,) for t in group]
        for block in _days_off_blocks(rules, off_needed, set(forced)):
            working = [d for d in range(7) if d not in block]
            worked_flags = [d not in block for d in range(7)]
            runs = [
                (n + (previous_run if first == 0 else 0), first + n)
                for first, n in _runs(worked_flags)
            ]
            if any(n > rules.max_consecutive_days for n, _end in runs):
                continue
            # A run that reaches the week's end may continue into the next week.
            if any(n < rules.min_consecutive_days and end < 7 for n, end in runs):
                continue
            credited = min(len(time_off), days_per_week - len(working))
            for fill in fills:
                choices = group if fill is None else fill
                for combo in itertools.product(choices, repeat=len(working)):
                    paid = sum(t.paid_minutes for t in combo)
                    if paid > rules.max_weekly_minutes:
                        continue
                    paid += credited * min(t.paid_minutes for t in combo) if combo else 0
                    # The weekly minimum holds when the agent is free for the template's week.
                    if paid < rules.min_weekly_minutes and unavailable <= 7 - days_per_week:
                        continue
                    pattern: list[ShiftTemplate | None] = [None] * 7
                    for d, t in zip(working, combo, strict=True):
                        pattern[d] = t
                    if _rested(pattern, windows, rest, previous_end):
                        options.append(tuple(pattern))
    return options


def _rested(
    pattern: Sequence[ShiftTemplate | None],
    windows: Mapping[str, _Window],
    rest: timedelta,
    previous_end: datetime | None,
) -> bool:
    last_end = previous_end
    for d, t in enumerate(pattern):
        if t is None:
            continue
        w = windows[t.template_id]
        if last_end is not None and w.first_start[d] - last_end < rest:
            return False
        last_end = w.last_end[d]
    return True


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

    # Base groups share shift options (skills, zone, rules, the templates their rotation
    # allows this week); subgroups also share days off and the previous week's end.
    SubKey = tuple[frozenset[int], frozenset[int], datetime | None, int]
    groups: dict[
        tuple[tuple[str, ...], str, str, tuple[str, ...] | None],
        dict[SubKey, list[AgentSpec]],
    ] = {}
    for agent in sorted(problem.agents, key=lambda a: a.agent_id):
        rules = rules_by_id.get(agent.rules_id)
        if rules is None:
            raise ScheduleInfeasible(f"agent {agent.agent_id}: unknown rules {agent.rules_id!r}")
        key = (
            tuple(sorted(set(agent.skills) & set(queues))),
            agent.time_zone,
            agent.rules_id,
            rotation_templates(rules, problem.week_start, agent.rotation_offset),
        )
        forced, time_off = _forced_days(problem, agent, rules)
        sub = (forced, time_off, agent.previous_shift_end, agent.previous_consecutive_days)
        groups.setdefault(key, {}).setdefault(sub, []).append(agent)

    model = cp_model.CpModel()
    contributions: dict[tuple[str, int], list[cp_model.LinearExprT]] = defaultdict(list)
    plans: list[Any] = []
    local_days = [problem.week_start + timedelta(days=d) for d in range(7)]
    for gi, ((skills, zone, rules_id, rotating), subgroups) in enumerate(groups.items()):
        rules = rules_by_id[rules_id]
        tz = ZoneInfo(zone)
        slack = _dst_slack(problem.week_start, tz)
        templates = [
            t
            for t in problem.templates
            if (not rules.template_ids or t.template_id in rules.template_ids)
            and (rotating is None or t.template_id in rotating)
            and rules.min_daily_minutes <= t.paid_minutes <= rules.max_daily_minutes
            and _start_band(rules, t, slack)
        ]
        bands = {t.template_id: _start_band(rules, t, slack) for t in templates}
        windows = {
            t.template_id: _windows(local_days, tz, t, bands[t.template_id]) for t in templates
        }
        size = sum(len(m) for m in subgroups.values())
        # Weeks per subgroup: u[pattern] agents.
        working: dict[tuple[str, int], list[cp_model.IntVar]] = defaultdict(list)
        sub_plans = []
        for si, ((forced, time_off, previous_end, previous_run), members) in enumerate(
            subgroups.items()
        ):
            options = _week_options(
                rules, templates, windows, forced, time_off, previous_end, previous_run
            )
            if not options:
                raise ScheduleInfeasible(
                    f"agent {members[0].agent_id}: no shift pattern satisfies the rules, "
                    "availability and time off"
                )
            us = [
                model.new_int_var(0, len(members), f"u{gi}_{si}_{k}") for k in range(len(options))
            ]
            model.add(sum(us) == len(members))
            for pattern, u in zip(options, us, strict=True):
                for d, t in enumerate(pattern):
                    if t is not None:
                        working[(t.template_id, d)].append(u)
            sub_plans.append((members, options, us))
        # Shifts per day: y[(template, day, start)], lunch choice l[...][offset].
        on: dict[int, list[tuple[int, cp_model.IntVar]]] = defaultdict(list)
        day_plans = []
        for t in templates:
            band = bands[t.template_id]
            lunches: tuple[int | None, ...] = t.lunch_offsets_minutes or (None,)
            for d in range(7):
                ys = []
                for minute in band:
                    start = _local_start(local_days[d], minute, tz)
                    y = model.new_int_var(0, size, f"y{gi}_{t.template_id}_{d}_{minute}")
                    ys.append(y)
                    base = _units(cal, t, start, None)
                    for index, units in base.items():
                        on[index].append((units, y))
                    ls = []
                    if len(lunches) == 1:
                        for index, delta in _lunch_delta(cal, t, start, lunches[0]).items():
                            on[index].append((-delta, y))
                        ls = [y]
                    else:
                        ls = [
                            model.new_int_var(0, size, f"l{gi}_{t.template_id}_{d}_{minute}_{o}")
                            for o in lunches
                        ]
                        model.add(sum(ls) == y)
                        for o, lv in zip(lunches, ls, strict=True):
                            for index, delta in _lunch_delta(cal, t, start, o).items():
                                on[index].append((-delta, lv))
                    day_plans.append((t, d, minute, start, y, lunches, ls))
                model.add(sum(ys) == sum(working.get((t.template_id, d), [])))
        plans.append((sub_plans, day_plans, tz))
        relevant = list(skills)
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
            alloc = [model.new_int_var(0, 2 * size, f"a{gi}_{q}_{index}") for q in wanted]
            model.add(sum(alloc) <= expr)
            for q, var in zip(wanted, alloc, strict=True):
                contributions[(q, index)].append(var)

    shortfalls: list[cp_model.IntVar] = []
    for (queue, index), units in need.items():
        short = model.new_int_var(0, units, f"s_{queue}_{index}")
        model.add(cp_model.LinearExpr.sum([short, *contributions.get((queue, index), [])]) >= units)
        shortfalls.append(short)
    model.minimize(sum(shortfalls))

    # 1. The LP relaxation (GLOP), 2. rounded to a roster (hint), completed by CP-SAT with the
    # rounded variables fixed, 3. CP-SAT improves it from that hint within the time left.
    lp_value, lp_objective = _lp_relaxation(model)
    for sub_plans, day_plans, _tz in plans:
        _round_hints(model, lp_value, sub_plans, day_plans)
    deadline = started + max(1.0, problem.time_limit_s)
    # RENS: the decisions restricted to the integers around their LP value (most are 0).
    restricted = model.clone()
    for sub_plans, day_plans, _tz in plans:
        decisions = [u for _m, _o, us in sub_plans for u in us]
        decisions += [v for plan in day_plans for v in (plan[4], *plan[6])]
        for var in decisions:
            lp = lp_value[var.index]
            near = restricted.get_int_var_from_proto_index(var.index)
            restricted.add(near >= math.floor(lp + 1e-9))
            restricted.add(near <= math.ceil(lp - 1e-9))
    values = _solve_phase(restricted, problem, 0.5 * (deadline - time.perf_counter()))
    if values is None:
        # The LP neighbourhood holds no roster: complete the rounded roster instead.
        fixed = model.clone()
        fixed_values = _solve_phase(
            fixed, problem, max(1.0, 0.3 * (deadline - time.perf_counter())), fix_hints=True
        )
        values = fixed_values
    if values is not None:
        model.clear_hints()  # type: ignore[no-untyped-call]
        for k, v in enumerate(values):
            model.add_hint(model.get_int_var_from_proto_index(k), v)

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = max(1, problem.workers)
    solver.parameters.max_time_in_seconds = max(0.5, deadline - time.perf_counter())
    solver.parameters.relative_gap_limit = problem.relative_gap
    solver.parameters.linearization_level = 2
    solver.parameters.log_search_progress = bool(os.environ.get("WFM_CPSAT_LOG"))
    status = solver.solve(model)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        values = [
            solver.value(model.get_int_var_from_proto_index(k))
            for k in range(len(model.proto.variables))
        ]
        objective = solver.objective_value
        cp_bound = solver.best_objective_bound
        status_name = solver.status_name(status)
    elif values is not None:
        objective = float(
            sum(
                values[v] * c
                for v, c in zip(
                    model.proto.objective.vars, model.proto.objective.coeffs, strict=True
                )
            )
        )
        cp_bound = solver.best_objective_bound if status == cp_model.UNKNOWN else objective
        status_name = "FEASIBLE"
    else:
        raise ScheduleInfeasible(f"the solver found no roster ({solver.status_name(status)})")

    def value(var: cp_model.IntVar) -> int:
        assert values is not None
        return int(values[var.index])

    # The objective is integral: the LP relaxation's optimum, rounded up, also bounds it.
    bound = max(cp_bound, math.ceil(lp_objective - 1e-6)) if lp_objective > -math.inf else cp_bound
    bound = min(bound, objective)

    shifts: list[AssignedShift] = []
    for sub_plans, day_plans, _tz in plans:
        # Days off: agents of each subgroup in id order take the chosen (template, block)s.
        works: dict[tuple[str, int], list[AgentSpec]] = defaultdict(list)
        for members, options, us in sub_plans:
            queue = iter(members)
            for pattern, u in zip(options, us, strict=True):
                for _ in range(value(u)):
                    agent = next(queue)
                    for d, t in enumerate(pattern):
                        if t is not None:
                            works[(t.template_id, d)].append(agent)
        # Shifts of each day: any agent working that day may take any start of the band.
        for members_of_day in works.values():
            members_of_day.sort(key=lambda a: a.agent_id)
        cursor: dict[tuple[str, int], int] = defaultdict(int)
        for t, d, _minute, start, _y, lunches, ls in day_plans:
            for lunch, lv in zip(lunches, ls, strict=True):
                for _ in range(value(lv)):
                    slot = (t.template_id, d)
                    agent = works[slot][cursor[slot]]
                    cursor[slot] += 1
                    pieces = _activities(t, start, lunch)
                    shifts.append(
                        AssignedShift(
                            agent_id=agent.agent_id,
                            template_id=t.template_id,
                            local_date=local_days[d],
                            start=start,
                            end=start + timedelta(minutes=t.length_minutes),
                            activities=tuple(Activity(kind, a, b) for kind, a, b in pieces),
                        )
                    )

    coverage: dict[tuple[str, datetime], tuple[int, float]] = {}
    short_units = 0.0
    for (queue, index), units in need.items():
        got = float(sum(_evaluate(e, values) for e in contributions.get((queue, index), [])))
        coverage[(queue, cal.interval_start(index))] = (units // 2, got / 2)
        short_units += max(0.0, units - got)
    # A solution stopped early may carry slack in its shortfall variables: the roster's real
    # shortfall is what its coverage leaves (never more than the objective).
    objective = min(objective, short_units)
    bound = min(bound, objective)
    return Roster(
        shifts=tuple(sorted(shifts, key=lambda s: (s.agent_id, s.start))),
        coverage=coverage,
        shortfall=objective / 2,
        best_bound=bound / 2,
        gap_pct=100.0 * (objective - bound) / max(1.0, objective),
        solve_seconds=time.perf_counter() - started,
        solver_status=status_name,
    )


def _lp_relaxation(model: cp_model.CpModel) -> tuple[list[float], float]:
    """Solve the linear relaxation of the (purely linear) CP-SAT model with GLOP: the values
    of every variable and the optimum (-inf when GLOP gives none)."""
    from ortools.linear_solver import pywraplp

    proto = model.proto
    lp = pywraplp.Solver.CreateSolver("GLOP")
    # (the proto containers do not take negative indexes)
    xs = [
        lp.NumVar(float(v.domain[0]), float(v.domain[len(v.domain) - 1]), "")
        for v in proto.variables
    ]
    inf = lp.infinity()
    for c in proto.constraints:
        lin = c.linear
        lo, hi = lin.domain[0], lin.domain[len(lin.domain) - 1]
        row = lp.Constraint(
            -inf if lo <= -(2**62) else float(lo), inf if hi >= 2**62 else float(hi)
        )
        coefficients: dict[int, float] = defaultdict(float)
        for v, k in zip(lin.vars, lin.coeffs, strict=True):
            coefficients[v] += float(k)  # a variable may appear more than once
        for v, k in coefficients.items():
            row.SetCoefficient(xs[v], k)
    objective = lp.Objective()
    for v, k in zip(proto.objective.vars, proto.objective.coeffs, strict=True):
        objective.SetCoefficient(xs[v], float(k))
    objective.SetMinimization()
    status = lp.Solve()
    if os.environ.get("WFM_CPSAT_LOG"):
        print("GLOP status", status)
    if status != pywraplp.Solver.OPTIMAL:
        return [0.0] * len(xs), float("-inf")
    return [x.solution_value() for x in xs], objective.Value() + proto.objective.offset


def _largest_remainder(values: Sequence[float], total: int) -> list[int]:
    """Integers summing to `total`, proportional to `values` (largest remainders first)."""
    weight = sum(max(0.0, v) for v in values)
    if total <= 0 or not values:
        return [0] * len(values)
    if weight <= 0:
        return [total] + [0] * (len(values) - 1)
    exact = [max(0.0, v) * total / weight for v in values]
    out = [math.floor(e) for e in exact]
    rest = total - sum(out)
    for k in sorted(range(len(values)), key=lambda k: exact[k] - out[k], reverse=True)[:rest]:
        out[k] += 1
    return out


def _round_hints(
    model: cp_model.CpModel, lp: Sequence[float], sub_plans: Any, day_plans: Any
) -> None:
    working: dict[tuple[str, int], int] = defaultdict(int)
    for members, options, us in sub_plans:
        counts = _largest_remainder([lp[u.index] for u in us], len(members))
        for pattern, u, n in zip(options, us, counts, strict=True):
            model.add_hint(u, n)
            for d, t in enumerate(pattern):
                if t is not None:
                    working[(t.template_id, d)] += n
    by_day: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for plan in day_plans:
        by_day[(plan[0].template_id, plan[1])].append(plan)
    for key, day in by_day.items():
        counts = _largest_remainder([lp[p[4].index] for p in day], working.get(key, 0))
        for (_t, _d, _m, _s, y, _lunches, ls), n in zip(day, counts, strict=True):
            model.add_hint(y, n)
            if len(ls) > 1 or ls[0] is not y:
                for lv, k in zip(ls, _largest_remainder([lp[v.index] for v in ls], n), strict=True):
                    model.add_hint(lv, k)


def _lunch_delta(
    cal: _Calendar, t: ShiftTemplate, start: datetime, lunch: int | None
) -> dict[int, int]:
    """Units a lunch at `lunch` takes away from the shift without lunch."""
    base = _units(cal, t, start, None)
    with_lunch = _units(cal, t, start, lunch)
    return {k: v - with_lunch.get(k, 0) for k, v in base.items() if v != with_lunch.get(k, 0)}


def _evaluate(expr: cp_model.LinearExprT, values: Sequence[int]) -> int:
    if isinstance(expr, cp_model.IntVar):
        return int(values[expr.index])
    raise TypeError(f"unexpected expression {expr!r}")


def _solve_phase(
    model: cp_model.CpModel, problem: ScheduleProblem, seconds: float, *, fix_hints: bool = False
) -> list[int] | None:
    """Every variable's value in a solution of `model` (None: none found in time)."""
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = max(1, problem.workers)
    solver.parameters.relative_gap_limit = problem.relative_gap / 2
    solver.parameters.max_time_in_seconds = max(0.5, seconds)
    solver.parameters.fix_variables_to_their_hinted_value = fix_hints
    if solver.solve(model) not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    return [
        solver.value(model.get_int_var_from_proto_index(k))
        for k in range(len(model.proto.variables))
    ]
