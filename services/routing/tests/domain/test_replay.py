"""Replay: the state is a fold over the events, and decisions are a function of the commands
and their times. Rebuilding from the log (through the events' JSON and the registry, as the
event store hands them back) reproduces the same state, index order included, and from there
the same decisions, bit for bit. Also: the engine leaves no reference cycles behind, so the
service can run without the cyclic garbage collector's pauses."""

from __future__ import annotations

import gc
import random
from datetime import UTC, datetime, timedelta

import pytest

from contactcenter.contracts.events import registry
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
    Presence,
    QueueContact,
    QueueReason,
    RecordAssignment,
    RejectOffer,
    RoutingEngine,
    RoutingEvent,
    SelectionStrategy,
    SetAgentState,
    StepSpec,
    Tick,
    WorkStatus,
)
from contactcenter.routing.domain.events import OfferIssued

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TENANT = "t-replay"

SETUP: list[Command] = [
    ConfigurePolicy(
        policy_id="p1",
        steps=(
            StepSpec(after_s=0, name="own"),
            StepSpec(after_s=20, name="relaxed", min_proficiency_delta=-2),
            StepSpec(after_s=45, name="group", agent_groups=("g1",)),
        ),
    ),
    ConfigureQueue(
        queue_id="voice",
        channels=(Channel.VOICE,),
        required_skills={"billing": 3},
        policy_id="p1",
        wrap_up_s=5,
        offer_timeout_s=8,
        max_wait_s=120,
        max_wait_action=MaxWaitAction.OVERFLOW,
        overflow_queue_id="general",
    ),
    ConfigureQueue(
        queue_id="chat",
        channels=(Channel.CHAT,),
        strategy=SelectionStrategy.LEAST_OCCUPIED,
        sl_threshold_s=60,
        wrap_up_s=3,
        not_responding_on_timeout=False,
    ),
    ConfigureQueue(
        queue_id="email",
        channels=(Channel.EMAIL,),
        strategy=SelectionStrategy.ROUND_ROBIN,
        sl_threshold_s=3600,
        wrap_up_s=0,
        max_wait_s=300,
    ),
    ConfigureQueue(
        queue_id="general",
        channels=(Channel.VOICE, Channel.CHAT),
        strategy=SelectionStrategy.FEWEST_CONTACTS_TODAY,
        priority=5,
    ),
]
AGENTS = [
    ConfigureAgent(
        agent_id=f"a{i}",
        skills={"billing": 1 + i % 5, "spanish": 1 + (i * 3) % 5},
        languages=("en",) if i % 3 else ("en", "es"),
        queues=(("voice", "general"), ("chat",), ("email", "voice"), ("general", "chat"))[i % 4],
        groups=("g1",) if i % 2 else (),
        channels=(
            (Channel.VOICE, Channel.EMAIL),
            (Channel.CHAT,),
            (Channel.VOICE, Channel.EMAIL),
            (Channel.VOICE, Channel.CHAT),
        )[i % 4],
        time_zone=("UTC", "Asia/Tokyo", "America/New_York")[i % 3],
    )
    for i in range(10)
]
QUEUE_CHANNELS = {
    "voice": Channel.VOICE,
    "chat": Channel.CHAT,
    "email": Channel.EMAIL,
    "general": Channel.CHAT,
}


def next_command(rng: random.Random, engine: RoutingEngine, n: int) -> Command:
    """A plausible next command, chosen from what the engine holds."""
    roll = rng.random()
    agents = sorted(engine.agents)
    if roll < 0.25:
        queue = rng.choice(sorted(QUEUE_CHANNELS))
        return QueueContact(
            interaction_id=f"i{n}",
            queue_id=queue,
            channel=QUEUE_CHANNELS[queue],
            priority=rng.choice((0, 0, 10)),
            required_skills=rng.choice(({}, {}, {"spanish": 2})),
            language=rng.choice((None, None, "es")),
            preferred_agent_id=rng.choice((None, None, None, rng.choice(agents))),
        )
    if roll < 0.45:
        offers = sorted(engine.offers)
        if offers:
            offer = engine.offers[rng.choice(offers)]
            if rng.random() < 0.8:
                return AcceptOffer(offer_id=offer.offer_id, agent_id=offer.agent.id)
            return RejectOffer(offer_id=offer.offer_id, agent_id=offer.agent.id, reason_code="busy")
    if roll < 0.65:
        work = sorted(
            (agent.id, iid)
            for agent in engine.agents.values()
            for iid, item in agent.items.items()
            if item.status is WorkStatus.ASSIGNED
        )
        if work:
            _, iid = rng.choice(work)
            return rng.choice((EndContact, EndContact, CompleteContact))(interaction_id=iid)
    if roll < 0.72:
        wrapping = sorted(
            agent.id
            for agent in engine.agents.values()
            if any(i.status is WorkStatus.WRAP_UP for i in agent.items.values())
        )
        if wrapping:
            return EndWrapUp(agent_id=rng.choice(wrapping))
    if roll < 0.82:
        presence = rng.choice(
            (Presence.AVAILABLE, Presence.AVAILABLE, Presence.AWAY, Presence.OFFLINE)
        )
        return SetAgentState(agent_id=rng.choice(agents), presence=presence, reason_code=None)
    if roll < 0.86 and engine.contacts:
        iid = rng.choice(sorted(engine.contacts))
        if rng.random() < 0.5:
            return CancelContact(interaction_id=iid, reason_code="abandoned")
        queue = rng.choice(sorted(QUEUE_CHANNELS))
        channel = engine.contacts[iid].channel
        if channel in {c.value for c in engine.queues[queue].config.channels}:
            return QueueContact(
                interaction_id=iid,
                queue_id=queue,
                channel=Channel(channel),
                reason=QueueReason.TRANSFER,
            )
    if roll < 0.88 and engine.contacts:
        return AssignContact(
            interaction_id=rng.choice(sorted(engine.contacts)), agent_id=rng.choice(agents)
        )
    if roll < 0.91:
        # Interactions' assignments: a gateway's direct connect (known or unknown agent, or a
        # contact routing never had) or routing's own accepted offer coming back.
        held = sorted(
            iid
            for agent in engine.agents.values()
            for iid, item in agent.items.items()
            if item.status is WorkStatus.ASSIGNED
        )
        known = sorted(engine.contacts) + held
        iid = rng.choice(known) if known and rng.random() < 0.9 else f"x{n}"
        agent_id = rng.choice(agents) if rng.random() < 0.9 else "ghost"
        return RecordAssignment(interaction_id=iid, agent_id=agent_id)
    return Tick()


def simulate(
    seed: int, steps: int
) -> tuple[list[tuple[datetime, Command]], list[list[RoutingEvent]], list[str]]:
    """Run a random but plausible day; returns the commands with their times, the events of
    each, and the engine's fingerprint after each."""
    rng = random.Random(seed)
    engine = RoutingEngine(TENANT)
    clock = T0
    script: list[tuple[datetime, Command]] = []
    produced: list[list[RoutingEvent]] = []
    prints: list[str] = []
    for command in [*SETUP, *AGENTS]:
        script.append((clock, command))
    for i in range(steps):
        if i < len(SETUP) + len(AGENTS):
            _, command = script[i]
        else:
            clock += timedelta(milliseconds=rng.randrange(0, 6000))
            command = next_command(rng, engine, i)
            script.append((clock, command))
        outcome = engine.execute(command, CommandContext(now=script[i][0]))
        produced.append(outcome.events)
        prints.append(engine.fingerprint())
    return script, produced, prints


def wire(events: list[RoutingEvent]) -> list[str]:
    return [e.model_dump_json() for e in events]


def stored(events: list[RoutingEvent]) -> list[RoutingEvent]:
    """What an event store gives back: JSON payloads decoded through the registry."""
    decoded = [registry.decode(e.event_type, e.payload()) for e in events]
    assert all(isinstance(e, RoutingEvent) for e in decoded)
    return decoded  # type: ignore[return-value]


@pytest.fixture(scope="module")
def day() -> tuple[list[tuple[datetime, Command]], list[list[RoutingEvent]], list[str]]:
    return simulate(seed=11, steps=1500)


def test_the_day_exercises_the_rules(day: tuple) -> None:
    _, produced, _ = day
    names = {type(e).__name__ for events in produced for e in events}
    assert names >= {
        "OfferIssued",
        "OfferAccepted",
        "OfferRejected",
        "OfferTimedOut",
        "OfferCancelled",
        "ContactAssigned",
        "ContactEnded",
        "WrapUpEnded",
        "PolicyStepReached",
        "PreferredAgentReleased",
        "MaxWaitReached",
        "ContactOverflowed",
        "ContactRemoved",
        "AgentStateChanged",
    }, names


def test_the_same_commands_give_the_same_events_bit_for_bit(day: tuple) -> None:
    script, produced, prints = day
    engine = RoutingEngine(TENANT)
    for (at, command), expected, fingerprint in zip(script, produced, prints, strict=True):
        assert wire(engine.execute(command, CommandContext(now=at)).events) == wire(expected)
        assert engine.fingerprint() == fingerprint


@pytest.mark.parametrize("cut", [30, 200, 777, 1499])
def test_a_rebuilt_engine_is_the_same_and_decides_the_same(day: tuple, cut: int) -> None:
    script, produced, prints = day
    history = [e for events in produced[:cut] for e in events]
    rebuilt = RoutingEngine.from_events(TENANT, stored(history))
    assert rebuilt.version == len(history)
    assert rebuilt.fingerprint() == prints[cut - 1]
    for (at, command), expected in zip(script[cut:], produced[cut:], strict=True):
        assert wire(rebuilt.execute(command, CommandContext(now=at)).events) == wire(expected)


def test_explanations_survive_a_rebuild(day: tuple) -> None:
    _, produced, _ = day
    history = [e for events in produced for e in events]
    rebuilt = RoutingEngine.from_events(TENANT, stored(history))
    last_offer = [e for e in history if isinstance(e, OfferIssued)][-1]
    assert rebuilt.explain(last_offer.offer_id) == last_offer


def test_event_ids_are_unique_and_versions_count_the_events(day: tuple) -> None:
    _, produced, _ = day
    history = [e for events in produced for e in events]
    assert len({e.event_id for e in history}) == len(history)
    offers = [e.offer_id for e in history if isinstance(e, OfferIssued)]
    assert len(set(offers)) == len(offers)


def test_the_engine_leaves_no_reference_cycles(day: tuple) -> None:
    script, _, _ = day
    gc.collect()
    gc.disable()
    try:
        engine = RoutingEngine(TENANT)
        for at, command in script:
            engine.execute(command, CommandContext(now=at))
        # Everything the day created and dropped was freed by reference counting. (The engine
        # itself is cyclic: dropping a whole tenant is for the collector, and rare.)
        assert gc.collect() == 0
        assert engine.version > 0
    finally:
        gc.enable()


def test_an_event_of_another_tenant_is_refused() -> None:
    engine = RoutingEngine(TENANT)
    other = RoutingEngine("t-other")
    (event,) = other.execute(SETUP[1].__class__(queue_id="q"), CommandContext(now=T0)).events  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="tenant"):
        engine.apply(event)
