"""The routing engine of one tenant: commands in, events out, every decision explained.

    engine = RoutingEngine("t-acme")                      # or RoutingEngine.from_events(...)
    outcome = engine.execute(QueueContact(...), CommandContext(now=now))
    store.append(stream_id_for(tenant), outcome.events, expected_version=engine.version - n)
    outcome.raise_error()                                   # after appending what happened
    wake_at = engine.next_timer_at()                        # then execute(Tick(), ...) then

`execute` first fires the timers due by `context.now` (offer time-outs, wrap-up ends, policy
steps, preferred-agent time-outs, maximum waits: each at its own time), then decides the
command. A refused command (ValidationFailed, NotFound, FailedPrecondition) appends nothing of
its own, but the timer events before it did happen: `Outcome.error` carries the refusal beside
them instead of raising, so that they are never lost.

Matching runs after every change that can make a pair (agent ready, contact waiting):

- contact side (a contact arrived, came back, reached a wider step, left its preferred agent):
  the queue's strategy picks among the ready agents of the contact's pool;
- agent side (an agent became available or got capacity back): the agent takes, among the
  contacts of every pool it belongs to, the one whose queue is most at risk of missing its
  service level: the smallest virtual deadline (see `state`), age breaking ties.

No starvation across queues (the bound the tests check): the virtual deadline of a contact c
in queue Q is `D(c) = a(c) + T(Q) - (P(Q) + p(c)) * A(Q)` (arrival, SL threshold, queue and
contact priority, aging seconds per priority point). An agent shared by several queues takes
another queue's contact d before c only if D(d) < D(c) (ties: the older first), that is only if

    a(d) < a(c) + Delta,   Delta = max over the agent's queues of (T - (P + p) * A)
                                 - min over them of (T - (P + p) * A)

so once every contact that arrived up to Delta after c is served, c is next: no stream of new
contacts in one queue can hold a contact of another queue back for ever. (Contacts returned by
a reject or time-out go to the front of their own queue; that reorders a queue, never another.)

Deterministic: no clock, no randomness, no iteration over hash-ordered sets where order
matters; event ids and offer ids derive from the tenant and the event / offer count, so the
same commands at the same times give the same events bit for bit, and a state rebuilt from
the events decides as the original would have.
"""

from __future__ import annotations

import hashlib
import heapq
from bisect import insort
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar
from uuid import UUID

from contactcenter.contracts.errors import DomainError, FailedPrecondition, NotFound
from contactcenter.routing.domain.commands import (
    AcceptOffer,
    AssignContact,
    CancelContact,
    Command,
    CommandContext,
    CompleteContact,
    ConfigureAgent,
    ConfigurePolicy,
    ConfigureQueue,
    EndContact,
    EndWrapUp,
    QueueContact,
    RecordAssignment,
    RejectOffer,
    SetAgentState,
    Tick,
)
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
from contactcenter.routing.domain.state import (
    Agent,
    Bucket,
    Contact,
    ContactStatus,
    Item,
    Offer,
    Queue,
    RoutingState,
    WorkStatus,
    recount,
    requirement_models,
)
from contactcenter.routing.domain.timers import Timer, TimerKind
from contactcenter.routing.domain.validation import validate
from contactcenter.routing.domain.values import (
    CHANNEL_VALUES,
    DEFAULT_CHANNEL_COSTS,
    EXPLAIN_TOP,
    MAX_OVERFLOW_HOPS,
    MIN_PROFICIENCY,
    AgentState,
    Candidate,
    CandidateKind,
    Channel,
    Decision,
    MaxWaitAction,
    OfferCancelReason,
    PolicyStep,
    PreferredReleaseReason,
    Presence,
    RemovalReason,
    SelectionStrategy,
    SkillRequirement,
    Trigger,
    WrapUpEndReason,
    from_ms,
    to_ms,
)
from contactcenter.routing.domain.views import (
    AgentView,
    ContactView,
    QueueSnapshot,
    agent_view,
    contact_view,
    queue_snapshot,
)

E = TypeVar("E", bound=RoutingEvent)

_S: Final = 1000
_PRESENCE_STATE: Final = {
    Presence.OFFLINE: AgentState.OFFLINE,
    Presence.AWAY: AgentState.AWAY,
    Presence.NOT_RESPONDING: AgentState.NOT_RESPONDING,
}
#: Second-level kinds of the ids the engine derives (the top bits of their counter field).
_EVENT_ID: Final = 0
_OFFER_ID: Final = 1
_NOT_RESPONDING_REASON: Final = "offer_timeout"


@dataclass(slots=True)
class Outcome:
    """What one `execute` did: the events to append (in order), the timers they scheduled, and
    the refusal of the command if it was refused (its timers' events are still valid)."""

    events: list[RoutingEvent] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    error: DomainError | None = None

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    @property
    def offers(self) -> list[OfferIssued]:
        """The offers to push to agent desktops."""
        return [e for e in self.events if isinstance(e, OfferIssued)]


class _Run:
    """One execute: the clock, the events so far, and what still needs matching."""

    __slots__ = (
        "causation_id",
        "correlation_id",
        "dirty_agents",
        "dirty_contacts",
        "events",
        "moment",
        "t",
        "touched",
    )

    def __init__(self) -> None:
        self.events: list[RoutingEvent] = []
        self.t = 0
        self.moment = from_ms(0)
        self.correlation_id: UUID | None = None
        self.causation_id: UUID | None = None
        self.dirty_contacts: dict[Contact, Trigger] = {}
        self.dirty_agents: dict[Agent, Trigger] = {}
        self.touched: dict[Agent, None] = {}

    def at(self, t: int) -> None:
        if t != self.t:
            self.t = t
            self.moment = from_ms(t)


class RoutingEngine(RoutingState):
    """Decides for one tenant. Not thread-safe: one engine per tenant, one caller at a time."""

    def __init__(self, tenant_id: str, *, explain_capacity: int = 10_000) -> None:
        super().__init__(tenant_id, explain_capacity=explain_capacity)
        digest = hashlib.sha256(tenant_id.encode()).digest()
        self._tenant_bits = int.from_bytes(digest[:8], "big") >> 4
        self._bind_handlers()

    def _bind_handlers(self) -> None:
        self._handlers: dict[type[Any], Callable[[_Run, Any], None]] = {
            ConfigureQueue: self._configure_queue,
            ConfigureAgent: self._configure_agent,
            ConfigurePolicy: self._configure_policy,
            SetAgentState: self._set_agent_state,
            AcceptOffer: self._accept,
            RejectOffer: self._reject,
            EndWrapUp: self._end_wrap_up,
            QueueContact: self._queue_contact,
            CancelContact: self._cancel_contact,
            EndContact: self._end_contact,
            CompleteContact: self._complete_contact,
            AssignContact: self._assign_contact,
            RecordAssignment: self._record_assignment,
            Tick: lambda run, command: None,
        }
        self._timer_handlers: dict[TimerKind, Callable[[_Run, str, Any, int], None]] = {
            TimerKind.OFFER_EXPIRY: self._offer_expired,
            TimerKind.WRAP_UP_END: self._wrap_up_due,
            TimerKind.POLICY_STEP: self._step_due,
            TimerKind.PREFERRED_TIMEOUT: self._preferred_due,
            TimerKind.MAX_WAIT: self._max_wait_due,
        }

    def __getstate__(self) -> dict[str, Any]:
        """For snapshots: the state, without the bound handler tables (rebuilt on load)."""
        state = dict(self.__dict__)
        del state["_handlers"], state["_timer_handlers"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._bind_handlers()

    @classmethod
    def from_events(
        cls, tenant_id: str, events: Iterable[RoutingEvent], *, explain_capacity: int = 10_000
    ) -> RoutingEngine:
        """Rebuild from the tenant's stream (in order)."""
        engine = cls(tenant_id, explain_capacity=explain_capacity)
        for event in events:
            engine.apply(event)
        return engine

    # --- entry points ----------------------------------------------------------------------------

    def execute(self, command: Command, context: CommandContext) -> Outcome:
        """Fire the timers due by `context.now`, then decide `command` (see the module doc)."""
        now = to_ms(context.now)
        run = _Run()
        outcome = Outcome(events=run.events)
        self.scheduled = outcome.timers
        try:
            self._fire_due(run, now)
            run.at(max(self.now, now))
            run.correlation_id = context.correlation_id
            run.causation_id = context.causation_id
            handler = self._handlers.get(type(command))
            if handler is None:
                raise TypeError(f"not a routing command: {command!r}")
            try:
                validate(command)
                handler(run, command)
            except DomainError as error:
                # No traceback: its frames would tie the outcome and the engine in a cycle.
                outcome.error = error.with_traceback(None)
            self._settle(run)
        finally:
            self.scheduled = None
        return outcome

    def advance(self, now: datetime) -> Outcome:
        """Fire the timers due by `now` (the same as executing `Tick`)."""
        return self.execute(Tick(), CommandContext(now=now))

    def next_timer_at(self) -> datetime | None:
        """When the engine next needs a `Tick` (None: no timer pending)."""
        heap = self.timers
        while heap and not self._timer_live(heap[0]):
            heapq.heappop(heap)
        return from_ms(heap[0][0]) if heap else None

    def pending_timers(self) -> list[Timer]:
        """Every live timer, soonest first (to arm a scheduler after a rebuild)."""
        live = sorted(entry for entry in self.timers if self._timer_live(entry))
        return [Timer(from_ms(at), kind, subject) for at, _, kind, subject, _ in live]

    def explain(self, offer_id: str) -> OfferIssued | None:
        """The offer event (its `decision` explains it) of a pending or recent offer; older ones
        are in the event store (OfferIssued by offer id)."""
        offer = self.offers.get(offer_id)
        if offer is not None:
            return offer.event
        explained = self.explained.get(offer_id)
        return None if explained is None else explained.event

    def offer_status(self, offer_id: str) -> str | None:
        """offered, accepted, rejected, timed_out or cancelled (None: unknown or forgotten)."""
        explained = self.explained.get(offer_id)
        if explained is not None:
            return explained.status
        return WorkStatus.OFFERED.value if offer_id in self.offers else None

    def agent(self, agent_id: str) -> AgentView | None:
        agent = self.agents.get(agent_id)
        return None if agent is None else agent_view(agent, self.now)

    def contact(self, interaction_id: str) -> ContactView | None:
        contact = self.contacts.get(interaction_id)
        return None if contact is None else contact_view(contact)

    def queue_snapshot(self, queue_id: str) -> QueueSnapshot | None:
        queue = self.queues.get(queue_id)
        return None if queue is None else queue_snapshot(self, queue)

    def pending_offers(self, agent_id: str) -> list[OfferIssued]:
        """The agent's open offers (what an AgentStream sends a desktop that (re)connects)."""
        agent = self.agents.get(agent_id)
        if agent is None:
            return []
        return [
            self.offers[item.offer_id].event
            for item in agent.items.values()
            if item.status is WorkStatus.OFFERED and item.offer_id in self.offers
        ]

    def fingerprint(self) -> str:
        """A digest of the whole state, index order included: equal for two engines that will
        decide alike (a rebuilt one and the original)."""
        return _fingerprint(self)

    # --- emitting --------------------------------------------------------------------------------

    def _uuid(self, kind: int, n: int) -> UUID:
        # UUIDv8 (RFC 9562 custom): 60 bits of the tenant's hash, then the kind and the count.
        bits = self._tenant_bits
        value = (
            ((bits >> 12) << 80)
            | (0x8 << 76)
            | ((bits & 0xFFF) << 64)
            | (0b10 << 62)
            | ((kind << 56) | n) & ((1 << 62) - 1)
        )
        return UUID(int=value)

    def _emit(
        self,
        run: _Run,
        event_type: type[E],
        *,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        **fields: Any,
    ) -> E:
        event_id = self._uuid(_EVENT_ID, self.version + 1)
        if correlation_id is None:
            if run.correlation_id is None:
                # The first event of a chain without a correlation id starts one.
                run.correlation_id = event_id
            correlation_id = run.correlation_id
        event = event_type(
            event_id=event_id,
            tenant_id=self.tenant_id,
            occurred_at=run.moment,
            correlation_id=correlation_id,
            causation_id=causation_id if causation_id is not None else run.causation_id,
            **fields,
        )
        self.fold(event, run.t)
        run.events.append(event)
        return event

    # --- timers ----------------------------------------------------------------------------------

    def _fire_due(self, run: _Run, now: int) -> None:
        heap = self.timers
        while heap and heap[0][0] <= now:
            at, _, kind, subject, token = heapq.heappop(heap)
            run.at(max(self.now, at))
            run.correlation_id = None
            run.causation_id = None
            self._timer_handlers[kind](run, subject, token, at)
            self._settle(run)

    def _timer_live(self, entry: tuple[int, int, TimerKind, str, Any]) -> bool:
        at, _, kind, subject, token = entry
        if kind is TimerKind.OFFER_EXPIRY:
            offer = self.offers.get(subject)
            return offer is not None and offer.expires == at
        if kind is TimerKind.WRAP_UP_END:
            agent = self.agents.get(token)
            item = None if agent is None else agent.items.get(subject)
            return item is not None and item.wrap_up_until == at
        contact = self.contacts.get(subject)
        if contact is None:
            return False
        if kind is TimerKind.POLICY_STEP:
            visit, step, layout = token
            return (
                bool(contact.visit == visit and contact.queue.layout == layout)
                and contact.step < step
            )
        if kind is TimerKind.PREFERRED_TIMEOUT:
            return bool(contact.visit == token) and contact.in_preferred
        max_wait = contact.queue.max_wait
        return contact.visit == token and max_wait is not None and contact.entered + max_wait == at

    def _offer_expired(self, run: _Run, offer_id: str, token: Any, at: int) -> None:
        offer = self.offers.get(offer_id)
        if offer is None or offer.expires != at:
            return
        contact, agent = offer.contact, offer.agent
        self._emit(
            run,
            OfferTimedOut,
            correlation_id=contact.correlation_id,
            causation_id=offer.event.event_id,
            interaction_id=contact.iid,
            offer_id=offer_id,
            agent_id=agent.id,
            queue_id=offer.queue_id,
            ring_ms=run.t - offer.issued,
        )
        if contact.queue.config.not_responding_on_timeout and agent.presence is Presence.AVAILABLE:
            self._cancel_offers(run, agent, OfferCancelReason.AGENT_NOT_RESPONDING)
            self._set_presence(run, agent, Presence.NOT_RESPONDING, _NOT_RESPONDING_REASON)
        self._returned(run, contact, agent, declined=True)
        run.touched[agent] = None
        run.dirty_agents[agent] = Trigger.AGENT_AVAILABLE  # its capacity is free again

    def _wrap_up_due(self, run: _Run, interaction_id: str, agent_id: Any, at: int) -> None:
        agent = self.agents.get(agent_id)
        item = None if agent is None else agent.items.get(interaction_id)
        if agent is None or item is None or item.wrap_up_until != at:
            return
        self._end_wrap_up_item(run, agent, item, WrapUpEndReason.TIMEOUT)

    def _step_due(self, run: _Run, interaction_id: str, token: Any, at: int) -> None:
        contact = self.contacts.get(interaction_id)
        visit, step, layout = token
        if contact is None or contact.visit != visit or contact.queue.layout != layout:
            return
        if contact.step >= step:
            return
        queue = contact.queue
        spec = queue.steps[step]
        self._emit(
            run,
            PolicyStepReached,
            correlation_id=contact.correlation_id,
            causation_id=contact.cause_id,
            interaction_id=interaction_id,
            queue_id=queue.id,
            policy_id=queue.policy_id,
            policy_version=queue.policy_version,
            step=step,
            step_name=spec.name,
            waited_ms=run.t - contact.entered,
        )
        if contact.status is ContactStatus.WAITING:
            run.dirty_contacts[contact] = Trigger.STEP_REACHED

    def _preferred_due(self, run: _Run, interaction_id: str, visit: Any, at: int) -> None:
        contact = self.contacts.get(interaction_id)
        if contact is None or contact.visit != visit or not contact.in_preferred:
            return
        self._release_preferred(run, contact, PreferredReleaseReason.TIMEOUT)

    def _max_wait_due(self, run: _Run, interaction_id: str, visit: Any, at: int) -> None:
        contact = self.contacts.get(interaction_id)
        if contact is None or contact.visit != visit:
            return
        max_wait = contact.queue.max_wait
        if max_wait is None or contact.entered + max_wait != at:
            return
        if contact.status is ContactStatus.OFFERED:
            return  # the offer runs its course; `_returned` applies the maximum wait
        self._max_wait(run, contact)

    # --- contact moves ---------------------------------------------------------------------------

    def _release_preferred(
        self, run: _Run, contact: Contact, reason: PreferredReleaseReason
    ) -> None:
        self._emit(
            run,
            PreferredAgentReleased,
            correlation_id=contact.correlation_id,
            causation_id=contact.cause_id,
            interaction_id=contact.iid,
            queue_id=contact.queue.id,
            agent_id=contact.preferred_id or "",
            reason=reason,
        )
        if contact.status is ContactStatus.WAITING:
            run.dirty_contacts[contact] = Trigger.PREFERRED_RELEASED

    def _max_wait(self, run: _Run, contact: Contact) -> None:
        queue = contact.queue
        config = queue.config
        target = None
        if config.max_wait_action is MaxWaitAction.OVERFLOW and contact.hops < MAX_OVERFLOW_HOPS:
            target = self.queues.get(config.overflow_queue_id or "")
            if target is queue:
                target = None
        waited = run.t - contact.entered
        self._emit(
            run,
            MaxWaitReached,
            correlation_id=contact.correlation_id,
            causation_id=contact.cause_id,
            interaction_id=contact.iid,
            queue_id=queue.id,
            waited_ms=waited,
            action=MaxWaitAction.OVERFLOW if target is not None else MaxWaitAction.EXIT,
            overflow_queue_id=None if target is None else target.id,
        )
        if target is None:
            self._emit(
                run,
                ContactRemoved,
                correlation_id=contact.correlation_id,
                causation_id=contact.cause_id,
                interaction_id=contact.iid,
                queue_id=queue.id,
                reason=RemovalReason.MAX_WAIT_EXIT,
                waited_ms=waited,
            )
            return
        self._emit(
            run,
            ContactOverflowed,
            correlation_id=contact.correlation_id,
            causation_id=contact.cause_id,
            interaction_id=contact.iid,
            from_queue_id=queue.id,
            to_queue_id=target.id,
            priority=contact.priority,
            required_skills=requirement_models(tuple(sorted(contact.own_skills.items()))),
            hop=contact.hops + 1,
        )
        run.dirty_contacts[contact] = Trigger.CONTACT_OVERFLOWED

    def _returned(self, run: _Run, contact: Contact, agent: Agent, *, declined: bool) -> None:
        """The contact is waiting again after an offer that did not work out."""
        if contact.in_preferred and declined and contact.preferred_id == agent.id:
            self._release_preferred(run, contact, PreferredReleaseReason.DECLINED)
        max_wait = contact.queue.max_wait
        if max_wait is not None and run.t >= contact.entered + max_wait:
            self._max_wait(run, contact)
            return
        run.dirty_contacts[contact] = Trigger.CONTACT_RETURNED

    def _end_offer(
        self,
        run: _Run,
        offer: Offer,
        event_type: type[OfferRejected] | type[OfferCancelled],
        **fields: Any,
    ) -> None:
        contact = offer.contact
        self._emit(
            run,
            event_type,
            correlation_id=contact.correlation_id,
            interaction_id=contact.iid,
            offer_id=offer.offer_id,
            agent_id=offer.agent.id,
            queue_id=offer.queue_id,
            ring_ms=run.t - offer.issued,
            **fields,
        )
        run.touched[offer.agent] = None
        run.dirty_agents[offer.agent] = Trigger.AGENT_AVAILABLE

    def _cancel_offers(self, run: _Run, agent: Agent, reason: OfferCancelReason) -> None:
        """Withdraw the agent's open offers; their contacts wait again at the front."""
        for item in list(agent.items.values()):
            offer = self.offers.get(item.offer_id or "")
            if item.status is WorkStatus.OFFERED and offer is not None:
                self._end_offer(run, offer, OfferCancelled, reason=reason)
                self._returned(run, offer.contact, agent, declined=False)

    def _set_presence(
        self, run: _Run, agent: Agent, presence: Presence, reason_code: str | None
    ) -> None:
        self._emit(
            run,
            AgentStateChanged,
            agent_id=agent.id,
            state=_derive(agent, presence),
            previous_state=agent.state,
            presence=presence,
            reason_code=reason_code,
            load=agent.load,
            capacity=agent.capacity,
        )
        run.dirty_agents[agent] = Trigger.AGENT_AVAILABLE

    def _end_work(self, run: _Run, agent: Agent, item: Item, *, wrap_up: bool) -> None:
        """The agent's conversation on `item` ended: wrap-up per its queue, or free at once."""
        queue = self.queues.get(item.queue_id)
        wrap_ms = queue.config.wrap_up_s * _S if queue is not None and wrap_up else 0
        self._emit(
            run,
            ContactEnded,
            correlation_id=item.correlation_id,
            interaction_id=item.interaction_id,
            agent_id=agent.id,
            queue_id=item.queue_id,
            wrap_up_until=from_ms(run.t + wrap_ms) if wrap_ms else None,
        )
        run.touched[agent] = None
        run.dirty_agents[agent] = Trigger.AGENT_AVAILABLE

    def _end_wrap_up_item(
        self, run: _Run, agent: Agent, item: Item, reason: WrapUpEndReason
    ) -> None:
        self._emit(
            run,
            WrapUpEnded,
            correlation_id=item.correlation_id,
            causation_id=item.cause_id if reason is WrapUpEndReason.TIMEOUT else None,
            interaction_id=item.interaction_id,
            agent_id=agent.id,
            queue_id=item.queue_id,
            reason=reason,
        )
        run.touched[agent] = None
        run.dirty_agents[agent] = Trigger.AGENT_AVAILABLE

    def _remove_contact(
        self, run: _Run, contact: Contact, reason: RemovalReason, reason_code: str | None
    ) -> None:
        if contact.offer is not None:
            cancel = (
                OfferCancelReason.CONTACT_CANCELLED
                if reason is RemovalReason.CANCELLED
                else OfferCancelReason.CONTACT_ENDED
            )
            self._end_offer(run, contact.offer, OfferCancelled, reason=cancel)
        self._emit(
            run,
            ContactRemoved,
            correlation_id=contact.correlation_id,
            interaction_id=contact.iid,
            queue_id=contact.queue.id,
            reason=reason,
            reason_code=reason_code,
            waited_ms=run.t - contact.entered,
        )

    def _holders(self, interaction_id: str, status: WorkStatus) -> list[tuple[Agent, Item]]:
        return [
            (agent, agent.items[interaction_id])
            for agent in self.holders.get(interaction_id, ())
            if agent.items[interaction_id].status is status
        ]

    # --- configuration commands ------------------------------------------------------------------

    def _configure_queue(self, run: _Run, c: ConfigureQueue) -> None:
        if c.policy_id and c.policy_id not in self.policies:
            raise NotFound(
                f"routing policy {c.policy_id!r} not found",
                resource_type="routing_policy",
                resource_name=c.policy_id,
            )
        fields: dict[str, Any] = {
            "queue_id": c.queue_id,
            "name": c.name,
            "channels": tuple(c.channels),
            "required_skills": _skills(c.required_skills),
            "language": c.language or None,
            "sl_target_percent": c.sl_target_percent,
            "sl_threshold_s": c.sl_threshold_s,
            "priority": c.priority,
            "aging_s": c.aging_s,
            "max_wait_s": c.max_wait_s,
            "max_wait_action": c.max_wait_action,
            "overflow_queue_id": c.overflow_queue_id or None,
            "offer_timeout_s": c.offer_timeout_s,
            "wrap_up_s": c.wrap_up_s,
            "strategy": c.strategy,
            "policy_id": c.policy_id or None,
            "preferred_agent_timeout_s": c.preferred_agent_timeout_s,
            "not_responding_on_timeout": c.not_responding_on_timeout,
        }
        previous = self.queues.get(c.queue_id)
        if previous is not None and _same(previous.config, fields):
            return
        version = 1 if previous is None else previous.config.config_version + 1
        self._emit(run, QueueConfigured, config_version=version, **fields)
        self._dirty_pools(run, self.queues[c.queue_id].buckets)

    def _configure_agent(self, run: _Run, c: ConfigureAgent) -> None:
        costs = {ch: c.channel_costs.get(ch, DEFAULT_CHANNEL_COSTS[ch]) for ch in Channel}
        fields: dict[str, Any] = {
            "agent_id": c.agent_id,
            "name": c.name,
            "skills": {skill: level for skill, level in sorted(c.skills.items())},
            "languages": tuple(c.languages),
            "queues": tuple(c.queues),
            "groups": tuple(c.groups),
            "channels": tuple(sorted(set(c.channels))),
            "capacity": c.capacity,
            "channel_costs": {ch: costs[ch] for ch in sorted(set(c.channels))},
            "interruptible_channels": tuple(sorted(set(c.interruptible_channels))),
            "time_zone": c.time_zone,
        }
        previous = self.agents.get(c.agent_id)
        if previous is not None and previous.config is not None:
            if _same(previous.config, fields):
                return
            # Open offers were reserved under the old profile: withdraw them.
            self._cancel_offers(run, previous, OfferCancelReason.AGENT_RECONFIGURED)
        version = (
            1 if previous is None or previous.config is None else previous.config.config_version + 1
        )
        self._emit(run, AgentConfigured, config_version=version, **fields)
        agent = self.agents[c.agent_id]
        run.touched[agent] = None
        run.dirty_agents[agent] = Trigger.CONFIGURATION_CHANGED

    def _configure_policy(self, run: _Run, c: ConfigurePolicy) -> None:
        steps = tuple(
            PolicyStep(
                after_s=s.after_s,
                name=s.name,
                min_proficiency_delta=s.min_proficiency_delta,
                include_queue_agents=s.include_queue_agents,
                agent_queues=tuple(s.agent_queues),
                agent_groups=tuple(s.agent_groups),
            )
            for s in c.steps
        )
        previous = self.policies.get(c.policy_id)
        if previous is not None and previous.name == c.name and previous.steps == steps:
            return
        version = 1 if previous is None else previous.version + 1
        self._emit(
            run, PolicyConfigured, policy_id=c.policy_id, version=version, name=c.name, steps=steps
        )
        for queue in self.queues.values():
            if queue.policy_id == c.policy_id:
                self._dirty_pools(run, queue.buckets)

    def _dirty_pools(self, run: _Run, buckets: Iterable[Bucket]) -> None:
        """Every ready agent of these pools looks again (after a configuration change)."""
        for bucket in buckets:
            for source, ids in ((self.ready_q, bucket.queue_ids), (self.ready_g, bucket.group_ids)):
                for key in sorted(ids):
                    for channel in CHANNEL_VALUES:
                        for agent in source.get((key, channel), ()):
                            run.dirty_agents[agent] = Trigger.CONFIGURATION_CHANGED

    # --- agent commands --------------------------------------------------------------------------

    def _agent_or_404(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise NotFound(
                f"agent {agent_id!r} not found", resource_type="agent", resource_name=agent_id
            )
        return agent

    def _set_agent_state(self, run: _Run, c: SetAgentState) -> None:
        agent = self._agent_or_404(c.agent_id)
        reason = c.reason_code or None
        if agent.presence is c.presence and agent.reason_code == reason:
            return
        if c.presence is not Presence.AVAILABLE:
            self._cancel_offers(run, agent, OfferCancelReason.AGENT_UNAVAILABLE)
        if c.presence is Presence.OFFLINE and agent.preferred:
            for entry in list(agent.preferred):
                self._release_preferred(run, entry[4], PreferredReleaseReason.AGENT_UNAVAILABLE)
        self._set_presence(run, agent, c.presence, reason)

    def _open_offer(self, offer_id: str, agent_id: str) -> Offer | None:
        """The agent's open offer; None if the agent already accepted it (a retry)."""
        offer = self.offers.get(offer_id)
        if offer is not None and offer.agent.id == agent_id:
            return offer
        explained = self.explained.get(offer_id)
        if explained is not None and explained.event.agent_id == agent_id:
            if explained.status == "accepted":
                return None
            raise FailedPrecondition(
                f"offer {offer_id!r} is {explained.status}", current_state=explained.status
            )
        # Another agent's offer looks like a missing one.
        raise NotFound("offer not found", resource_type="offer", resource_name=offer_id)

    def _accept(self, run: _Run, c: AcceptOffer) -> None:
        offer = self._open_offer(c.offer_id, c.agent_id)
        if offer is not None:
            self._accept_offer(run, offer)

    def _accept_offer(self, run: _Run, offer: Offer) -> None:
        contact, agent = offer.contact, offer.agent
        self._emit(
            run,
            OfferAccepted,
            correlation_id=contact.correlation_id,
            interaction_id=contact.iid,
            offer_id=offer.offer_id,
            agent_id=agent.id,
            queue_id=offer.queue_id,
            ring_ms=run.t - offer.issued,
        )
        self._assigned(run, contact, agent, offer.channel, offer.cost, offer.offer_id)

    def _assigned(
        self,
        run: _Run,
        contact: Contact,
        agent: Agent,
        channel: str,
        cost: int,
        offer_id: str | None,
    ) -> None:
        waited = run.t - contact.entered
        self._emit(
            run,
            ContactAssigned,
            correlation_id=contact.correlation_id,
            interaction_id=contact.iid,
            agent_id=agent.id,
            queue_id=contact.queue.id,
            channel=channel,
            offer_id=offer_id,
            cost=cost,
            wait_ms=waited,
            within_service_level=waited <= contact.queue.threshold,
        )
        run.touched[agent] = None

    def _reject(self, run: _Run, c: RejectOffer) -> None:
        offer = self._open_offer(c.offer_id, c.agent_id)
        if offer is None:
            raise FailedPrecondition(f"offer {c.offer_id!r} is accepted", current_state="accepted")
        self._end_offer(run, offer, OfferRejected, reason_code=c.reason_code or None)
        self._returned(run, offer.contact, offer.agent, declined=True)

    def _end_wrap_up(self, run: _Run, c: EndWrapUp) -> None:
        agent = self._agent_or_404(c.agent_id)
        items = [
            item
            for item in agent.items.values()
            if item.status is WorkStatus.WRAP_UP
            and (not c.interaction_id or item.interaction_id == c.interaction_id)
        ]
        if not items:
            raise FailedPrecondition(
                f"agent {agent.id!r} has no after-contact work"
                + (f" on {c.interaction_id!r}" if c.interaction_id else ""),
                current_state=agent.state.value,
            )
        for item in items:
            self._end_wrap_up_item(run, agent, item, WrapUpEndReason.AGENT)

    # --- contact commands ------------------------------------------------------------------------

    def _queue_contact(self, run: _Run, c: QueueContact) -> None:
        queue = self.queues.get(c.queue_id)
        if queue is None:
            raise NotFound(
                f"queue {c.queue_id!r} not found", resource_type="queue", resource_name=c.queue_id
            )
        contact = self.contacts.get(c.interaction_id)
        if contact is not None and contact.queue is queue:
            return  # already there (a redelivery, or routing's own overflow coming back)
        t = run.t
        if contact is not None and contact.offer is not None:
            self._end_offer(
                run, contact.offer, OfferCancelled, reason=OfferCancelReason.CONTACT_REQUEUED
            )
        for agent, item in self._holders(c.interaction_id, WorkStatus.ASSIGNED):
            self._end_work(run, agent, item, wrap_up=True)  # a blind transfer ends the leg
        if c.first_enqueued_at is not None:
            first = min(to_ms(c.first_enqueued_at), t)
        else:
            first = contact.first if contact is not None else t
        preferred_until = None
        preferred = self.agents.get(c.preferred_agent_id or "")
        if (
            preferred is not None
            and queue.preferred_timeout > 0
            and preferred.presence is not Presence.OFFLINE
        ):
            preferred_until = from_ms(t + queue.preferred_timeout)
        queued = self._emit(
            run,
            ContactQueued,
            interaction_id=c.interaction_id,
            queue_id=queue.id,
            channel=c.channel,
            priority=c.priority,
            required_skills=_skills(c.required_skills),
            language=c.language or None,
            reason=c.reason,
            first_enqueued_at=from_ms(first),
            preferred_agent_id=c.preferred_agent_id or None,
            preferred_until=preferred_until,
        )
        run.dirty_contacts[self.contacts[queued.interaction_id]] = Trigger.CONTACT_QUEUED

    def _cancel_contact(self, run: _Run, c: CancelContact) -> None:
        contact = self.contacts.get(c.interaction_id)
        reason_code = c.reason_code or None
        if contact is not None:
            self._remove_contact(run, contact, RemovalReason.CANCELLED, reason_code)
        for agent, item in self._holders(c.interaction_id, WorkStatus.ASSIGNED):
            # Abandoned after acceptance, before talking: no wrap-up.
            self._emit(
                run,
                ContactRemoved,
                correlation_id=item.correlation_id,
                interaction_id=c.interaction_id,
                queue_id=item.queue_id,
                reason=RemovalReason.CANCELLED,
                reason_code=reason_code,
                agent_id=agent.id,
                waited_ms=0,
            )
            run.touched[agent] = None
            run.dirty_agents[agent] = Trigger.AGENT_AVAILABLE

    def _end_contact(self, run: _Run, c: EndContact) -> None:
        contact = self.contacts.get(c.interaction_id)
        if contact is not None:
            self._remove_contact(run, contact, RemovalReason.ENDED, None)
        for agent, item in self._holders(c.interaction_id, WorkStatus.ASSIGNED):
            self._end_work(run, agent, item, wrap_up=True)

    def _complete_contact(self, run: _Run, c: CompleteContact) -> None:
        contact = self.contacts.get(c.interaction_id)
        if contact is not None:
            self._remove_contact(run, contact, RemovalReason.ENDED, None)
        for agent, item in self._holders(c.interaction_id, WorkStatus.ASSIGNED):
            self._end_work(run, agent, item, wrap_up=False)
        for agent, item in self._holders(c.interaction_id, WorkStatus.WRAP_UP):
            self._end_wrap_up_item(run, agent, item, WrapUpEndReason.COMPLETED)

    def _assign_contact(self, run: _Run, c: AssignContact) -> None:
        agent = self._agent_or_404(c.agent_id)
        own = agent.items.get(c.interaction_id)
        if own is not None and own.status is WorkStatus.ASSIGNED:
            return
        contact = self.contacts.get(c.interaction_id)
        others = [
            (a, item)
            for a, item in self._holders(c.interaction_id, WorkStatus.ASSIGNED)
            if a is not agent
        ]
        if contact is None and not others and own is None:
            raise NotFound(
                f"interaction {c.interaction_id!r} is not in routing",
                resource_type="interaction",
                resource_name=c.interaction_id,
            )
        if agent.presence is Presence.OFFLINE:
            raise FailedPrecondition(
                f"agent {agent.id!r} is offline", current_state=agent.state.value
            )
        if contact is not None and contact.offer is not None and contact.offer.agent is agent:
            self._accept_offer(run, contact.offer)
            return
        source = own if own is not None else (others[0][1] if others else None)
        if contact is not None:
            channel = contact.channel
        else:
            assert source is not None
            channel = source.channel
        if not _fits_without(agent, channel, c.interaction_id):
            raise FailedPrecondition(
                f"agent {agent.id!r} has no capacity for a {channel} contact",
                current_state=agent.state.value,
            )
        if contact is not None and contact.offer is not None:
            self._end_offer(
                run, contact.offer, OfferCancelled, reason=OfferCancelReason.CONTACT_ASSIGNED
            )
        if own is not None:
            self._end_wrap_up_item(run, agent, own, WrapUpEndReason.AGENT)
        for other, item in others:
            self._end_work(run, other, item, wrap_up=True)  # a consulted transfer ends the leg
        if contact is not None:
            self._assigned(run, contact, agent, channel, agent.costs[channel], None)
            return
        assert source is not None
        self._emit(
            run,
            ContactAssigned,
            correlation_id=source.correlation_id,
            interaction_id=c.interaction_id,
            agent_id=agent.id,
            queue_id=source.queue_id,
            channel=channel,
            offer_id=None,
            cost=agent.costs[channel],
            wait_ms=0,
            within_service_level=True,
        )
        run.touched[agent] = None

    def _record_assignment(self, run: _Run, c: RecordAssignment) -> None:
        """Follow an assignment interactions recorded (see RecordAssignment)."""
        iid = c.interaction_id
        agent = self.agents.get(c.agent_id)
        contact = self.contacts.get(iid)
        holders = self._holders(iid, WorkStatus.ASSIGNED)
        if agent is not None and any(a is agent for a, _ in holders):
            return  # routing's own assignment (its offer accepted) coming back, or a repeat
        if contact is None and not holders:
            raise NotFound(
                f"interaction {iid!r} is not in routing (never queued here, or already gone): "
                f"its assignment to agent {c.agent_id!r} changes nothing",
                resource_type="interaction",
                resource_name=iid,
            )
        if contact is not None and contact.offer is not None:
            if contact.offer.agent is agent:
                # The agent took routing's own offer through interactions.
                self._accept_offer(run, contact.offer)
                return
            self._end_offer(
                run, contact.offer, OfferCancelled, reason=OfferCancelReason.CONTACT_ASSIGNED
            )
        for other, item in holders:
            # Interactions gave it to someone else: routing's assignment never became work.
            self._emit(
                run,
                ContactRemoved,
                correlation_id=item.correlation_id,
                interaction_id=iid,
                queue_id=item.queue_id,
                reason=RemovalReason.ASSIGNED_OUTSIDE,
                reason_code="assigned_elsewhere",
                agent_id=other.id,
                waited_ms=0,
            )
            run.touched[other] = None
            run.dirty_agents[other] = Trigger.AGENT_AVAILABLE
        if agent is None:
            if contact is not None:
                self._emit(
                    run,
                    ContactRemoved,
                    correlation_id=contact.correlation_id,
                    interaction_id=iid,
                    queue_id=contact.queue.id,
                    reason=RemovalReason.ASSIGNED_OUTSIDE,
                    reason_code="unknown_agent",
                    waited_ms=run.t - contact.entered,
                )
            return
        own = agent.items.get(iid)
        if own is not None:
            # Back to the agent who was wrapping it up (requeued, then picked again).
            self._end_wrap_up_item(run, agent, own, WrapUpEndReason.AGENT)
        channel = contact.channel if contact is not None else holders[0][1].channel
        cost = agent.costs.get(channel) or DEFAULT_CHANNEL_COSTS[Channel(channel)]
        if contact is not None:
            self._assigned(run, contact, agent, channel, cost, None)
            return
        item = holders[0][1]
        self._emit(
            run,
            ContactAssigned,
            correlation_id=item.correlation_id,
            interaction_id=iid,
            agent_id=agent.id,
            queue_id=item.queue_id,
            channel=channel,
            offer_id=None,
            cost=cost,
            wait_ms=0,
            within_service_level=True,
        )
        run.touched[agent] = None

    # --- matching --------------------------------------------------------------------------------

    def _settle(self, run: _Run) -> None:
        """Report agents' new states, then match until no ready agent fits a waiting contact."""
        while True:
            while run.touched:
                agent = next(iter(run.touched))
                del run.touched[agent]
                self._sync(run, agent)
            if not run.dirty_contacts and not run.dirty_agents:
                return
            contacts = [
                (c, trigger)
                for c, trigger in run.dirty_contacts.items()
                if c.container is not None and self.contacts.get(c.iid) is c
            ]
            run.dirty_contacts.clear()
            contacts.sort(key=_entry_order)
            for contact, trigger in contacts:
                if contact.container is not None:
                    self._match_contact(run, contact, trigger)
            agents = list(run.dirty_agents.items())
            run.dirty_agents.clear()
            for agent, trigger in agents:
                self._match_agent(run, agent, trigger)

    def _sync(self, run: _Run, agent: Agent) -> None:
        state = _derive(agent, agent.presence)
        if state is not agent.state:
            self._emit(
                run,
                AgentStateChanged,
                agent_id=agent.id,
                state=state,
                previous_state=agent.state,
                presence=agent.presence,
                reason_code=agent.reason_code,
                load=agent.load,
                capacity=agent.capacity,
            )

    def _match_contact(self, run: _Run, contact: Contact, trigger: Trigger) -> None:
        queue = contact.queue
        channel = contact.channel
        declined = contact.declined
        if contact.in_preferred:
            agent = self.agents.get(contact.preferred_id or "")
            if (
                agent is not None
                and channel in agent.ready
                and not (declined and agent.id in declined)
            ):
                key = _agent_key(queue.strategy, agent, contact, queue, run.t)
                candidates = [
                    _agent_candidate(queue.strategy, 1, key, agent, contact, queue, run.t)
                ]
                reason = "the customer's preferred agent"
                self._offer(run, contact, agent, trigger, reason, candidates, 1)
            return
        bucket = contact.bucket
        assert bucket is not None
        sources = []
        total = 0
        for qid in bucket.queue_ids:
            index = self.ready_q.get((qid, channel))
            if index:
                sources.append(index)
                total += len(index)
        for gid in bucket.group_ids:
            index = self.ready_g.get((gid, channel))
            if index:
                sources.append(index)
                total += len(index)
        if not total:
            return
        check_pool = False
        reqs = contact.reqs
        if reqs:
            # The ready agents with the rarest required skill are fewer than the pool's.
            smallest: dict[Agent, None] | None = None
            for skill, _ in reqs:
                index = self.ready_s.get((skill, channel))
                if not index:
                    return
                if smallest is None or len(index) < len(smallest):
                    smallest = index
            if smallest is not None and len(smallest) < total:
                sources = [smallest]
                check_pool = True
        strategy = queue.strategy
        # One index is in idle order: for longest idle the first few eligible are the best.
        early = strategy is SelectionStrategy.LONGEST_IDLE and len(sources) == 1
        seen: set[Agent] | None = set() if len(sources) > 1 else None
        lang = contact.lang
        now = run.t
        top: list[tuple[Any, int, Agent]] = []
        eligible = 0
        for index in sources:
            for agent in index:
                if seen is not None:
                    if agent in seen:
                        continue
                    seen.add(agent)
                if check_pool and not bucket.in_pool(agent):
                    continue
                if lang is not None and lang not in agent.langs:
                    continue
                skills = agent.skills
                for skill, level in reqs:
                    if skills.get(skill, 0) < level:
                        break
                else:
                    if declined and agent.id in declined:
                        continue
                    eligible += 1
                    key = _agent_key(strategy, agent, contact, queue, now)
                    if len(top) < EXPLAIN_TOP or key < top[-1][0]:
                        insort(top, (key, agent.ordinal, agent))
                        if len(top) > EXPLAIN_TOP:
                            top.pop()
                    if early and len(top) == EXPLAIN_TOP:
                        break
            if early and len(top) == EXPLAIN_TOP:
                break
        if not top:
            return
        candidates = [
            _agent_candidate(strategy, rank, key, agent, contact, queue, now)
            for rank, (key, _, agent) in enumerate(top, 1)
        ]
        step = queue.steps[contact.step]
        reason = (
            f"{strategy.value.replace('_', ' ')} among {eligible} eligible agent"
            f"{'s' if eligible != 1 else ''} at step {contact.step}"
            + (f" ({step.name})" if step.name else "")
        )
        self._offer(run, contact, top[0][2], trigger, reason, candidates, eligible)

    def _entitled(self, agent: Agent) -> tuple[Bucket, ...]:
        """The buckets whose pool includes the agent (cached per configuration epoch)."""
        if agent.entitled_epoch != self.epoch:
            found: dict[Bucket, None] = {}
            config = agent.config
            if config is not None:
                for qid in config.queues:
                    for bucket in self.buckets_by_queue.get(qid, ()):
                        found[bucket] = None
                for gid in config.groups:
                    for bucket in self.buckets_by_group.get(gid, ()):
                        found[bucket] = None
            agent.entitled = tuple(found)
            agent.entitled_epoch = self.epoch
        return agent.entitled

    def _match_agent(self, run: _Run, agent: Agent, trigger: Trigger) -> None:
        while agent.ready and agent.presence is Presence.AVAILABLE:
            found = self._best_contact(agent)
            if found is None:
                return
            contact, ranked = found
            now = run.t
            candidates = [
                Candidate(
                    kind=CandidateKind.CONTACT,
                    id=entry[4].iid,
                    queue_id=entry[4].queue.id,
                    rank=rank,
                    # Seconds past the virtual deadline: higher is more at risk.
                    score=round((now - entry[1]) / _S, 3),
                    detail=(
                        f"waited {(now - entry[4].entered) / _S:.1f} s of "
                        f"{entry[4].queue.threshold / _S:g} s"
                        + (", returned to the front" if entry[0] == 0 else "")
                    ),
                )
                for rank, entry in enumerate(ranked[:EXPLAIN_TOP], 1)
            ]
            reason = (
                f"most at risk of missing its service level among {len(ranked)} "
                f"queue{'s' if len(ranked) != 1 else ''} with a matching contact"
            )
            self._offer(run, contact, agent, trigger, reason, candidates, len(ranked))

    def _best_contact(self, agent: Agent) -> tuple[Contact, list[Any]] | None:
        """The contact the agent should take: per queue the first matching in queue order
        (front, deadline, age), then across queues the smallest deadline (age breaking ties)."""
        ready = agent.ready
        langs = agent.langs
        skills = agent.skills
        aid = agent.id
        best: dict[Queue, Any] = {}
        for bucket in self._entitled(agent):
            if not bucket.size:
                continue
            queue = bucket.queue
            for group in bucket.groups.values():
                if group.channel not in ready:
                    continue
                if group.lang is not None and group.lang not in langs:
                    continue
                for skill, level in group.reqs:
                    if skills.get(skill, 0) < level:
                        break
                else:
                    for entry in group.entries:
                        declined = entry[4].declined
                        if declined and aid in declined:
                            continue
                        current = best.get(queue)
                        if current is None or entry[:4] < current[:4]:
                            best[queue] = entry
                        break
        if agent.preferred:
            for entry in agent.preferred:
                contact = entry[4]
                declined = contact.declined
                if contact.channel not in ready or (declined and aid in declined):
                    continue
                current = best.get(contact.queue)
                if current is None or entry[:4] < current[:4]:
                    best[contact.queue] = entry
                break
        if not best:
            return None
        ranked = sorted(best.values(), key=_entry_urgency)
        return ranked[0][4], ranked

    def _offer(
        self,
        run: _Run,
        contact: Contact,
        agent: Agent,
        trigger: Trigger,
        reason: str,
        candidates: list[Candidate],
        eligible: int,
    ) -> None:
        queue = contact.queue
        step = queue.steps[contact.step]
        decision = Decision(
            trigger=trigger,
            reason=reason,
            strategy=queue.strategy,
            policy_id=queue.policy_id,
            policy_version=queue.policy_version,
            step=contact.step,
            step_name=step.name,
            preferred=contact.in_preferred,
            candidates=tuple(candidates),
            eligible=eligible,
        )
        t = run.t
        self._emit(
            run,
            OfferIssued,
            correlation_id=contact.correlation_id,
            interaction_id=contact.iid,
            offer_id=str(self._uuid(_OFFER_ID, self.offers_issued + 1)),
            agent_id=agent.id,
            queue_id=queue.id,
            channel=contact.channel,
            expires_at=from_ms(t + queue.config.offer_timeout_s * _S),
            cost=agent.costs[contact.channel],
            wait_ms=t - contact.entered,
            decision=decision,
        )
        self._sync(run, agent)


# --- helpers -------------------------------------------------------------------------------------


def _derive(agent: Agent, presence: Presence) -> AgentState:
    if presence is not Presence.AVAILABLE:
        return _PRESENCE_STATE[presence]
    if not agent.items:
        return AgentState.AVAILABLE
    for item in agent.items.values():
        if item.status is not WorkStatus.WRAP_UP:
            return AgentState.BUSY
    return AgentState.WRAP_UP


def _fits_without(agent: Agent, channel: str, interaction_id: str) -> bool:
    """`agent.fits(channel)` if the agent's item on `interaction_id` (if any) were released."""
    item = agent.items.pop(interaction_id, None)
    if item is None:
        return agent.fits(channel)
    try:
        recount(agent)
        return agent.fits(channel)
    finally:
        agent.items[interaction_id] = item
        recount(agent)


def _entry_order(pair: tuple[Contact, Trigger]) -> Any:
    entry = pair[0].entry
    assert entry is not None
    return entry[:4]


def _entry_urgency(entry: Any) -> tuple[int, int, int]:
    return entry[1], entry[2], entry[3]


def _agent_key(
    strategy: SelectionStrategy, agent: Agent, contact: Contact, queue: Queue, now: int
) -> tuple[Any, ...]:
    """Lower is better. Ties go to the longest idle: `idle_seq` orders agents as the ready
    indexes do (by idle time, then by who became idle first) and is unique, so there are none
    left; round robin turns in the order agents were first configured."""
    if strategy is SelectionStrategy.LONGEST_IDLE:
        return (agent.idle_seq,)
    if strategy is SelectionStrategy.MOST_SKILLED:
        skills = agent.skills
        total = sum(skills.get(skill, 0) for skill, _ in contact.reqs)
        return (-total, agent.idle_seq)
    if strategy is SelectionStrategy.LEAST_OCCUPIED:
        return (agent.load / agent.capacity, agent.idle_seq)
    if strategy is SelectionStrategy.ROUND_ROBIN:
        return (queue.rr_last.get(agent.id, 0), agent.ordinal)
    return (agent.contacts_today(now), agent.idle_seq)


def _agent_candidate(
    strategy: SelectionStrategy,
    rank: int,
    key: tuple[Any, ...],
    agent: Agent,
    contact: Contact,
    queue: Queue,
    now: int,
) -> Candidate:
    idle = (now - agent.idle_since) / _S
    if strategy is SelectionStrategy.LONGEST_IDLE:
        score, detail = idle, f"idle {idle:.1f} s"
    elif strategy is SelectionStrategy.MOST_SKILLED:
        score = float(-key[0])
        detail = ", ".join(f"{s}={agent.skills.get(s, 0)}" for s, _ in contact.reqs) or "no skills"
    elif strategy is SelectionStrategy.LEAST_OCCUPIED:
        score = round(1 - key[0], 4)
        detail = f"load {agent.load}/{agent.capacity}"
    elif strategy is SelectionStrategy.ROUND_ROBIN:
        score = float(queue.rr_clock - key[0])
        detail = f"last offered at turn {key[0]} of {queue.rr_clock}"
    else:
        score = float(-key[0])
        detail = f"{key[0]} contacts today"
    return Candidate(
        kind=CandidateKind.AGENT,
        id=agent.id,
        queue_id=queue.id,
        rank=rank,
        score=round(score, 3),
        detail=detail,
    )


def _skills(levels: Mapping[str, int]) -> tuple[SkillRequirement, ...]:
    return tuple(
        SkillRequirement(skill=skill, min_proficiency=max(MIN_PROFICIENCY, level))
        for skill, level in sorted(levels.items())
    )


def _same(config: RoutingEvent, fields: Mapping[str, Any]) -> bool:
    """Would a configuration event with `fields` repeat `config`? (Upserts are idempotent.)"""
    return all(getattr(config, name) == value for name, value in fields.items())


def _fingerprint(engine: RoutingEngine) -> str:
    def item(i: Item) -> tuple[Any, ...]:
        return (
            i.interaction_id,
            i.queue_id,
            i.channel,
            i.cost,
            i.status.value,
            i.since,
            i.offer_id,
            i.wrap_up_until,
            str(i.correlation_id),
            str(i.cause_id),
        )

    def entries(container: Any) -> list[str]:
        return [] if container is None else [e[4].iid for e in container]

    parts: list[Any] = [
        engine.version,
        engine.now,
        engine.offers_issued,
        engine.contact_seq,
        engine.visit_seq,
        engine.epoch,
        engine.idle_seq,
    ]
    for aid in sorted(engine.agents):
        a = engine.agents[aid]
        parts.append(
            (
                aid,
                a.ordinal,
                a.presence.value,
                a.state.value,
                a.reason_code,
                a.load,
                a.exclusive,
                a.idle_since,
                a.idle_seq,
                sorted(a.ready),
                sorted(item(i) for i in a.items.values()),
                a.today_count,
                a.today_end,
                entries(a.preferred),
                a.config.model_dump_json() if a.config else None,
            )
        )
    for qid in sorted(engine.queues):
        q = engine.queues[qid]
        parts.append(
            (
                qid,
                q.config.model_dump_json(),
                q.policy_version,
                q.layout,
                q.rr_clock,
                sorted(q.rr_last.items()),
                (q.answered, q.answered_in_sl, q.abandoned, q.exited),
                (q.overflowed_in, q.overflowed_out),
                sorted(q.contacts),
                [
                    sorted((repr(sig), entries(g.entries)) for sig, g in b.groups.items())
                    for b in q.buckets
                ],
            )
        )
    for iid in sorted(engine.contacts):
        c = engine.contacts[iid]
        parts.append(
            (
                iid,
                c.seq,
                c.queue.id,
                c.channel,
                c.priority,
                sorted(c.own_skills.items()),
                c.lang,
                c.entered,
                c.first,
                c.visit,
                c.step,
                c.hops,
                c.status.value,
                c.preferred_id,
                c.preferred_until,
                c.in_preferred,
                c.returned,
                sorted(c.declined or ()),
                None if c.offer is None else c.offer.offer_id,
                c.reqs,
                None if c.entry is None else c.entry[:4],
                str(c.correlation_id),
                str(c.cause_id),
            )
        )
    for oid in sorted(engine.offers):
        o = engine.offers[oid]
        parts.append((oid, o.contact.iid, o.agent.id, o.issued, o.expires, o.cost))
    for name, index in (("q", engine.ready_q), ("g", engine.ready_g), ("s", engine.ready_s)):
        for key in sorted(index):
            if index[key]:
                parts.append((name, key[0], key[1], [a.id for a in index[key]]))
    # Timers already due are compared by their effects: the original popped the ones it fired.
    live = sorted(e for e in engine.timers if e[0] > engine.now and engine._timer_live(e))
    parts.append([(at, kind.value, subject, repr(token)) for at, _, kind, subject, token in live])
    parts.append([(oid, e.status) for oid, e in engine.explained.items()])
    parts.append(
        sorted((iid, sorted(a.id for a in agents)) for iid, agents in engine.holders.items())
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()
