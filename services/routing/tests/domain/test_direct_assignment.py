"""Assignments made outside routing (interactions' InteractionAssigned, e.g. a gateway's Connect
of a queued contact straight to an agent): routing follows the fact. The contact leaves its
queue, a pending offer to someone else is cancelled (its reservation released), the agent's
capacity is seized as for an accepted offer; routing's own assignment coming back changes
nothing; an unknown agent or contact is explained (an event or a refusal), never a crash."""

from __future__ import annotations

from typing import Any

import pytest

from contactcenter.contracts.errors import NotFound
from contactcenter.routing.domain import (
    AgentState,
    Channel,
    CompleteContact,
    EndContact,
    OfferCancelReason,
    Presence,
    RecordAssignment,
    RemovalReason,
    SetAgentState,
)
from contactcenter.routing.domain.events import (
    AgentStateChanged,
    ContactAssigned,
    ContactEnded,
    ContactRemoved,
    OfferAccepted,
    OfferCancelled,
    OfferIssued,
)
from contactcenter.routing.domain.values import DEFAULT_CHANNEL_COSTS


def connect(desk: Any, iid: str, agent: str, after: float = 0, **fields: Any) -> Any:
    return desk.when(RecordAssignment(interaction_id=iid, agent_id=agent, **fields), after=after)


def test_a_waiting_contact_connected_to_an_agent_leaves_the_queue_and_makes_the_agent_busy(
    desk: Any, kinds: Any, of: Any
) -> None:
    desk.queue("q1", sl_threshold_s=20)
    desk.queue("q2")
    desk.agent("a2", queues=("q2",))
    desk.contact("i1", "q1")

    events = connect(desk, "i1", "a2", after=7)

    assert kinds(events) == ["ContactAssigned", "AgentStateChanged"]
    assigned = of(events, ContactAssigned)[0]
    assert (assigned.agent_id, assigned.queue_id, assigned.offer_id) == ("a2", "q1", None)
    assert (assigned.cost, assigned.wait_ms, assigned.within_service_level) == (
        DEFAULT_CHANNEL_COSTS[Channel.VOICE],
        7000,
        True,
    )
    assert of(events, AgentStateChanged)[0].state is AgentState.BUSY
    assert desk.engine.contact("i1") is None
    assert desk.engine.agent("a2").load == assigned.cost
    # Busy: the next contact of the agent's queue waits.
    assert of(desk.contact("i2", "q2"), OfferIssued) == []
    # Then the usual end of work: the agent is free again and takes the waiting contact.
    assert kinds(desk.when(EndContact(interaction_id="i1"), after=60))[0] == "ContactEnded"
    assert desk.offered_to(desk.history[-3:]) == {"i2": "a2"}


def test_a_pending_offer_to_another_agent_is_cancelled_and_its_reservation_released(
    desk: Any, kinds: Any, of: Any
) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.agent("a2", queues=("q2",))
    desk.contact("i1")
    offer = desk.offer_of("i1")
    assert offer.agent_id == "a1"

    events = connect(desk, "i1", "a2", after=2)

    cancelled = of(events, OfferCancelled)[0]
    assert (cancelled.offer_id, cancelled.agent_id, cancelled.reason) == (
        offer.offer_id,
        "a1",
        OfferCancelReason.CONTACT_ASSIGNED,
    )
    assert of(events, ContactAssigned)[0].agent_id == "a2"
    assert desk.engine.agent("a1").load == 0
    assert desk.engine.agent("a1").state is AgentState.AVAILABLE
    assert desk.engine.agent("a2").state is AgentState.BUSY
    assert desk.engine.offer_status(offer.offer_id) == "cancelled"
    # a1 is free for the next contact.
    assert desk.offered_to(desk.contact("i2")) == {"i2": "a1"}


def test_routing_s_own_assignment_coming_back_changes_nothing(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.contact("i1")
    offer = desk.offer_of("i1")
    desk.accept("i1")

    assert connect(desk, "i1", "a1", offer_id=offer.offer_id) == []
    assert connect(desk, "i1", "a1") == []  # the same fact again
    assert desk.engine.agent("a1").load == DEFAULT_CHANNEL_COSTS[Channel.VOICE]


def test_the_agent_s_own_pending_offer_taken_through_interactions_is_accepted(
    desk: Any, kinds: Any, of: Any
) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.contact("i1")
    offer = desk.offer_of("i1")

    events = connect(desk, "i1", "a1", after=3, offer_id=offer.offer_id)

    assert kinds(events) == ["OfferAccepted", "ContactAssigned"]  # busy since the offer
    assert of(events, OfferAccepted)[0].offer_id == offer.offer_id
    assert of(events, ContactAssigned)[0].offer_id == offer.offer_id


def test_an_unknown_agent_takes_the_contact_out_of_routing_and_says_why(
    desk: Any, kinds: Any, of: Any
) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.contact("i1")

    events = connect(desk, "i1", "ghost", after=4)

    assert kinds(events) == ["OfferCancelled", "ContactRemoved", "AgentStateChanged"]
    removed = of(events, ContactRemoved)[0]
    assert (removed.reason, removed.reason_code, removed.agent_id, removed.waited_ms) == (
        RemovalReason.ASSIGNED_OUTSIDE,
        "unknown_agent",
        None,
        4000,
    )
    assert desk.engine.contact("i1") is None
    assert desk.engine.agent("a1").state is AgentState.AVAILABLE


def test_an_unknown_contact_is_refused_without_a_trace_in_the_state(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    before = desk.engine.fingerprint()

    with pytest.raises(NotFound) as refused:
        connect(desk, "never-queued", "a1")

    assert refused.value.resource_name == "never-queued"
    assert desk.engine.fingerprint() == before
    assert desk.engine.agent("a1").load == 0


def test_an_agent_routing_thinks_offline_is_still_given_the_work(desk: Any, of: Any) -> None:
    desk.queue("q1")
    desk.agent("a1", available=False)
    desk.contact("i1")

    events = connect(desk, "i1", "a1")

    assert of(events, ContactAssigned)[0].agent_id == "a1"
    view = desk.engine.agent("a1")
    assert (view.presence, view.state, view.load) == (
        Presence.OFFLINE,
        AgentState.OFFLINE,
        DEFAULT_CHANNEL_COSTS[Channel.VOICE],
    )
    # Available later: still busy with it until the contact completes.
    desk.when(SetAgentState(agent_id="a1", presence=Presence.AVAILABLE))
    assert desk.engine.agent("a1").state is AgentState.BUSY
    desk.when(CompleteContact(interaction_id="i1"))
    assert desk.engine.agent("a1").state is AgentState.AVAILABLE


def test_routing_s_assignment_to_another_agent_is_released_without_wrap_up(
    desk: Any, kinds: Any, of: Any
) -> None:
    desk.queue("q1", wrap_up_s=30)
    desk.agent("a1")
    desk.agent("a2", queues=("q2",))
    desk.contact("i1")
    desk.accept("i1")  # routing gave it to a1 while the gateway connected a2

    events = connect(desk, "i1", "a2")

    removed = of(events, ContactRemoved)[0]
    assert (removed.agent_id, removed.reason, removed.reason_code) == (
        "a1",
        RemovalReason.ASSIGNED_OUTSIDE,
        "assigned_elsewhere",
    )
    assert of(events, ContactAssigned)[0].agent_id == "a2"
    assert of(events, ContactEnded) == []
    assert desk.engine.agent("a1").state is AgentState.AVAILABLE
    assert desk.engine.agent("a2").state is AgentState.BUSY
    # Ended: a2 (not a1) wraps up.
    ended = of(desk.when(EndContact(interaction_id="i1")), ContactEnded)
    assert [e.agent_id for e in ended] == ["a2"]
