"""A reproducible scheduling scenario (benchmark and tests): two queues open around the clock
in New York, remote agents in New York, London and Manila under their local rules, some with
two skills, some with time off; requirements from Erlang C over a weekly volume profile."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np

from contactcenter.wfm.domain.erlang import Target, erlang_c_required
from contactcenter.wfm.domain.scheduling import (
    AgentSpec,
    ScheduleProblem,
    ShiftTemplate,
    WorkRules,
    _Calendar,
)

TEMPLATES = (
    ShiftTemplate("8h", 510, 5, 30, (210, 240, 270), 15, (105, 390)),
    ShiftTemplate("10h", 630, 4, 30, (270, 300), 15, (120, 480)),
)
RULES = (
    WorkRules("us", 1920, 2400, 6 * 60, 14 * 60, 10 * 60, True),
    WorkRules("uk", 1920, 2400, 7 * 60, 13 * 60, 11 * 60, True, ("8h",)),
    WorkRules("ph", 1920, 2400, 0, 12 * 60, 10 * 60, True),
    WorkRules("weekend-off", 1920, 2400, 6 * 60, 12 * 60, 10 * 60, True, ("8h",), (5, 6)),
)
REGIONS = (
    ("America/New_York", "us", 0.5),
    ("Europe/London", "uk", 0.2),
    ("Asia/Manila", "ph", 0.3),
)


def scenario(
    agents: int = 800,
    week_start: date = date(2026, 3, 2),
    *,
    load: float = 0.93,
    seed: int = 7,
    time_limit_s: float = 55.0,
) -> ScheduleProblem:
    rng = np.random.default_rng(seed)
    specs: list[AgentSpec] = []
    for i in range(agents):
        u = rng.random()
        tz, rules = REGIONS[-1][:2]
        acc = 0.0
        for zone, r, share in REGIONS:
            acc += share
            if u < acc:
                tz, rules = zone, r
                break
        if rules == "us" and rng.random() < 0.15:
            rules = "weekend-off"
        s = rng.random()
        skills = ("sales",) if s < 0.35 else ("support",) if s < 0.75 else ("sales", "support")
        unavailable = (int(rng.integers(0, 7)),) if rng.random() < 0.05 else ()
        time_off = (
            (week_start + timedelta(days=int(rng.integers(0, 7))),) if rng.random() < 0.04 else ()
        )
        specs.append(AgentSpec(f"agent-{i:04d}", skills, tz, rules, unavailable, time_off))

    problem = ScheduleProblem(
        week_start=week_start,
        time_zone="America/New_York",
        interval_minutes=30,
        templates=TEMPLATES,
        rules=RULES,
        agents=tuple(specs),
        requirements={},
        time_limit_s=time_limit_s,
    )
    cal = _Calendar(problem)
    slots = np.arange(cal.count)
    hour = (slots % 48) / 2.0
    weekday = slots // 48
    daily = np.exp(-((hour - 13.0) ** 2) / 18.0) + 0.15
    weekly = np.where(weekday >= 5, 0.6, 1.0)
    shape = daily * weekly
    # Supply: agent-intervals on duty in a week (~37.5 h on the phones each).
    supply = agents * 37.5 * 2 * load
    requirements: dict[tuple[str, object], int] = {}
    for queue, share, aht in (("sales", 0.45, 300.0), ("support", 0.55, 420.0)):
        profile = shape / shape.sum()
        # Volume whose Erlang C staffing uses ~share of the supply.
        volume = profile * share * supply * 1800.0 / aht * 0.85
        staffing = erlang_c_required(volume, np.full(volume.shape, aht), 1800.0, Target(0.8, 20.0))
        for k in range(cal.count):
            requirements[(queue, cal.interval_start(int(k)))] = int(staffing.agents[k])
    total = sum(requirements.values())
    scale = supply / max(1, total)
    if scale < 1:
        requirements = {k: math.floor(v * scale) for k, v in requirements.items()}
    return ScheduleProblem(
        week_start=problem.week_start,
        time_zone=problem.time_zone,
        interval_minutes=problem.interval_minutes,
        templates=problem.templates,
        rules=problem.rules,
        agents=problem.agents,
        requirements=requirements,  # type: ignore[arg-type]
        time_limit_s=time_limit_s,
    )
