"""Adherence (doing the scheduled activity at the scheduled time) and conformance (working as
many minutes as scheduled), from routing's agent states against the published schedule.

Working states: available, busy, wrap_up. During scheduled work an agent adheres when in a
working state; during a scheduled break, lunch or time outside a shift, when away or offline.
Adherence is measured over the scheduled shifts (breaks and lunch included); conformance is
minutes in a working state / minutes of scheduled work.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

WORKING_STATES = frozenset({"available", "busy", "wrap_up"})
OFF = "off"


@dataclass(frozen=True, slots=True)
class ScheduledActivity:
    agent_id: str
    kind: str  # work | break | lunch
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class StateChange:
    agent_id: str
    at: datetime
    state: str


@dataclass(frozen=True, slots=True)
class AgentAdherence:
    agent_id: str
    scheduled_minutes: float
    in_adherence_minutes: float
    out_of_adherence_minutes: float
    adherence_pct: float
    conformance_pct: float


@dataclass(frozen=True, slots=True)
class LiveStatus:
    agent_id: str
    scheduled: str
    state: str
    in_adherence: bool
    since: datetime


def adheres(scheduled: str, state: str) -> bool:
    working = state in WORKING_STATES
    return working if scheduled == "work" else not working


def scheduled_at(activities: Sequence[ScheduledActivity], at: datetime) -> str:
    for a in activities:
        if a.start <= at < a.end:
            return a.kind
    return OFF


def state_at(changes: Sequence[StateChange], at: datetime) -> str:
    times = [c.at for c in changes]
    i = bisect_right(times, at)
    return changes[i - 1].state if i else "offline"


def report(
    activities: Iterable[ScheduledActivity],
    changes: Iterable[StateChange],
    start: datetime,
    end: datetime,
    agent_ids: Iterable[str] = (),
) -> list[AgentAdherence]:
    by_agent: dict[str, list[ScheduledActivity]] = {}
    for a in activities:
        by_agent.setdefault(a.agent_id, []).append(a)
    states: dict[str, list[StateChange]] = {}
    for c in sorted(changes, key=lambda c: c.at):
        states.setdefault(c.agent_id, []).append(c)
    wanted = set(agent_ids) or set(by_agent)
    out: list[AgentAdherence] = []
    for agent in sorted(wanted):
        acts = sorted(by_agent.get(agent, []), key=lambda a: a.start)
        log = states.get(agent, [])
        points = {start, end}
        points.update(t for a in acts for t in (a.start, a.end) if start < t < end)
        points.update(c.at for c in log if start < c.at < end)
        ordered = sorted(points)
        scheduled = inside = work = worked = 0.0
        for t0, t1 in itertools.pairwise(ordered):
            minutes = (t1 - t0) / timedelta(minutes=1)
            kind = scheduled_at(acts, t0)
            if kind == OFF:
                continue
            state = state_at(log, t0)
            scheduled += minutes
            if adheres(kind, state):
                inside += minutes
            if kind == "work":
                work += minutes
            if state in WORKING_STATES:
                worked += minutes
        out.append(
            AgentAdherence(
                agent_id=agent,
                scheduled_minutes=scheduled,
                in_adherence_minutes=inside,
                out_of_adherence_minutes=scheduled - inside,
                adherence_pct=100.0 * inside / scheduled if scheduled else 100.0,
                conformance_pct=100.0 * worked / work if work else 100.0,
            )
        )
    return out


def live_status(
    activities: Sequence[ScheduledActivity],
    changes: Sequence[StateChange],
    agent_id: str,
    now: datetime,
) -> LiveStatus:
    """The agent's status now, and since when it has been in (or out of) adherence: the later
    of the last state change and the last schedule boundary that changed the verdict."""
    acts = sorted((a for a in activities if a.agent_id == agent_id), key=lambda a: a.start)
    log = sorted((c for c in changes if c.agent_id == agent_id), key=lambda c: c.at)
    kind = scheduled_at(acts, now)
    state = state_at(log, now)
    verdict = adheres(kind, state)
    boundaries = sorted(
        {t for a in acts for t in (a.start, a.end) if t <= now} | {c.at for c in log if c.at <= now}
    )
    since = boundaries[0] if boundaries else now
    for t in reversed(boundaries):
        before = t - timedelta(microseconds=1)
        if adheres(scheduled_at(acts, before), state_at(log, before)) != verdict:
            since = t
            break
    return LiveStatus(agent_id, kind, state, verdict, since)


def exceptions_due(
    statuses: Iterable[LiveStatus], now: datetime, threshold: timedelta
) -> list[LiveStatus]:
    """Agents out of adherence for longer than the threshold."""
    return [s for s in statuses if not s.in_adherence and now - s.since >= threshold]


def activities_by_agent(
    activities: Iterable[ScheduledActivity],
) -> Mapping[str, list[ScheduledActivity]]:
    grouped: dict[str, list[ScheduledActivity]] = {}
    for a in activities:
        grouped.setdefault(a.agent_id, []).append(a)
    return grouped
