"""The routing state of one tenant and its fold (`RoutingState.apply`).

Everything here changes only by applying events, so a state rebuilt from the log is the same,
down to the order of its indexes, as the one that decided. Plain slotted classes, integers
(milliseconds since the epoch) and dicts: pydantic appears only at the edges, in events.

Indexes that keep decisions away from full scans:

- ready agents, per (queue, channel), (group, channel) and (skill, channel): agents that are
  AVAILABLE with room for one more contact of that channel. Each index is a dict used as an
  ordered set, in the order the agents became ready, which is their idle order: an agent is
  (re)inserted exactly when its idle time restarts (see `_reindex`);
- waiting contacts, per (queue, policy step) bucket and, inside it, per requirement signature
  (channel, language, skills): a sorted container keyed by
  `(front, virtual_deadline, first_enqueued, seq)` where front is 0 for a contact returned by
  a reject or time-out (the front of its queue) and
  `virtual_deadline = first_enqueued + sl_threshold - (queue priority + contact priority) * aging`
  is both the order of priority with aging inside a queue and the service-level risk across
  queues;
- per agent, the buckets whose pool includes it (cached until configuration changes).
"""

from __future__ import annotations

import heapq
from collections import deque
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo

from contactcenter.routing.domain.events import (
    AgentConfigured,
    AgentStateChanged,
    ContactAssigned,
    ContactEnded,
    ContactOverflowed,
    ContactQueued,
    ContactRemoved,
    MaxWaitReached,
    OfferAccepted,
    OfferCancelled,
    OfferIssued,
    OfferRejected,
    OfferTimedOut,
    PolicyConfigured,
    PolicyStepReached,
    PreferredAgentReleased,
    QueueConfigured,
    RoutingEvent,
    WrapUpEnded,
)
from contactcenter.routing.domain.sorted import Entry, SortedEntries
from contactcenter.routing.domain.timers import Timer, TimerKind
from contactcenter.routing.domain.values import (
    DEFAULT_STEP,
    EXCLUSIVE_VALUES,
    MAX_PROFICIENCY,
    MIN_PROFICIENCY,
    AgentState,
    OfferCancelReason,
    PolicyStep,
    Presence,
    RemovalReason,
    SelectionStrategy,
    SkillRequirement,
    from_ms,
    language_key,
    to_ms,
)

_S = 1000

#: Offer cancellations after which the contact waits again (others: it leaves or moves on).
_RETURNING_CANCELS: Final = frozenset(
    {
        OfferCancelReason.AGENT_UNAVAILABLE,
        OfferCancelReason.AGENT_NOT_RESPONDING,
        OfferCancelReason.AGENT_RECONFIGURED,
    }
)

Requirements = tuple[tuple[str, int], ...]
#: Channels are their plain string values inside the state: an Enum's __hash__ is a Python
#: function, and channels key the hottest dicts and sets.
Signature = tuple[str, str | None, Requirements]


class WorkStatus(StrEnum):
    OFFERED = "offered"
    ASSIGNED = "assigned"
    WRAP_UP = "wrap_up"


class ContactStatus(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"


class Item:
    """Capacity an agent holds for one interaction: an offer, the work, or its wrap-up."""

    __slots__ = (
        "cause_id",
        "channel",
        "correlation_id",
        "cost",
        "interaction_id",
        "offer_id",
        "queue_id",
        "since",
        "status",
        "wrap_up_until",
    )

    def __init__(
        self,
        interaction_id: str,
        queue_id: str,
        channel: str,
        cost: int,
        status: WorkStatus,
        since: int,
        correlation_id: UUID,
        cause_id: UUID,
        offer_id: str | None = None,
    ) -> None:
        self.interaction_id = interaction_id
        self.queue_id = queue_id
        self.channel = channel
        self.cost = cost
        self.status = status
        self.since = since
        self.correlation_id = correlation_id
        self.cause_id = cause_id
        self.offer_id = offer_id
        self.wrap_up_until: int | None = None


class Agent:
    __slots__ = (
        "capacity",
        "channels",
        "config",
        "costs",
        "entitled",
        "entitled_epoch",
        "exclusive",
        "group_set",
        "id",
        "idle_seq",
        "idle_since",
        "interruptible",
        "items",
        "langs",
        "load",
        "ordinal",
        "preferred",
        "presence",
        "queue_set",
        "ready",
        "ready_dicts",
        "reason_code",
        "skills",
        "state",
        "today_count",
        "today_end",
        "zone",
    )

    def __init__(self, agent_id: str, ordinal: int) -> None:
        self.id = agent_id
        #: Order of first configuration: the deterministic tie-break between agents.
        self.ordinal = ordinal
        self.config: AgentConfigured | None = None
        self.skills: dict[str, int] = {}
        self.langs: frozenset[str] = frozenset()
        self.queue_set: frozenset[str] = frozenset()
        self.group_set: frozenset[str] = frozenset()
        self.channels: frozenset[str] = frozenset()
        self.capacity = 1
        self.costs: dict[str, int] = {}
        self.interruptible: frozenset[str] = frozenset()
        self.zone = "UTC"
        self.presence = Presence.OFFLINE
        self.reason_code: str | None = None
        self.state = AgentState.OFFLINE
        self.items: dict[str, Item] = {}
        #: Units in use, interrupted work not counted; `exclusive`: holds voice or video.
        self.load = 0
        self.exclusive = False
        self.idle_since = 0
        #: Order of the last (re)insertion in the ready indexes: their order, and the tie-break
        #: between agents idle since the same millisecond.
        self.idle_seq = 0
        #: Channels whose ready indexes hold the agent, and those indexes per channel.
        self.ready: frozenset[str] = frozenset()
        self.ready_dicts: dict[str, tuple[dict[Agent, None], ...]] = {}
        self.today_count = 0
        self.today_end = 0
        self.entitled: tuple[Bucket, ...] = ()
        self.entitled_epoch = -1
        #: Contacts waiting for this agent in particular (their preferred phase).
        self.preferred: SortedEntries | None = None

    def fits(self, channel: str) -> bool:
        """Room for one more contact of `channel` under the capacity and cross-channel rules:
        voice/video only beside interruptible work, nothing beside voice/video."""
        cost = self.costs.get(channel)
        if cost is None or channel not in self.channels:
            return False
        if channel in EXCLUSIVE_VALUES:
            interruptible = self.interruptible
            for item in self.items.values():
                if item.channel in EXCLUSIVE_VALUES or item.channel not in interruptible:
                    return False
            return cost <= self.capacity
        if self.exclusive:
            return False
        return self.load + cost <= self.capacity

    def contacts_today(self, now: int) -> int:
        return self.today_count if now < self.today_end else 0


class Group:
    """Waiting contacts of one bucket that share a requirement signature."""

    __slots__ = ("channel", "entries", "lang", "reqs", "signature")

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self.channel, self.lang, self.reqs = signature
        self.entries = SortedEntries()


class Bucket:
    """The waiting contacts of one queue at one policy step, and that step's pool."""

    __slots__ = ("delta", "group_ids", "groups", "queue", "queue_ids", "size", "spec", "step")

    def __init__(self, queue: Queue, step: int, spec: PolicyStep) -> None:
        self.queue = queue
        self.step = step
        self.spec = spec
        self.delta = spec.min_proficiency_delta
        own = (queue.id,) if spec.include_queue_agents else ()
        self.queue_ids = frozenset((*own, *spec.agent_queues))
        self.group_ids = frozenset(spec.agent_groups)
        self.groups: dict[Signature, Group] = {}
        self.size = 0

    def in_pool(self, agent: Agent) -> bool:
        return not (
            self.queue_ids.isdisjoint(agent.queue_set)
            and self.group_ids.isdisjoint(agent.group_set)
        )


class Queue:
    __slots__ = (
        "abandoned",
        "aging",
        "answered",
        "answered_in_sl",
        "base_reqs",
        "buckets",
        "channels",
        "config",
        "contacts",
        "exited",
        "id",
        "lang",
        "layout",
        "max_wait",
        "overflowed_in",
        "overflowed_out",
        "policy_id",
        "policy_version",
        "preferred_timeout",
        "priority",
        "rr_clock",
        "rr_last",
        "steps",
        "strategy",
        "threshold",
    )

    def __init__(self, config: QueueConfigured) -> None:
        self.id = config.queue_id
        self.contacts: dict[str, Contact] = {}
        self.buckets: list[Bucket] = []
        self.layout = 0
        self.rr_clock = 0
        self.rr_last: dict[str, int] = {}
        self.answered = self.answered_in_sl = self.abandoned = self.exited = 0
        self.overflowed_in = self.overflowed_out = 0
        self.policy_id: str | None = None
        self.policy_version = 0
        self.steps: tuple[PolicyStep, ...] = (DEFAULT_STEP,)
        self.configure(config)

    def configure(self, config: QueueConfigured) -> None:
        self.config = config
        self.channels = frozenset(channel.value for channel in config.channels)
        self.base_reqs = {r.skill: r.min_proficiency for r in config.required_skills}
        self.lang = language_key(config.language) if config.language else None
        self.threshold = config.sl_threshold_s * _S
        self.aging = config.aging_s * _S
        self.priority = config.priority
        self.strategy = config.strategy
        self.max_wait = None if config.max_wait_s is None else config.max_wait_s * _S
        self.preferred_timeout = config.preferred_agent_timeout_s * _S

    def step_at(self, waited: int) -> int:
        """The policy step in force after `waited` ms in the queue."""
        step = 0
        for i, spec in enumerate(self.steps):
            if spec.after_s * _S <= waited:
                step = i
        return step


class Offer:
    __slots__ = (
        "agent",
        "channel",
        "contact",
        "cost",
        "event",
        "expires",
        "issued",
        "offer_id",
        "queue_id",
    )

    def __init__(self, event: OfferIssued, contact: Contact, agent: Agent, issued: int) -> None:
        self.offer_id = event.offer_id
        self.event = event
        self.contact = contact
        self.agent = agent
        self.queue_id = event.queue_id
        self.channel: str = event.channel.value
        self.cost = event.cost
        self.issued = issued
        self.expires = to_ms(event.expires_at)


class Contact:
    """A contact routing holds: waiting in a queue, or offered to an agent."""

    __slots__ = (
        "bucket",
        "cause_id",
        "channel",
        "container",
        "correlation_id",
        "declined",
        "entered",
        "entry",
        "first",
        "group",
        "hops",
        "iid",
        "in_preferred",
        "lang",
        "language",
        "offer",
        "own_skills",
        "preferred_id",
        "preferred_until",
        "priority",
        "queue",
        "reqs",
        "returned",
        "seq",
        "status",
        "step",
        "visit",
    )

    def __init__(self, event: ContactQueued, queue: Queue, seq: int, visit: int, t: int) -> None:
        self.iid = event.interaction_id
        self.seq = seq
        self.channel: str = event.channel.value
        self.priority = event.priority
        self.own_skills = {r.skill: r.min_proficiency for r in event.required_skills}
        self.language = event.language
        self.queue = queue
        self.entered = t
        self.first = to_ms(event.first_enqueued_at)
        self.visit = visit
        self.step = 0
        self.hops = 0
        self.status = ContactStatus.WAITING
        self.preferred_id = event.preferred_agent_id
        self.preferred_until = (
            None if event.preferred_until is None else to_ms(event.preferred_until)
        )
        self.in_preferred = self.preferred_until is not None
        self.entry: Entry | None = None
        self.container: SortedEntries | None = None
        self.group: Group | None = None
        self.bucket: Bucket | None = None
        self.returned = False
        self.declined: set[str] | None = None
        self.offer: Offer | None = None
        self.reqs: Requirements = ()
        self.lang: str | None = None
        self.correlation_id = event.correlation_id
        self.cause_id = event.event_id


class ExplainedOffer:
    __slots__ = ("event", "status")

    def __init__(self, event: OfferIssued) -> None:
        self.event = event
        self.status = WorkStatus.OFFERED.value


class RoutingState:
    """One tenant's routing state; `apply` folds one event into it."""

    def __init__(self, tenant_id: str, *, explain_capacity: int = 10_000) -> None:
        self.tenant_id = tenant_id
        self.version = 0
        self.now = 0
        self.agents: dict[str, Agent] = {}
        self.queues: dict[str, Queue] = {}
        self.policies: dict[str, PolicyConfigured] = {}
        self.contacts: dict[str, Contact] = {}
        #: Agents holding assigned or wrap-up work on an interaction.
        self.holders: dict[str, list[Agent]] = {}
        self.offers: dict[str, Offer] = {}
        self.ready_q: dict[tuple[str, str], dict[Agent, None]] = {}
        self.ready_g: dict[tuple[str, str], dict[Agent, None]] = {}
        self.ready_s: dict[tuple[str, str], dict[Agent, None]] = {}
        self.buckets_by_queue: dict[str, list[Bucket]] = {}
        self.buckets_by_group: dict[str, list[Bucket]] = {}
        #: Bumped by every configuration change: cached pools are stale.
        self.epoch = 0
        self.timers: list[tuple[int, int, TimerKind, str, Any]] = []
        self.timer_seq = 0
        #: Timers scheduled since the engine last collected them (returned in Outcome).
        self.scheduled: list[Timer] | None = None
        self.contact_seq = 0
        self.visit_seq = 0
        self.idle_seq = 0
        self.offers_issued = 0
        self.explain_capacity = explain_capacity
        self.explained: dict[str, ExplainedOffer] = {}
        self.explained_order: deque[str] = deque()
        self._apply = {
            QueueConfigured: self._queue_configured,
            AgentConfigured: self._agent_configured,
            PolicyConfigured: self._policy_configured,
            AgentStateChanged: self._agent_state_changed,
            ContactQueued: self._contact_queued,
            PolicyStepReached: self._step_reached,
            PreferredAgentReleased: self._preferred_released,
            MaxWaitReached: self._max_wait_reached,
            ContactOverflowed: self._contact_overflowed,
            ContactRemoved: self._contact_removed,
            OfferIssued: self._offer_issued,
            OfferAccepted: self._offer_accepted,
            OfferRejected: self._offer_returned,
            OfferTimedOut: self._offer_returned,
            OfferCancelled: self._offer_returned,
            ContactAssigned: self._contact_assigned,
            ContactEnded: self._contact_ended,
            WrapUpEnded: self._wrap_up_ended,
        }

    # --- the fold --------------------------------------------------------------------------------

    def apply(self, event: RoutingEvent) -> None:
        """Fold one event (stored, or just decided) into the state."""
        if event.tenant_id != self.tenant_id:
            raise ValueError(f"event of tenant {event.tenant_id!r} folded into {self.tenant_id!r}")
        self.fold(event, to_ms(event.occurred_at))

    def fold(self, event: RoutingEvent, t: int) -> None:
        """`apply` with the event's time already in milliseconds (the engine knows it)."""
        if t > self.now:
            self.now = t
        else:
            t = self.now
        handler = self._apply.get(type(event))
        if handler is None:
            raise TypeError(f"not a routing event: {event.event_type}")
        handler(event, t)  # type: ignore[operator]
        self.version += 1

    # --- configuration ---------------------------------------------------------------------------

    def _queue_configured(self, e: QueueConfigured, t: int) -> None:
        queue = self.queues.get(e.queue_id)
        if queue is None:
            queue = self.queues[e.queue_id] = Queue(e)
        else:
            queue.configure(e)
        self._lay_out(queue, t)

    def _policy_configured(self, e: PolicyConfigured, t: int) -> None:
        self.policies[e.policy_id] = e
        for queue in self.queues.values():
            if queue.config.policy_id == e.policy_id:
                self._lay_out(queue, t)

    def _lay_out(self, queue: Queue, t: int) -> None:
        """(Re)build a queue's buckets from its policy and put its contacts back in them."""
        self.epoch += 1
        policy = self.policies.get(queue.config.policy_id or "")
        queue.policy_id = policy.policy_id if policy else None
        queue.policy_version = policy.version if policy else 0
        queue.steps = policy.steps if policy else (DEFAULT_STEP,)
        queue.layout += 1
        waiting = [c for c in queue.contacts.values() if c.status is ContactStatus.WAITING]
        for contact in waiting:
            self._take_out(contact)
        for bucket in queue.buckets:
            for source, index in (
                (bucket.queue_ids, self.buckets_by_queue),
                (bucket.group_ids, self.buckets_by_group),
            ):
                for key in source:
                    index[key] = [b for b in index[key] if b is not bucket]
        queue.buckets = [Bucket(queue, i, spec) for i, spec in enumerate(queue.steps)]
        for bucket in queue.buckets:
            for key in bucket.queue_ids:
                self.buckets_by_queue.setdefault(key, []).append(bucket)
            for key in bucket.group_ids:
                self.buckets_by_group.setdefault(key, []).append(bucket)
        for contact in queue.contacts.values():
            contact.step = queue.step_at(t - contact.entered)
            self._requirements(contact)
            self._schedule_contact_timers(contact, t)
        for contact in waiting:
            self._put_in(contact)

    def _agent_configured(self, e: AgentConfigured, t: int) -> None:
        agent = self.agents.get(e.agent_id)
        if agent is None:
            agent = self.agents[e.agent_id] = Agent(e.agent_id, len(self.agents))
        self.epoch += 1
        self._unindex(agent)
        agent.config = e
        agent.skills = dict(e.skills)
        agent.langs = frozenset(language_key(tag) for tag in e.languages)
        agent.queue_set = frozenset(e.queues)
        agent.group_set = frozenset(e.groups)
        agent.channels = frozenset(channel.value for channel in e.channels)
        agent.capacity = e.capacity
        agent.costs = {channel.value: cost for channel, cost in e.channel_costs.items()}
        agent.interruptible = frozenset(channel.value for channel in e.interruptible_channels)
        agent.zone = e.time_zone
        agent.ready_dicts = {
            channel: (
                *(self.ready_q.setdefault((q, channel), {}) for q in e.queues),
                *(self.ready_g.setdefault((g, channel), {}) for g in e.groups),
                *(self.ready_s.setdefault((s, channel), {}) for s in e.skills),
            )
            for channel in agent.channels
        }
        recount(agent)
        self._reindex(agent, t)

    # --- agents ----------------------------------------------------------------------------------

    def _agent_state_changed(self, e: AgentStateChanged, t: int) -> None:
        agent = self.agents[e.agent_id]
        agent.state = e.state
        agent.reason_code = e.reason_code
        if agent.presence is not e.presence:
            agent.presence = e.presence
            self._reindex(agent, t)

    def _unindex(self, agent: Agent) -> None:
        for channel in agent.ready:
            for index in agent.ready_dicts[channel]:
                del index[agent]
        agent.ready = frozenset()

    def _reindex(self, agent: Agent, t: int) -> None:
        """Put the agent in the ready indexes of every channel it has room for, at the end:
        its idle time restarts now (called exactly when presence, load or profile change)."""
        self._unindex(agent)
        agent.idle_since = t
        self.idle_seq += 1
        agent.idle_seq = self.idle_seq
        if agent.presence is not Presence.AVAILABLE:
            return
        ready = frozenset(channel for channel in agent.channels if agent.fits(channel))
        for channel in ready:
            for index in agent.ready_dicts[channel]:
                index[agent] = None
        agent.ready = ready

    def _hold(self, agent: Agent, item: Item, t: int) -> None:
        agent.items[item.interaction_id] = item
        recount(agent)
        self._reindex(agent, t)

    def _release(self, agent: Agent, interaction_id: str, t: int) -> Item | None:
        item = agent.items.pop(interaction_id, None)
        if item is not None:
            holders = self.holders.get(interaction_id)
            if holders is not None and agent in holders:
                holders.remove(agent)
                if not holders:
                    del self.holders[interaction_id]
            recount(agent)
            self._reindex(agent, t)
        return item

    # --- contacts --------------------------------------------------------------------------------

    def _requirements(self, contact: Contact) -> None:
        """The contact's requirements at its current step: queue and own skills (the higher
        minimum wins), moved by the step's delta within 1..5; its language or the queue's."""
        queue = contact.queue
        delta = queue.steps[contact.step].min_proficiency_delta
        merged = dict(queue.base_reqs)
        for skill, level in contact.own_skills.items():
            if level > merged.get(skill, 0):
                merged[skill] = level
        contact.reqs = tuple(
            sorted(
                (skill, min(MAX_PROFICIENCY, max(MIN_PROFICIENCY, level + delta)))
                for skill, level in merged.items()
            )
        )
        contact.lang = language_key(contact.language) if contact.language else queue.lang

    def _put_in(self, contact: Contact) -> None:
        """Into its bucket (or its preferred agent's list) at its key."""
        queue = contact.queue
        deadline = (
            contact.first + queue.threshold - (queue.priority + contact.priority) * queue.aging
        )
        entry = (0 if contact.returned else 1, deadline, contact.first, contact.seq, contact)
        contact.entry = entry
        agent = self.agents.get(contact.preferred_id or "") if contact.in_preferred else None
        if agent is not None:
            if agent.preferred is None:
                agent.preferred = SortedEntries()
            container = agent.preferred
            contact.group = None
            contact.bucket = None
        else:
            contact.in_preferred = False
            bucket = queue.buckets[contact.step]
            signature = (contact.channel, contact.lang, contact.reqs)
            group = bucket.groups.get(signature)
            if group is None:
                group = bucket.groups[signature] = Group(signature)
            container = group.entries
            contact.group = group
            contact.bucket = bucket
            bucket.size += 1
        container.add(entry)
        contact.container = container

    def _take_out(self, contact: Contact) -> None:
        container, entry = contact.container, contact.entry
        if container is None or entry is None:
            return
        container.remove(entry)
        group, bucket = contact.group, contact.bucket
        if group is not None and bucket is not None:
            bucket.size -= 1
            if not group.entries:
                del bucket.groups[group.signature]
        # Dropping the entry also breaks the contact <-> entry cycle: a forgotten contact is
        # freed by reference counting, never left for the cyclic garbage collector.
        contact.entry = None
        contact.container = None
        contact.group = None
        contact.bucket = None

    def _forget(self, contact: Contact) -> None:
        self._take_out(contact)
        contact.queue.contacts.pop(contact.iid, None)
        if self.contacts.get(contact.iid) is contact:
            del self.contacts[contact.iid]

    def _contact_queued(self, e: ContactQueued, t: int) -> None:
        previous = self.contacts.get(e.interaction_id)
        if previous is not None:
            self._forget(previous)
        queue = self.queues[e.queue_id]
        self.contact_seq += 1
        self.visit_seq += 1
        contact = Contact(e, queue, self.contact_seq, self.visit_seq, t)
        if previous is not None:
            contact.hops = previous.hops
        if contact.in_preferred and contact.preferred_id not in self.agents:
            contact.in_preferred = False
        self.contacts[contact.iid] = contact
        queue.contacts[contact.iid] = contact
        self._requirements(contact)
        self._put_in(contact)
        self._schedule_contact_timers(contact, t)

    def _schedule_contact_timers(self, contact: Contact, t: int) -> None:
        queue = contact.queue
        if contact.step + 1 < len(queue.steps):
            at = contact.entered + queue.steps[contact.step + 1].after_s * _S
            token = (contact.visit, contact.step + 1, queue.layout)
            self.schedule(max(at, t), TimerKind.POLICY_STEP, contact.iid, token)
        if queue.max_wait is not None:
            at = contact.entered + queue.max_wait
            self.schedule(max(at, t), TimerKind.MAX_WAIT, contact.iid, contact.visit)
        if contact.in_preferred and contact.preferred_until is not None:
            at = contact.preferred_until
            self.schedule(max(at, t), TimerKind.PREFERRED_TIMEOUT, contact.iid, contact.visit)

    def _step_reached(self, e: PolicyStepReached, t: int) -> None:
        contact = self.contacts[e.interaction_id]
        waiting = contact.status is ContactStatus.WAITING and not contact.in_preferred
        if waiting:
            self._take_out(contact)
        contact.step = e.step
        self._requirements(contact)
        if waiting:
            self._put_in(contact)
        queue = contact.queue
        if contact.step + 1 < len(queue.steps):
            at = contact.entered + queue.steps[contact.step + 1].after_s * _S
            token = (contact.visit, contact.step + 1, queue.layout)
            self.schedule(max(at, t), TimerKind.POLICY_STEP, contact.iid, token)

    def _preferred_released(self, e: PreferredAgentReleased, t: int) -> None:
        contact = self.contacts[e.interaction_id]
        waiting = contact.status is ContactStatus.WAITING
        if waiting:
            self._take_out(contact)
        contact.in_preferred = False
        if waiting:
            self._put_in(contact)

    def _max_wait_reached(self, e: MaxWaitReached, t: int) -> None:
        """Nothing changes yet: ContactOverflowed or ContactRemoved follows."""

    def _contact_overflowed(self, e: ContactOverflowed, t: int) -> None:
        contact = self.contacts[e.interaction_id]
        self._take_out(contact)
        contact.queue.contacts.pop(contact.iid, None)
        contact.queue.overflowed_out += 1
        queue = self.queues[e.to_queue_id]
        queue.overflowed_in += 1
        self.visit_seq += 1
        contact.queue = queue
        contact.entered = t
        contact.visit = self.visit_seq
        contact.hops = e.hop
        contact.priority = e.priority
        contact.own_skills = {r.skill: r.min_proficiency for r in e.required_skills}
        contact.step = 0
        contact.returned = False
        contact.declined = None
        contact.in_preferred = False
        contact.cause_id = e.event_id
        queue.contacts[contact.iid] = contact
        self._requirements(contact)
        self._put_in(contact)
        self._schedule_contact_timers(contact, t)

    def _contact_removed(self, e: ContactRemoved, t: int) -> None:
        contact = self.contacts.get(e.interaction_id)
        if contact is not None:
            if e.reason is RemovalReason.CANCELLED:
                contact.queue.abandoned += 1
            elif e.reason is RemovalReason.MAX_WAIT_EXIT:
                contact.queue.exited += 1
            self._forget(contact)
        if e.agent_id is not None:
            self._release(self.agents[e.agent_id], e.interaction_id, t)

    # --- offers and work -------------------------------------------------------------------------

    def _offer_issued(self, e: OfferIssued, t: int) -> None:
        contact = self.contacts[e.interaction_id]
        agent = self.agents[e.agent_id]
        self._take_out(contact)
        offer = Offer(e, contact, agent, t)
        contact.status = ContactStatus.OFFERED
        contact.offer = offer
        contact.returned = False
        self.offers[e.offer_id] = offer
        self.offers_issued += 1
        queue = contact.queue
        if queue.strategy is SelectionStrategy.ROUND_ROBIN:
            queue.rr_clock += 1
            queue.rr_last[agent.id] = queue.rr_clock
        item = Item(
            e.interaction_id,
            e.queue_id,
            e.channel.value,
            e.cost,
            WorkStatus.OFFERED,
            t,
            contact.correlation_id,
            e.event_id,
            e.offer_id,
        )
        self._hold(agent, item, t)
        self.schedule(offer.expires, TimerKind.OFFER_EXPIRY, e.offer_id, None)
        self._remember(e)

    def _remember(self, e: OfferIssued) -> None:
        self.explained[e.offer_id] = ExplainedOffer(e)
        self.explained_order.append(e.offer_id)
        while len(self.explained_order) > self.explain_capacity:
            self.explained.pop(self.explained_order.popleft(), None)

    def _close(self, offer_id: str, status: str) -> None:
        explained = self.explained.get(offer_id)
        if explained is not None:
            explained.status = status

    def _offer_accepted(self, e: OfferAccepted, t: int) -> None:
        offer = self.offers.pop(e.offer_id)
        contact = offer.contact
        contact.offer = None  # no contact <-> offer cycle left behind
        self._forget(contact)
        item = offer.agent.items[e.interaction_id]
        item.status = WorkStatus.ASSIGNED
        item.since = t
        item.cause_id = e.event_id
        self.holders.setdefault(e.interaction_id, []).append(offer.agent)
        self._close(e.offer_id, "accepted")

    def _offer_returned(self, e: OfferRejected | OfferTimedOut | OfferCancelled, t: int) -> None:
        offer = self.offers.pop(e.offer_id)
        contact, agent = offer.contact, offer.agent
        self._release(agent, e.interaction_id, t)
        contact.offer = None
        contact.status = ContactStatus.WAITING
        if isinstance(e, OfferCancelled):
            self._close(e.offer_id, "cancelled")
            if e.reason not in _RETURNING_CANCELS:
                # The contact leaves or moves on in the next event of the same append.
                return
        else:
            self._close(e.offer_id, "rejected" if isinstance(e, OfferRejected) else "timed_out")
            if contact.declined is None:
                contact.declined = set()
            contact.declined.add(agent.id)
        contact.returned = True
        contact.cause_id = e.event_id
        self._put_in(contact)

    def _contact_assigned(self, e: ContactAssigned, t: int) -> None:
        agent = self.agents[e.agent_id]
        queue = self.queues.get(e.queue_id)
        if queue is not None:
            queue.answered += 1
            if e.within_service_level:
                queue.answered_in_sl += 1
        if t >= agent.today_end:
            agent.today_count = 0
            agent.today_end = _next_midnight(t, agent.zone)
        agent.today_count += 1
        if e.interaction_id in agent.items:
            return  # accepted: OfferAccepted made the offer the work
        contact = self.contacts.get(e.interaction_id)
        correlation_id = e.correlation_id
        if contact is not None:
            correlation_id = contact.correlation_id
            self._forget(contact)
        item = Item(
            e.interaction_id,
            e.queue_id,
            e.channel.value,
            e.cost,
            WorkStatus.ASSIGNED,
            t,
            correlation_id,
            e.event_id,
            e.offer_id,
        )
        self._hold(agent, item, t)
        self.holders.setdefault(e.interaction_id, []).append(agent)

    def _contact_ended(self, e: ContactEnded, t: int) -> None:
        agent = self.agents[e.agent_id]
        if e.wrap_up_until is None:
            self._release(agent, e.interaction_id, t)
            return
        item = agent.items[e.interaction_id]
        item.status = WorkStatus.WRAP_UP
        item.since = t
        item.cause_id = e.event_id
        item.wrap_up_until = to_ms(e.wrap_up_until)
        self.schedule(item.wrap_up_until, TimerKind.WRAP_UP_END, e.interaction_id, agent.id)

    def _wrap_up_ended(self, e: WrapUpEnded, t: int) -> None:
        self._release(self.agents[e.agent_id], e.interaction_id, t)

    # --- timers ----------------------------------------------------------------------------------

    def schedule(self, at: int, kind: TimerKind, subject: str, token: Any) -> None:
        self.timer_seq += 1
        heapq.heappush(self.timers, (at, self.timer_seq, kind, subject, token))
        if self.scheduled is not None:
            self.scheduled.append(Timer(from_ms(at), kind, subject))


def recount(agent: Agent) -> None:
    """Load and exclusivity from the items held (a handful at most)."""
    exclusive = False
    for item in agent.items.values():
        if item.channel in EXCLUSIVE_VALUES:
            exclusive = True
    load = 0
    for item in agent.items.values():
        # Interruptible work beside voice/video is paused: it spends no capacity meanwhile.
        if exclusive and item.channel not in EXCLUSIVE_VALUES:
            continue
        load += item.cost
    agent.load = load
    agent.exclusive = exclusive


def _next_midnight(t: int, zone: str) -> int:
    """The first millisecond of the agent's next local day."""
    tz = ZoneInfo(zone)
    local = from_ms(t).astimezone(tz)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz)
    return to_ms(midnight)


def requirement_models(reqs: Requirements) -> tuple[SkillRequirement, ...]:
    return tuple(SkillRequirement(skill=s, min_proficiency=m) for s, m in reqs)
