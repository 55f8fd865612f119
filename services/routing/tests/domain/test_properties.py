"""Stateful property tests: random sequences of arrivals, presence changes, accepts, rejects,
time-outs (the clock moves), ends, wrap-ups, completions, cancellations and transfers.

An independent model, folded from the emitted events and the configuration below (not from
the engine's internals), checks after every step:

- never two agents for one contact (no second offer or assignment while one is open);
- never an agent over capacity (recomputed from the work the events gave it);
- never an offer to an agent that is not available, has no room, or is outside the pool and
  requirements of the contact's current policy step (or is not its preferred agent during the
  preferred phase), nor to one who declined it;
- every waiting contact is offered as soon as a matching agent is free: after every command,
  no available agent with room matches a waiting contact;
- policy steps and maximum waits happen on time, and the engine agrees with the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from contactcenter.contracts.errors import FailedPrecondition
from contactcenter.routing.domain import (
    AcceptOffer,
    AssignContact,
    CancelContact,
    Channel,
    Command,
    CommandContext,
    CompleteContact,
    ConfigureAgent,
    ConfigurePolicy,
    ConfigureQueue,
    EndContact,
    EndWrapUp,
    MaxWaitAction,
    OfferCancelReason,
    Presence,
    QueueContact,
    QueueReason,
    RejectOffer,
    RoutingEngine,
    RoutingEvent,
    SelectionStrategy,
    SetAgentState,
    StepSpec,
    Tick,
)
from contactcenter.routing.domain import events as ev

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
V, C, M = Channel.VOICE, Channel.CHAT, Channel.EMAIL
EXCLUSIVE = {V, Channel.VIDEO}
COSTS = {V: 60, C: 20, M: 12}

STEPS = (
    StepSpec(after_s=0, name="own"),
    StepSpec(after_s=10, name="relaxed", min_proficiency_delta=-2),
    StepSpec(after_s=20, name="group", agent_groups=("g",)),
)
QUEUES = {
    "voice": ConfigureQueue(
        queue_id="voice",
        channels=(V,),
        required_skills={"billing": 3},
        language="en",
        policy_id="p",
        offer_timeout_s=5,
        wrap_up_s=3,
        max_wait_s=40,
        max_wait_action=MaxWaitAction.OVERFLOW,
        overflow_queue_id="general",
        preferred_agent_timeout_s=8,
    ),
    "chat": ConfigureQueue(
        queue_id="chat",
        channels=(C,),
        strategy=SelectionStrategy.LEAST_OCCUPIED,
        offer_timeout_s=5,
        wrap_up_s=2,
        not_responding_on_timeout=False,
        sl_threshold_s=60,
    ),
    "email": ConfigureQueue(
        queue_id="email",
        channels=(M,),
        required_skills={"tax": 2},
        strategy=SelectionStrategy.ROUND_ROBIN,
        offer_timeout_s=6,
        wrap_up_s=0,
        max_wait_s=30,
        sl_threshold_s=600,
    ),
    "general": ConfigureQueue(
        queue_id="general",
        channels=(V, C),
        strategy=SelectionStrategy.FEWEST_CONTACTS_TODAY,
        priority=5,
        offer_timeout_s=4,
        wrap_up_s=1,
    ),
}
AGENTS = {
    "a0": ConfigureAgent(
        agent_id="a0",
        skills={"billing": 4, "tax": 2},
        languages=("en",),
        queues=("voice", "email"),
        channels=(V, M),
    ),
    "a1": ConfigureAgent(
        agent_id="a1", languages=("en", "es"), queues=("chat", "general"), channels=(C,)
    ),
    "a2": ConfigureAgent(
        agent_id="a2",
        skills={"billing": 2},
        languages=("en",),
        queues=("general", "voice"),
        groups=("g",),
        channels=(V, C),
        interruptible_channels=(C,),
    ),
    "a3": ConfigureAgent(
        agent_id="a3",
        skills={"tax": 3, "billing": 1},
        languages=("es",),
        queues=("email",),
        groups=("g",),
        channels=(M, V),
    ),
    "a4": ConfigureAgent(
        agent_id="a4",
        skills={"tax": 1},
        languages=("en",),
        queues=("chat", "email"),
        channels=(C, M),
    ),
    "a5": ConfigureAgent(
        agent_id="a5", skills={"billing": 3}, languages=("en",), groups=("g",), channels=(V,)
    ),
}


@dataclass
class MContact:
    queue: str
    channel: Channel
    priority: int
    own: dict[str, int]
    language: str | None
    entered: datetime
    preferred: str | None
    in_preferred: bool
    step: int = 0
    offered_to: str | None = None
    declined: set[str] = field(default_factory=set)


@dataclass
class MAgent:
    presence: Presence = Presence.OFFLINE
    #: interaction -> (channel, offered | assigned | wrap_up)
    items: dict[str, tuple[Channel, str]] = field(default_factory=dict)


def fits(config: ConfigureAgent, agent: MAgent, channel: Channel) -> bool:
    """The capacity and cross-channel rules, written again from the issue's words."""
    if channel not in config.channels:
        return False
    interruptible = set(config.interruptible_channels)
    held = [ch for ch, _ in agent.items.values()]
    if channel in EXCLUSIVE:
        return all(ch not in EXCLUSIVE and ch in interruptible for ch in held)
    if any(ch in EXCLUSIVE for ch in held):
        return False
    return sum(COSTS[ch] for ch in held) + COSTS[channel] <= 60


def load(agent: MAgent) -> int:
    held = [ch for ch, _ in agent.items.values()]
    if any(ch in EXCLUSIVE for ch in held):
        return sum(COSTS[ch] for ch in held if ch in EXCLUSIVE)
    return sum(COSTS[ch] for ch in held)


def eligible(agent_id: str, contact: MContact) -> bool:
    """Pool and requirements of the contact's step (not presence or capacity)."""
    config = AGENTS[agent_id]
    if agent_id in contact.declined or contact.channel not in config.channels:
        return False
    if contact.in_preferred:
        return agent_id == contact.preferred
    queue = QUEUES[contact.queue]
    spec = STEPS[contact.step] if queue.policy_id == "p" else StepSpec(after_s=0)
    pool = (contact.queue in config.queues and spec.include_queue_agents) or bool(
        set(spec.agent_queues) & set(config.queues) or set(spec.agent_groups) & set(config.groups)
    )
    if not pool:
        return False
    needs = {skill: max(1, level) for skill, level in queue.required_skills.items()}
    for skill, level in contact.own.items():
        needs[skill] = max(needs.get(skill, 0), max(1, level))
    for skill, level in needs.items():
        if config.skills.get(skill, 0) < min(5, max(1, level + spec.min_proficiency_delta)):
            return False
    language = contact.language or queue.language
    return language is None or language.split("-")[0] in {
        tag.split("-")[0] for tag in config.languages
    }


def expected_step(contact: MContact, now: datetime) -> int:
    if QUEUES[contact.queue].policy_id != "p":
        return 0
    waited = now - contact.entered
    return max(i for i, s in enumerate(STEPS) if timedelta(seconds=s.after_s) <= waited)


class RoutingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = RoutingEngine("t-prop")
        self.clock = T0
        self.contacts: dict[str, MContact] = {}
        self.agents = {agent_id: MAgent() for agent_id in AGENTS}
        self.offers: dict[str, tuple[str, str]] = {}
        self.n = 0

    # --- plumbing ----------------------------------------------------------------------------

    def run(self, command: Command, seconds: float = 0.0, *, may_refuse: bool = False) -> None:
        self.clock += timedelta(seconds=seconds)
        outcome = self.engine.execute(command, CommandContext(now=self.clock))
        for event in outcome.events:
            self.observe(event)
        if outcome.error is not None and not (
            may_refuse and isinstance(outcome.error, FailedPrecondition)
        ):
            raise outcome.error

    def observe(self, event: RoutingEvent) -> None:
        """Check an event against the model, then fold it into the model."""
        if isinstance(event, ev.AgentStateChanged):
            self.agents[event.agent_id].presence = event.presence
        elif isinstance(event, ev.ContactQueued):
            self.contacts[event.interaction_id] = MContact(
                queue=event.queue_id,
                channel=event.channel,
                priority=event.priority,
                own={r.skill: r.min_proficiency for r in event.required_skills},
                language=event.language,
                entered=event.occurred_at,
                preferred=event.preferred_agent_id,
                in_preferred=event.preferred_until is not None,
            )
        elif isinstance(event, ev.PolicyStepReached):
            contact = self.contacts[event.interaction_id]
            assert event.step == contact.step + 1
            assert event.occurred_at == contact.entered + timedelta(
                seconds=STEPS[event.step].after_s
            )
            contact.step = event.step
        elif isinstance(event, ev.PreferredAgentReleased):
            self.contacts[event.interaction_id].in_preferred = False
        elif isinstance(event, ev.OfferIssued):
            self.check_offer(event)
            self.contacts[event.interaction_id].offered_to = event.agent_id
            self.agents[event.agent_id].items[event.interaction_id] = (event.channel, "offered")
            self.offers[event.offer_id] = (event.interaction_id, event.agent_id)
        elif isinstance(event, (ev.OfferRejected, ev.OfferTimedOut, ev.OfferCancelled)):
            del self.offers[event.offer_id]
            del self.agents[event.agent_id].items[event.interaction_id]
            contact = self.contacts[event.interaction_id]
            contact.offered_to = None
            if not isinstance(event, ev.OfferCancelled):
                contact.declined.add(event.agent_id)
        elif isinstance(event, ev.OfferAccepted):
            del self.offers[event.offer_id]
            channel, _ = self.agents[event.agent_id].items[event.interaction_id]
            self.agents[event.agent_id].items[event.interaction_id] = (channel, "assigned")
            del self.contacts[event.interaction_id]
        elif isinstance(event, ev.ContactAssigned):
            if event.offer_id is None:
                contact = self.contacts.pop(event.interaction_id, None)
                assert contact is None or contact.offered_to is None
                for other in self.agents.values():
                    assert other.items.get(event.interaction_id, (None, ""))[1] != "assigned"
                self.agents[event.agent_id].items[event.interaction_id] = (
                    event.channel,
                    "assigned",
                )
        elif isinstance(event, ev.ContactEnded):
            agent = self.agents[event.agent_id]
            channel, status = agent.items[event.interaction_id]
            assert status == "assigned"
            if event.wrap_up_until is None:
                del agent.items[event.interaction_id]
            else:
                agent.items[event.interaction_id] = (channel, "wrap_up")
        elif isinstance(event, ev.WrapUpEnded):
            _, status = self.agents[event.agent_id].items.pop(event.interaction_id)
            assert status == "wrap_up"
        elif isinstance(event, ev.ContactOverflowed):
            contact = self.contacts[event.interaction_id]
            assert contact.offered_to is None
            # At the maximum wait, or later when an offer was open then (it ran its course).
            waited = event.occurred_at - contact.entered
            assert waited >= timedelta(seconds=QUEUES[contact.queue].max_wait_s or 0)
            contact.queue = event.to_queue_id
            contact.entered = event.occurred_at
            contact.step = 0
            contact.declined = set()
            contact.in_preferred = False
        elif isinstance(event, ev.ContactRemoved):
            contact = self.contacts.pop(event.interaction_id, None)
            if contact is not None:
                assert contact.offered_to is None
            if event.agent_id is not None:
                self.agents[event.agent_id].items.pop(event.interaction_id)

    def check_offer(self, offer: ev.OfferIssued) -> None:
        contact = self.contacts.get(offer.interaction_id)
        assert contact is not None, "offer of a contact that is not waiting"
        assert contact.offered_to is None, "a second agent for one contact"
        for agent_id, agent in self.agents.items():
            status = agent.items.get(offer.interaction_id, (None, ""))[1]
            assert status not in ("offered", "assigned"), f"{agent_id} already has it"
        agent = self.agents[offer.agent_id]
        assert agent.presence is Presence.AVAILABLE, "offer to an agent not available"
        assert fits(AGENTS[offer.agent_id], agent, contact.channel), "offer beyond capacity"
        assert contact.step == expected_step(contact, offer.occurred_at)
        assert offer.decision.step == contact.step
        assert offer.decision.preferred == contact.in_preferred
        assert eligible(offer.agent_id, contact), "offer outside the step's pool or requirements"
        assert offer.queue_id == contact.queue and offer.channel == contact.channel

    def pick(self, items: list[Any], index: int) -> Any:
        return items[index % len(items)]

    # --- rules -------------------------------------------------------------------------------

    @initialize()
    def configure(self) -> None:
        self.run(ConfigurePolicy(policy_id="p", steps=STEPS))
        for command in (*QUEUES.values(), *AGENTS.values()):
            self.run(command)

    @rule(
        queue=st.sampled_from(sorted(QUEUES)),
        channel=st.sampled_from([V, C]),
        priority=st.sampled_from([0, 0, 10]),
        own=st.sampled_from([{}, {}, {"billing": 2}, {"tax": 3}]),
        language=st.sampled_from([None, None, "es", "en-GB"]),
        preferred=st.sampled_from([None, None, None, *sorted(AGENTS)]),
        seconds=st.floats(0, 3),
    )
    def arrive(
        self,
        queue: str,
        channel: Channel,
        priority: int,
        own: dict[str, int],
        language: str | None,
        preferred: str | None,
        seconds: float,
    ) -> None:
        channels = QUEUES[queue].channels
        self.n += 1
        self.run(
            QueueContact(
                interaction_id=f"i{self.n}",
                queue_id=queue,
                channel=channel if channel in channels else channels[0],
                priority=priority,
                required_skills=own,
                language=language,
                preferred_agent_id=preferred,
            ),
            seconds,
        )

    @rule(
        agent=st.sampled_from(sorted(AGENTS)),
        presence=st.sampled_from([Presence.AVAILABLE] * 3 + [Presence.AWAY, Presence.OFFLINE]),
        seconds=st.floats(0, 3),
    )
    def presence(self, agent: str, presence: Presence, seconds: float) -> None:
        self.run(SetAgentState(agent_id=agent, presence=presence), seconds)

    @precondition(lambda self: self.offers)
    @rule(index=st.integers(0, 50), accept=st.booleans(), seconds=st.floats(0, 2))
    def answer(self, index: int, accept: bool, seconds: float) -> None:
        offer_id = self.pick(sorted(self.offers), index)
        _, agent_id = self.offers[offer_id]
        at = self.clock + timedelta(seconds=seconds)
        if any(at >= self.engine.offers[o].event.expires_at for o in self.offers):
            seconds = 0  # answered before any offer times out (time-outs are `wait`'s)
        command = AcceptOffer if accept else RejectOffer
        self.run(command(offer_id=offer_id, agent_id=agent_id), seconds)

    def work(self, *statuses: str) -> list[tuple[str, str]]:
        return sorted(
            (iid, agent_id)
            for agent_id, agent in self.agents.items()
            for iid, (_, status) in agent.items.items()
            if status in statuses
        )

    @precondition(lambda self: self.work("assigned"))
    @rule(index=st.integers(0, 50), complete=st.booleans(), seconds=st.floats(0, 5))
    def end(self, index: int, complete: bool, seconds: float) -> None:
        iid, _ = self.pick(self.work("assigned"), index)
        command = CompleteContact if complete else EndContact
        self.run(command(interaction_id=iid), seconds)

    @precondition(lambda self: self.work("wrap_up"))
    @rule(index=st.integers(0, 50), by_agent=st.booleans())
    def wrap_up(self, index: int, by_agent: bool) -> None:
        iid, agent_id = self.pick(self.work("wrap_up"), index)
        if by_agent:
            self.run(EndWrapUp(agent_id=agent_id, interaction_id=iid))
        else:
            self.run(CompleteContact(interaction_id=iid))

    @precondition(lambda self: self.contacts)
    @rule(index=st.integers(0, 50), seconds=st.floats(0, 3))
    def cancel(self, index: int, seconds: float) -> None:
        iid = self.pick(sorted(self.contacts), index)
        self.run(CancelContact(interaction_id=iid, reason_code="abandoned"), seconds)

    @precondition(lambda self: self.contacts)
    @rule(index=st.integers(0, 50), queue=st.sampled_from(sorted(QUEUES)))
    def transfer(self, index: int, queue: str) -> None:
        iid = self.pick(sorted(self.contacts), index)
        channel = self.contacts[iid].channel
        if channel in QUEUES[queue].channels:
            self.run(
                QueueContact(
                    interaction_id=iid, queue_id=queue, channel=channel, reason=QueueReason.TRANSFER
                )
            )

    @precondition(lambda self: self.contacts)
    @rule(index=st.integers(0, 50), agent=st.sampled_from(sorted(AGENTS)))
    def pick_up(self, index: int, agent: str) -> None:
        iid = self.pick(sorted(self.contacts), index)
        self.run(AssignContact(interaction_id=iid, agent_id=agent), may_refuse=True)

    @rule(seconds=st.sampled_from([0.5, 1, 4, 6, 11, 25]))
    def wait(self, seconds: float) -> None:
        self.run(Tick(), seconds)

    # --- invariants --------------------------------------------------------------------------

    @invariant()
    def nobody_over_capacity_and_one_agent_per_contact(self) -> None:
        holders: dict[str, int] = {}
        for agent_id, agent in self.agents.items():
            assert load(agent) <= 60, f"{agent_id} over capacity"
            view = self.engine.agent(agent_id)
            assert view.load == load(agent)
            assert {w.interaction_id: w.status.value for w in view.work} == {
                iid: status for iid, (_, status) in agent.items.items()
            }
            for iid, (_, status) in agent.items.items():
                if status in ("offered", "assigned"):
                    holders[iid] = holders.get(iid, 0) + 1
        assert all(count == 1 for count in holders.values())

    @invariant()
    def every_waiting_contact_is_offered_when_a_matching_agent_is_free(self) -> None:
        for iid, contact in self.contacts.items():
            if contact.offered_to is not None:
                continue
            for agent_id, agent in self.agents.items():
                if agent.presence is not Presence.AVAILABLE:
                    continue
                if fits(AGENTS[agent_id], agent, contact.channel) and eligible(agent_id, contact):
                    raise AssertionError(f"{iid} waits while {agent_id} is free and matches")

    @invariant()
    def timers_are_on_time_and_the_engine_agrees(self) -> None:
        assert sorted(self.engine.contacts) == sorted(self.contacts)
        for iid, contact in self.contacts.items():
            assert contact.step == expected_step(contact, self.clock), iid
            max_wait = QUEUES[contact.queue].max_wait_s
            if max_wait is not None and contact.offered_to is None:
                assert self.clock - contact.entered < timedelta(seconds=max_wait), iid
            view = self.engine.contact(iid)
            assert view is not None and view.step == contact.step
            assert view.in_preferred_phase == contact.in_preferred
            assert view.declined_by == frozenset(contact.declined)


RoutingMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestRouting = RoutingMachine.TestCase


def test_cancel_reasons_are_known() -> None:
    # A guard for the model above: these are the reasons after which a contact waits again.
    assert {r.value for r in OfferCancelReason if r.value.startswith("agent")} == {
        "agent_unavailable",
        "agent_not_responding",
        "agent_reconfigured",
    }
