"""The fold: facts in, per-tenant reporting state out (pure, no I/O).

The same fold runs in the live projection and in the rebuild, so a rebuild from zero gives the
identical state. The state is made of *entities* (tenant settings, queues, agents, contacts in
flight) and *buckets* (interval counters per queue and channel: 15-minute ones for the history
and "today", 1-minute ones for the rolling windows). Both serialise to rows (`entity_rows`,
`bucket_rows`) and load back (`load_entity`, `load_bucket`); whatever changed since the last
`drain()` is reported there, so the live projection writes only that.

The fold's clock is the events' own time (the latest `at` of the tenant): pruning of minute
buckets and the day of an agent's totals depend on the events only, never on the wall clock.

Memory is bounded: it holds the minute buckets of the rolling windows and the 15-minute buckets
of the tenant's local today (the clock's day). When the clock enters a new local day, the older
15-minute buckets leave memory (their rows stay: the history lives in PostgreSQL); one with
changes not written yet is handed over in `evicted`. A contact counted into a bucket that left
memory (e.g. answered today after waiting since yesterday) goes into `late` as a delta that is
added to the stored row (`drain_history`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

from contactcenter.reporting.domain import facts as f
from contactcenter.reporting.domain.intervals import bucket_start, day_start, local_date, zone
from contactcenter.reporting.domain.metrics import COUNTER_FIELDS, Counters
from contactcenter.reporting.domain.values import (
    ACTIVITY_OF_ROUTING_STATE,
    DEFAULT_SHORT_ABANDON_S,
    DEFAULT_SL_TARGET_PERCENT,
    DEFAULT_SL_THRESHOLD_S,
    DEFAULT_TIME_ZONE,
    DEFAULT_VARIANT,
    MINUTE_BUCKETS_KEPT,
    MINUTE_MS,
    Activity,
    ServiceLevelVariant,
)

TENANT: Final = "tenant"
QUEUE: Final = "queue"
AGENT: Final = "agent"
CONTACT: Final = "contact"

#: (queue_id, channel, minutes, start_ms)
BucketKey = tuple[str, str, int, int]

#: A day is 23 to 25 hours long: from a local midnight, +25 h is in the next local day.
_DAY_AND_MORE_MS: Final = 25 * 3_600_000


def merge_delta(into: Counters, delta: Counters) -> None:
    """Add a late delta to a bucket's counters; the delta's thresholds are the newer ones."""
    for name in COUNTER_FIELDS:
        setattr(into, name, getattr(into, name) + getattr(delta, name))
    into.sl_threshold_s = delta.sl_threshold_s
    into.short_abandon_threshold_s = delta.short_abandon_threshold_s


#: (kind, key)
EntityKey = tuple[str, str]


@dataclass(slots=True)
class QueueSettings:
    queue_id: str
    name: str = ""
    #: From routing's QueueConfigured (None until routing configured the queue).
    routing_threshold_s: int | None = None
    routing_target_percent: int | None = None
    #: From reporting's own configuration.
    variant: ServiceLevelVariant = DEFAULT_VARIANT
    short_abandon_s: int = DEFAULT_SHORT_ABANDON_S
    fallback_threshold_s: int = DEFAULT_SL_THRESHOLD_S
    fallback_target_percent: int = DEFAULT_SL_TARGET_PERCENT

    @property
    def threshold_s(self) -> int:
        return self.routing_threshold_s or self.fallback_threshold_s

    @property
    def target_percent(self) -> int:
        return self.routing_target_percent or self.fallback_target_percent

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "routing_threshold_s": self.routing_threshold_s,
            "routing_target_percent": self.routing_target_percent,
            "variant": self.variant.value,
            "short_abandon_s": self.short_abandon_s,
            "fallback_threshold_s": self.fallback_threshold_s,
            "fallback_target_percent": self.fallback_target_percent,
        }

    @classmethod
    def from_json(cls, key: str, d: dict[str, Any]) -> QueueSettings:
        return cls(
            queue_id=key,
            name=d["name"],
            routing_threshold_s=d["routing_threshold_s"],
            routing_target_percent=d["routing_target_percent"],
            variant=ServiceLevelVariant(d["variant"]),
            short_abandon_s=d["short_abandon_s"],
            fallback_threshold_s=d["fallback_threshold_s"],
            fallback_target_percent=d["fallback_target_percent"],
        )


@dataclass(slots=True)
class Agent:
    agent_id: str
    name: str = ""
    queues: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    activity: Activity = Activity.OFFLINE
    #: When the current activity started (time in state).
    since: int = 0
    #: Up to when the time totals below are counted.
    accrued_to: int = 0
    reason_code: str | None = None
    load: int = 0
    capacity: int = 1
    #: The local day the totals below belong to (ISO date; "" before any).
    day: str = ""
    handled: int = 0
    handle_ms: int = 0
    #: Time per activity today (the open state is added at query time).
    state_ms: dict[str, int] = field(default_factory=dict)
    #: Time-weighted load and capacity over the logged-in (not offline) time today.
    load_ms: int = 0
    capacity_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "queues": list(self.queues),
            "channels": list(self.channels),
            "activity": self.activity.value,
            "since": self.since,
            "accrued_to": self.accrued_to,
            "reason_code": self.reason_code,
            "load": self.load,
            "capacity": self.capacity,
            "day": self.day,
            "handled": self.handled,
            "handle_ms": self.handle_ms,
            "state_ms": dict(sorted(self.state_ms.items())),
            "load_ms": self.load_ms,
            "capacity_ms": self.capacity_ms,
        }

    @classmethod
    def from_json(cls, key: str, d: dict[str, Any]) -> Agent:
        return cls(
            agent_id=key,
            name=d["name"],
            queues=tuple(d["queues"]),
            channels=tuple(d["channels"]),
            activity=Activity(d["activity"]),
            since=d["since"],
            accrued_to=d["accrued_to"],
            reason_code=d["reason_code"],
            load=d["load"],
            capacity=d["capacity"],
            day=d["day"],
            handled=d["handled"],
            handle_ms=d["handle_ms"],
            state_ms=dict(d["state_ms"]),
            load_ms=d["load_ms"],
            capacity_ms=d["capacity_ms"],
        )


@dataclass(slots=True)
class Contact:
    """A contact in flight: where it waits or was answered, and its open agent leg."""

    interaction_id: str
    channel: str = ""
    #: The queue it is waiting in, or was last answered from.
    queue_id: str | None = None
    #: When it entered that queue.
    entered_at: int = 0
    waiting: bool = False
    agent_id: str | None = None
    #: The queue the open leg counts for (None: never queued, e.g. a direct outbound contact).
    leg_queue: str | None = None
    #: talk + hold of a leg whose conversation ended and whose wrap-up is still open.
    pending_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "queue_id": self.queue_id,
            "entered_at": self.entered_at,
            "waiting": self.waiting,
            "agent_id": self.agent_id,
            "leg_queue": self.leg_queue,
            "pending_ms": self.pending_ms,
        }

    @classmethod
    def from_json(cls, key: str, d: dict[str, Any]) -> Contact:
        return cls(interaction_id=key, **d)


class TenantState:
    """Everything reported for one tenant."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.time_zone = DEFAULT_TIME_ZONE
        self.tz: ZoneInfo = zone(DEFAULT_TIME_ZONE)
        #: The latest event time folded (the fold's clock).
        self.clock = 0
        self.queues: dict[str, QueueSettings] = {}
        self.agents: dict[str, Agent] = {}
        self.contacts: dict[str, Contact] = {}
        self.buckets: dict[BucketKey, Counters] = {}
        # Derived (rebuilt on load, never stored):
        #: queue -> interaction -> entered_at, of the contacts waiting there.
        self.waiting: dict[str, dict[str, int]] = {}
        #: queue -> activity -> agents of the queue in it.
        self.queue_agents: dict[str, dict[Activity, int]] = {}
        #: channel -> activity -> agents serving the channel in it.
        self.channel_agents: dict[str, dict[Activity, int]] = {}
        #: (queue, channel) pairs of the buckets in memory (today, the rolling windows) and of
        #: every contact counted since the state was loaded.
        self.series: set[tuple[str, str]] = set()
        # Changes since the last drain():
        self.dirty_entities: set[EntityKey] = set()
        self.dirty_buckets: set[BucketKey] = set()
        self.changed_queues: set[str] = set()
        self.changed_agents: set[str] = set()
        self.changed_channels: set[str] = set()
        self._minute_floor = 0
        #: The minute buckets held (pruning looks at these only).
        self._minute_keys: set[BucketKey] = set()
        #: 15-minute buckets starting before this (local today's start) are not in memory.
        self._history_floor = 0
        #: Where the clock's next local day starts (the floor moves then).
        self._next_day = 0
        #: Buckets that left memory with changes not written yet (their full counters).
        self.evicted: dict[BucketKey, Counters] = {}
        #: Counted into buckets no longer in memory: deltas to add to the stored rows.
        self.late: dict[BucketKey, Counters] = {}

    # --- settings ---------------------------------------------------------------------------

    def queue(self, queue_id: str) -> QueueSettings:
        q = self.queues.get(queue_id)
        if q is None:
            q = self.queues[queue_id] = QueueSettings(queue_id)
            self.dirty_entities.add((QUEUE, queue_id))
        return q

    def _set_zone(self, name: str) -> None:
        self.time_zone = name
        self.tz = zone(name)
        self._next_day = 0  # today's bounds move with the zone (the floor never goes back)

    # --- counters ---------------------------------------------------------------------------

    def _counters(self, queue_id: str, channel: str, at: int) -> list[Counters]:
        """The 15-minute bucket and (when still kept) the minute bucket holding `at`."""
        settings = self.queue(queue_id)
        out = []
        start15 = bucket_start(at, 15, self.tz)
        key15 = (queue_id, channel, 15, start15)
        out.append(self._bucket(key15, settings))
        minute = at - at % MINUTE_MS
        if minute >= self._minute_floor:
            out.append(self._bucket((queue_id, channel, 1, minute), settings))
        self.series.add((queue_id, channel))
        self.changed_queues.add(queue_id)
        self.changed_channels.add(channel)
        return out

    def _bucket(self, key: BucketKey, settings: QueueSettings) -> Counters:
        c = self.buckets.get(key)
        if c is None:
            if key[2] != 1 and key[3] < self._history_floor:
                c = self.late.get(key)
                if c is None:
                    c = self.late[key] = Counters()
                c.sl_threshold_s = settings.threshold_s
                c.short_abandon_threshold_s = settings.short_abandon_s
                return c
            c = self.buckets[key] = Counters()
            if key[2] == 1:
                self._minute_keys.add(key)
        c.sl_threshold_s = settings.threshold_s
        c.short_abandon_threshold_s = settings.short_abandon_s
        self.dirty_buckets.add(key)
        return c

    def _tick(self, at: int) -> None:
        if at > self.clock:
            self.clock = at
            self.dirty_entities.add((TENANT, ""))
            floor = at - at % MINUTE_MS - (MINUTE_BUCKETS_KEPT - 1) * MINUTE_MS
            if floor > self._minute_floor:
                self._minute_floor = floor
                for key in [k for k in self._minute_keys if k[3] < floor]:
                    self._minute_keys.discard(key)
                    del self.buckets[key]
                    self.dirty_buckets.add(key)
            if at >= self._next_day:
                self._new_day(at)

    def _new_day(self, at: int) -> None:
        """The clock is in a new local day: older 15-minute buckets leave memory."""
        today = day_start(at, self.tz)
        self._next_day = day_start(today + _DAY_AND_MORE_MS, self.tz)
        if today <= self._history_floor:
            return
        self._history_floor = today
        for key in [k for k in self.buckets if k[2] != 1 and k[3] < today]:
            counters = self.buckets.pop(key)
            if key in self.dirty_buckets:
                self.dirty_buckets.discard(key)
                self.evicted[key] = counters

    # --- waiting ----------------------------------------------------------------------------

    def _wait_in(self, c: Contact, queue_id: str, at: int) -> None:
        c.queue_id, c.entered_at, c.waiting = queue_id, at, True
        self.waiting.setdefault(queue_id, {})[c.interaction_id] = at
        self.changed_queues.add(queue_id)
        self.changed_channels.add(c.channel)

    def _stop_waiting(self, c: Contact) -> None:
        if c.waiting and c.queue_id is not None:
            self.waiting.get(c.queue_id, {}).pop(c.interaction_id, None)
            self.changed_queues.add(c.queue_id)
            self.changed_channels.add(c.channel)
        c.waiting = False

    def _touch(self, c: Contact) -> None:
        self.dirty_entities.add((CONTACT, c.interaction_id))

    def _forget(self, c: Contact) -> None:
        self._stop_waiting(c)
        self.contacts.pop(c.interaction_id, None)
        self.dirty_entities.add((CONTACT, c.interaction_id))

    # --- agents -----------------------------------------------------------------------------

    def agent(self, agent_id: str) -> Agent:
        a = self.agents.get(agent_id)
        if a is None:
            a = self.agents[agent_id] = Agent(agent_id)
            self._count_agent(a, +1)
        return a

    def _count_agent(self, a: Agent, sign: int) -> None:
        for q in a.queues:
            counts = self.queue_agents.setdefault(q, {})
            counts[a.activity] = counts.get(a.activity, 0) + sign
            self.changed_queues.add(q)
        for ch in a.channels:
            counts = self.channel_agents.setdefault(ch, {})
            counts[a.activity] = counts.get(a.activity, 0) + sign
            self.changed_channels.add(ch)

    def _accrue(self, a: Agent, at: int) -> None:
        """Count the time since the last accrual into today's totals. A new local day starts
        the totals afresh from local midnight."""
        day = local_date(at, self.tz)
        if day != a.day:
            a.day = day
            a.handled = a.handle_ms = a.load_ms = a.capacity_ms = 0
            a.state_ms = {}
            a.accrued_to = max(a.accrued_to, day_start(at, self.tz)) if a.accrued_to else 0
        if a.accrued_to and at > a.accrued_to:
            elapsed = at - a.accrued_to
            key = a.activity.value
            a.state_ms[key] = a.state_ms.get(key, 0) + elapsed
            if a.activity is not Activity.OFFLINE:
                a.load_ms += a.load * elapsed
                a.capacity_ms += a.capacity * elapsed
        if at > a.accrued_to:
            a.accrued_to = at

    def _agent_changed(self, a: Agent) -> None:
        self.dirty_entities.add((AGENT, a.agent_id))
        self.changed_agents.add(a.agent_id)

    def _leg_ended(self, c: Contact, agent_id: str | None, handle_ms: int, at: int) -> None:
        """An agent's leg is over: it counts as handled where it ends (AHT)."""
        if c.leg_queue is not None:
            for counters in self._counters(c.leg_queue, c.channel, at):
                counters.handled += 1
                counters.handle_time_ms_total += handle_ms
        if agent_id:
            a = self.agent(agent_id)
            self._accrue(a, at)
            a.handled += 1
            a.handle_ms += handle_ms
            self._agent_changed(a)

    # --- the fold ---------------------------------------------------------------------------

    def apply(self, fact: f.Fact) -> None:
        self._tick(fact.at)
        handler = _HANDLERS.get(type(fact))
        if handler is not None:
            handler(self, fact)

    def _failed(self, fact: f.ContactFailed) -> None:
        c = self.contacts.get(fact.interaction_id)
        if c is not None:
            self._forget(c)

    def _conversation_ended(self, fact: f.ConversationEnded) -> None:
        c = self.contacts.get(fact.interaction_id)
        if c is not None and fact.agent_id:
            c.pending_ms = fact.agent_talk_ms + fact.agent_hold_ms
            c.agent_id = fact.agent_id
            self._touch(c)

    def _wrap_up_finished(self, fact: f.WrapUpFinished) -> None:
        c = self.contacts.get(fact.interaction_id)
        if c is not None and c.pending_ms is not None:
            self._leg_ended(c, fact.agent_id, c.pending_ms + fact.wrap_up_ms, fact.at)
            c.pending_ms = None
            c.agent_id = None
            self._touch(c)

    def _completed(self, fact: f.ContactCompleted) -> None:
        c = self.contacts.get(fact.interaction_id)
        if c is not None:
            if c.pending_ms is not None:
                self._leg_ended(c, c.agent_id, c.pending_ms + fact.wrap_up_ms, fact.at)
            self._forget(c)

    def _agent_configured(self, fact: f.AgentConfigured) -> None:
        a = self.agent(fact.agent_id)
        self._count_agent(a, -1)
        a.name, a.queues, a.channels = fact.name, fact.queues, fact.channels
        a.capacity = fact.capacity
        self._count_agent(a, +1)
        self._agent_changed(a)

    def _queue_configured(self, fact: f.QueueConfigured) -> None:
        q = self.queue(fact.queue_id)
        q.name = fact.name or q.name
        q.routing_threshold_s = fact.sl_threshold_s
        q.routing_target_percent = fact.sl_target_percent
        self.dirty_entities.add((QUEUE, q.queue_id))
        self.changed_queues.add(q.queue_id)

    def _queue_reporting_configured(self, fact: f.QueueReportingConfigured) -> None:
        q = self.queue(fact.queue_id)
        q.variant = fact.variant
        q.short_abandon_s = fact.short_abandon_threshold_s
        q.fallback_threshold_s = fact.sl_threshold_s
        q.fallback_target_percent = fact.sl_target_percent
        self.dirty_entities.add((QUEUE, q.queue_id))
        self.changed_queues.add(q.queue_id)

    def _tenant_reporting_configured(self, fact: f.TenantReportingConfigured) -> None:
        self._set_zone(fact.time_zone)
        self.dirty_entities.add((TENANT, ""))
        self.changed_queues.update(self.queues)

    def _queued(self, e: f.ContactQueued) -> None:
        c = self.contacts.get(e.interaction_id)
        if c is None:
            c = self.contacts[e.interaction_id] = Contact(e.interaction_id, channel=e.channel)
        c.channel = e.channel or c.channel
        if c.waiting and c.queue_id == e.queue_id:
            return  # requeued where it already waits: the same offer
        if c.queue_id is not None and c.queue_id != e.queue_id:
            # Left the previous queue for this one (overflow, or transfer after an answer).
            for counters in self._counters(c.queue_id, c.channel, c.entered_at):
                counters.flow_outs += 1
        self._stop_waiting(c)
        self._wait_in(c, e.queue_id, e.at)
        for counters in self._counters(e.queue_id, c.channel, e.at):
            counters.offered += 1
        self._touch(c)

    def _answered(self, e: f.ContactAnswered) -> None:
        c = self.contacts.get(e.interaction_id)
        if c is None:  # never queued (direct or outbound): an agent leg only
            c = self.contacts[e.interaction_id] = Contact(e.interaction_id)
        if c.waiting and c.queue_id is not None:
            wait = e.queue_wait_ms if e.queue_wait_ms is not None else e.at - c.entered_at
            threshold_ms = self.queue(c.queue_id).threshold_s * 1000
            for counters in self._counters(c.queue_id, c.channel, c.entered_at):
                counters.answered += 1
                counters.answer_wait_ms_total += wait
                if wait <= threshold_ms:
                    counters.answered_within_threshold += 1
            self._stop_waiting(c)
            c.leg_queue = c.queue_id
        c.agent_id = e.agent_id
        self._touch(c)

    def _abandoned(self, e: f.ContactAbandoned) -> None:
        c = self.contacts.get(e.interaction_id)
        if c is None:
            return
        if c.waiting and c.queue_id is not None:
            wait = e.queue_wait_ms if e.queue_wait_ms is not None else e.at - c.entered_at
            q = self.queue(c.queue_id)
            for counters in self._counters(c.queue_id, c.channel, c.entered_at):
                counters.abandoned += 1
                if wait <= q.threshold_s * 1000:
                    counters.abandoned_within_threshold += 1
                if wait < q.short_abandon_s * 1000:
                    counters.short_abandons += 1
        self._forget(c)

    def _transferred(self, e: f.ContactTransferred) -> None:
        c = self.contacts.get(e.interaction_id)
        if c is None:
            return
        self._leg_ended(c, e.from_agent_id, e.agent_talk_ms + e.agent_hold_ms, e.at)
        c.agent_id = None if e.blind else e.to_agent_id
        if e.blind:
            c.leg_queue = None
        self._touch(c)

    def _agent_state(self, e: f.AgentStateChanged) -> None:
        a = self.agent(e.agent_id)
        self._accrue(a, e.at)
        activity = ACTIVITY_OF_ROUTING_STATE.get(e.state, Activity.OFFLINE)
        if activity is not a.activity:
            self._count_agent(a, -1)
            a.activity = activity
            self._count_agent(a, +1)
        a.since = e.at
        a.reason_code = e.reason_code
        a.load, a.capacity = e.load, e.capacity
        self._agent_changed(a)

    # --- rows -------------------------------------------------------------------------------

    def entity_json(self, kind: str, key: str) -> dict[str, Any] | None:
        """The row of an entity, or None when it is gone."""
        if kind == TENANT:
            return {"time_zone": self.time_zone, "clock": self.clock}
        if kind == QUEUE:
            q = self.queues.get(key)
            return None if q is None else q.to_json()
        if kind == AGENT:
            a = self.agents.get(key)
            return None if a is None else a.to_json()
        c = self.contacts.get(key)
        return None if c is None else c.to_json()

    def entity_keys(self) -> list[EntityKey]:
        keys: list[EntityKey] = [(TENANT, "")]
        keys += [(QUEUE, k) for k in self.queues]
        keys += [(AGENT, k) for k in self.agents]
        keys += [(CONTACT, k) for k in self.contacts]
        return keys

    @property
    def minute_floor(self) -> int:
        """Minute buckets starting before this are gone (out of the rolling windows)."""
        return self._minute_floor

    @property
    def history_floor(self) -> int:
        """15-minute buckets starting before this are kept in PostgreSQL only."""
        return self._history_floor

    def load_entity(self, kind: str, key: str, d: dict[str, Any]) -> None:
        if kind == TENANT:
            self._set_zone(d["time_zone"])
            self.clock = d["clock"]
            self._minute_floor = (
                self.clock - self.clock % MINUTE_MS - (MINUTE_BUCKETS_KEPT - 1) * MINUTE_MS
            )
            if self.clock:
                self._new_day(self.clock)
        elif kind == QUEUE:
            self.queues[key] = QueueSettings.from_json(key, d)
        elif kind == AGENT:
            a = self.agents[key] = Agent.from_json(key, d)
            self._count_agent(a, +1)
        elif kind == CONTACT:
            c = self.contacts[key] = Contact.from_json(key, d)
            if c.waiting and c.queue_id is not None:
                self.waiting.setdefault(c.queue_id, {})[key] = c.entered_at

    def load_bucket(self, key: BucketKey, counters: Counters) -> None:
        """A stored row (one of history, before the floor, stays out of memory)."""
        if key[2] != 1 and key[3] < self._history_floor:
            return
        self.series.add((key[0], key[1]))
        self.buckets[key] = counters
        if key[2] == 1:
            self._minute_keys.add(key)

    def drain_history(self) -> tuple[dict[BucketKey, Counters], dict[BucketKey, Counters]]:
        """The buckets that left memory with unwritten changes (write them as they are), and
        the late deltas (add them to the stored rows, after the former); and forget both."""
        out = (self.evicted, self.late)
        self.evicted, self.late = {}, {}
        return out

    def drain(self) -> tuple[set[EntityKey], set[BucketKey]]:
        """What changed since the last drain (for writing), and forget it."""
        entities, buckets = self.dirty_entities, self.dirty_buckets
        self.dirty_entities, self.dirty_buckets = set(), set()
        return entities, buckets

    def drain_changes(self) -> tuple[set[str], set[str], set[str]]:
        """Queues, agents and channels whose view changed since the last call (the wallboard)."""
        out = (self.changed_queues, self.changed_agents, self.changed_channels)
        self.changed_queues, self.changed_agents, self.changed_channels = set(), set(), set()
        return out


#: The fold's step per kind of fact (a dict lookup, not a chain of isinstance checks: the
#: rebuild folds every event ever consumed).
_HANDLERS: Final[dict[type[Any], Callable[[TenantState, Any], None]]] = {
    f.ContactQueued: TenantState._queued,
    f.ContactAnswered: TenantState._answered,
    f.ContactAbandoned: TenantState._abandoned,
    f.ContactFailed: TenantState._failed,
    f.ContactTransferred: TenantState._transferred,
    f.ConversationEnded: TenantState._conversation_ended,
    f.WrapUpFinished: TenantState._wrap_up_finished,
    f.ContactCompleted: TenantState._completed,
    f.AgentStateChanged: TenantState._agent_state,
    f.AgentConfigured: TenantState._agent_configured,
    f.QueueConfigured: TenantState._queue_configured,
    f.QueueReportingConfigured: TenantState._queue_reporting_configured,
    f.TenantReportingConfigured: TenantState._tenant_reporting_configured,
}


class ReportingState:
    """Every tenant's state; `apply` folds one fact."""

    def __init__(self) -> None:
        self.tenants: dict[str, TenantState] = {}

    def tenant(self, tenant_id: str) -> TenantState:
        t = self.tenants.get(tenant_id)
        if t is None:
            t = self.tenants[tenant_id] = TenantState(tenant_id)
            t.dirty_entities.add((TENANT, ""))
        return t

    def apply(self, fact: f.Fact) -> TenantState:
        t = self.tenant(fact.tenant_id)
        t.apply(fact)
        return t

    def apply_all(self, facts: list[f.Fact]) -> None:
        for fact in facts:
            self.apply(fact)
