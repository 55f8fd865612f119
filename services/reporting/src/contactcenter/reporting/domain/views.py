"""What the reports show, computed from a tenant's state at a given instant (pure).

Windows: TODAY sums the 15-minute buckets since local midnight; ROLLING_N sums the minute
buckets of the last N minutes (the current minute included). Contacts count in the bucket
where they entered the queue, legs in the bucket where they ended (see metrics.Counters).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contactcenter.reporting.domain.intervals import day_start
from contactcenter.reporting.domain.metrics import (
    Counters,
    abandon_rate,
    aht_ms,
    asa_ms,
    occupancy,
    service_level,
    utilization,
)
from contactcenter.reporting.domain.state import Agent, TenantState
from contactcenter.reporting.domain.values import (
    HANDLING,
    MINUTE_MS,
    ROLLING_MINUTES,
    Activity,
    ServiceLevelVariant,
    Window,
)


@dataclass(frozen=True, slots=True)
class Totals:
    window: Window
    counters: Counters
    service_level: float | None
    abandon_rate: float
    asa_ms: int
    aht_ms: int


@dataclass(frozen=True, slots=True)
class QueueView:
    queue_id: str
    name: str
    waiting: int
    oldest_waiting_since: int | None
    longest_wait_ms: int
    agents: dict[Activity, int]
    variant: ServiceLevelVariant
    threshold_s: int
    short_abandon_s: int
    target_percent: int
    totals: tuple[Totals, ...]


@dataclass(frozen=True, slots=True)
class ChannelView:
    channel: str
    waiting: int
    longest_wait_ms: int
    agents: dict[Activity, int]
    totals: tuple[Totals, ...]


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: str
    name: str
    activity: Activity
    since: int
    time_in_state_ms: int
    reason_code: str | None
    load: int
    capacity: int
    handled: int
    aht_ms: int
    occupancy: float
    utilization: float
    queues: tuple[str, ...] = field(default_factory=tuple)


def window_counters(
    t: TenantState, queue_id: str, channel: str, window: Window, now: int
) -> Counters:
    total = Counters()
    if window is Window.TODAY:
        start, step, minutes = day_start(now, t.tz), 15 * MINUTE_MS, 15
    else:
        n = ROLLING_MINUTES[window]
        minute = now - now % MINUTE_MS
        start, step, minutes = minute - (n - 1) * MINUTE_MS, MINUTE_MS, 1
    at = start
    while at <= now:
        c = t.buckets.get((queue_id, channel, minutes, at))
        if c is not None:
            total.add(c)
        at += step
    return total


def _totals(window: Window, c: Counters, variant: ServiceLevelVariant) -> Totals:
    return Totals(
        window=window,
        counters=c,
        service_level=service_level(c, variant),
        abandon_rate=abandon_rate(c),
        asa_ms=asa_ms(c),
        aht_ms=aht_ms(c),
    )


def queue_view(t: TenantState, queue_id: str, now: int) -> QueueView:
    q = t.queue(queue_id) if queue_id in t.queues else None
    waiting = t.waiting.get(queue_id, {})
    oldest = min(waiting.values()) if waiting else None
    channels = sorted(ch for qid, ch in t.series if qid == queue_id)
    totals = []
    variant = q.variant if q else ServiceLevelVariant.ABANDONS_AGAINST
    for window in Window:
        c = Counters()
        for ch in channels:
            c.add(window_counters(t, queue_id, ch, window, now))
        totals.append(_totals(window, c, variant))
    settings = t.queues.get(queue_id)
    return QueueView(
        queue_id=queue_id,
        name=settings.name if settings else "",
        waiting=len(waiting),
        oldest_waiting_since=oldest,
        longest_wait_ms=max(0, now - oldest) if oldest is not None else 0,
        agents=dict(t.queue_agents.get(queue_id, {})),
        variant=variant,
        threshold_s=settings.threshold_s if settings else 0,
        short_abandon_s=settings.short_abandon_s if settings else 0,
        target_percent=settings.target_percent if settings else 0,
        totals=tuple(totals),
    )


def queue_ids(t: TenantState) -> list[str]:
    return sorted(set(t.queues) | set(t.waiting) | {q for q, _ in t.series} | set(t.queue_agents))


def channel_view(t: TenantState, channel: str, now: int) -> ChannelView:
    oldest: int | None = None
    waiting = 0
    for contact in t.contacts.values():
        if contact.waiting and contact.channel == channel:
            waiting += 1
            entered = contact.entered_at
            oldest = entered if oldest is None else min(oldest, entered)
    queues = sorted(q for q, ch in t.series if ch == channel)
    totals = []
    for window in Window:
        c = Counters()
        for q in queues:
            c.add(window_counters(t, q, channel, window, now))
        totals.append(_totals(window, c, ServiceLevelVariant.ABANDONS_AGAINST))
    return ChannelView(
        channel=channel,
        waiting=waiting,
        longest_wait_ms=max(0, now - oldest) if oldest is not None else 0,
        agents=dict(t.channel_agents.get(channel, {})),
        totals=tuple(totals),
    )


def channels(t: TenantState) -> list[str]:
    return sorted({ch for _, ch in t.series if ch} | set(t.channel_agents))


def agent_view(t: TenantState, a: Agent, now: int) -> AgentView:
    """Today's figures, the open state counted up to `now`."""
    state_ms = dict(a.state_ms)
    load_ms, capacity_ms = a.load_ms, a.capacity_ms
    if a.accrued_to and now > a.accrued_to and a.day:
        elapsed = now - a.accrued_to
        state_ms[a.activity.value] = state_ms.get(a.activity.value, 0) + elapsed
        if a.activity is not Activity.OFFLINE:
            load_ms += a.load * elapsed
            capacity_ms += a.capacity * elapsed
    handling = sum(state_ms.get(s.value, 0) for s in HANDLING)
    return AgentView(
        agent_id=a.agent_id,
        name=a.name,
        activity=a.activity,
        since=a.since,
        time_in_state_ms=max(0, now - a.since) if a.since else 0,
        reason_code=a.reason_code,
        load=a.load,
        capacity=a.capacity,
        handled=a.handled,
        aht_ms=a.handle_ms // a.handled if a.handled else 0,
        occupancy=occupancy(handling, state_ms.get(Activity.AVAILABLE.value, 0)),
        utilization=utilization(load_ms, capacity_ms),
        queues=a.queues,
    )
