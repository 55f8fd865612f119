"""Offers: made when a contact arrives or an agent frees up; they reserve capacity until
accepted, rejected or timed out; a contact that comes back goes to the front of its queue with
its original enqueue time; an agent who lets an offer time out goes to not responding."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

import pytest

from contactcenter.contracts.errors import FailedPrecondition, NotFound
from contactcenter.routing.domain import (
    AcceptOffer,
    AgentState,
    CancelContact,
    Channel,
    OfferCancelReason,
    Presence,
    RejectOffer,
    RoutingEvent,
    Trigger,
)
from contactcenter.routing.domain.events import (
    AgentStateChanged,
    ContactAssigned,
    ContactQueued,
    ContactRemoved,
    OfferAccepted,
    OfferCancelled,
    OfferIssued,
    OfferRejected,
    OfferTimedOut,
)

E = TypeVar("E", bound=RoutingEvent)


def of(events: list[RoutingEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def only(events: list[RoutingEvent], kind: type[E]) -> E:
    found = of(events, kind)
    assert len(found) == 1, [type(e).__name__ for e in events]
    return found[0]


def test_a_contact_arriving_is_offered_to_an_available_agent(desk: Any) -> None:
    desk.queue("q1", offer_timeout_s=20)
    desk.agent("a1")
    events = desk.contact("i1", after=5)

    assert [type(e).__name__ for e in events] == [
        "ContactQueued",
        "OfferIssued",
        "AgentStateChanged",
    ]
    offer = only(events, OfferIssued)
    assert (offer.interaction_id, offer.agent_id, offer.queue_id) == ("i1", "a1", "q1")
    assert offer.channel is Channel.VOICE
    assert offer.expires_at == desk.at(25)
    assert offer.cost == 60 and offer.wait_ms == 0
    assert offer.decision.trigger is Trigger.CONTACT_QUEUED
    state = only(events, AgentStateChanged)
    assert (state.previous_state, state.state, state.load) == (
        AgentState.AVAILABLE,
        AgentState.BUSY,
        60,
    )


def test_an_agent_becoming_available_takes_a_waiting_contact(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1", available=False)
    desk.contact("i1")
    events = desk.available("a1", after=12)

    offer = only(events, OfferIssued)
    assert offer.agent_id == "a1" and offer.wait_ms == 12_000
    assert offer.decision.trigger is Trigger.AGENT_AVAILABLE
    assert [type(e).__name__ for e in events] == [
        "AgentStateChanged",
        "OfferIssued",
        "AgentStateChanged",
    ]


def test_accepting_assigns_the_contact(desk: Any) -> None:
    desk.queue("q1", sl_threshold_s=20)
    desk.agent("a1")
    desk.contact("i1")
    offer = desk.offer_of("i1")
    events = desk.when(AcceptOffer(offer_id=offer.offer_id, agent_id="a1"), after=3)

    accepted, assigned = events
    assert isinstance(accepted, OfferAccepted) and accepted.ring_ms == 3_000
    assert isinstance(assigned, ContactAssigned)
    assert (assigned.agent_id, assigned.offer_id, assigned.wait_ms) == ("a1", offer.offer_id, 3_000)
    assert assigned.within_service_level
    view = desk.engine.agent("a1")
    assert view.state is AgentState.BUSY and [w.status.value for w in view.work] == ["assigned"]
    assert desk.engine.contact("i1") is None  # no longer waiting
    assert desk.engine.offer_status(offer.offer_id) == "accepted"


def test_accepting_twice_is_a_retry_and_changes_nothing(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.contact("i1")
    desk.accept("i1")
    assert desk.accept("i1") == []


def test_an_offer_reserves_capacity_so_nobody_else_gets_the_contact(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.agent("a2")
    desk.contact("i1")
    # a2 coming back does not take the contact offered to a1.
    assert of(desk.away("a2") + desk.available("a2", after=1), OfferIssued) == []
    # a1 is reserved: a second voice contact goes to a2.
    assert desk.offered_to(desk.contact("i2")) == {"i2": "a2"}


def test_rejected_contact_returns_to_the_front_with_its_original_enqueue_time(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.contact("i1")  # offered to a1 at once
    desk.contact("i2", after=1)
    desk.contact("i3", after=1, priority=50)  # higher priority, but i1 was already served
    desk.agent("a2", available=False)
    events = desk.when(RejectOffer(offer_id=desk.offer_of("i1").offer_id, agent_id="a1"), after=2)

    rejected = only(events, OfferRejected)
    assert rejected.ring_ms == 4_000
    view = desk.engine.contact("i1")
    assert view.returned_to_front and view.first_enqueued_at == desk.at(0)
    assert "a1" in view.declined_by
    # a1 is free again but does not get i1 back; it takes the best of the others.
    assert desk.offered_to(events) == {"i3": "a1"}
    # The next agent takes i1 first: it is at the front, ahead of i2 and the VIP i3 queued later.
    assert desk.offered_to(desk.available("a2", after=1)) == {"i1": "a2"}
    assert desk.offer_of("i1").wait_ms == 5_000  # counted from the original enqueue


def test_timed_out_offer_returns_the_contact_and_the_agent_goes_not_responding(desk: Any) -> None:
    desk.queue("q1", offer_timeout_s=15)
    desk.agent("a1")
    desk.contact("i1")
    desk.agent("a2", available=False)
    events = desk.tick(20)

    timed_out = only(events, OfferTimedOut)
    assert timed_out.occurred_at == desk.at(15)  # at the expiry, not when we looked
    assert timed_out.ring_ms == 15_000
    state = only(events, AgentStateChanged)
    assert (state.state, state.presence, state.reason_code) == (
        AgentState.NOT_RESPONDING,
        Presence.NOT_RESPONDING,
        "offer_timeout",
    )
    assert desk.engine.contact("i1").status.value == "waiting"
    assert desk.offered_to(desk.available("a2")) == {"i1": "a2"}
    # Back from not responding, a1 can take work again.
    desk.contact("i2")
    assert desk.offered_to(desk.available("a1")) == {"i2": "a1"}


def test_not_responding_is_configurable_per_queue(desk: Any) -> None:
    desk.queue("q1", offer_timeout_s=10, not_responding_on_timeout=False)
    desk.agent("a1")
    desk.contact("i1")
    events = desk.tick(10)
    assert of(events, OfferTimedOut)
    assert desk.engine.agent("a1").state is AgentState.AVAILABLE
    # The agent stays available, but not for the contact it let ring out.
    assert of(events, OfferIssued) == []
    assert desk.offered_to(desk.contact("i2")) == {"i2": "a1"}


def test_an_agent_staying_available_after_a_time_out_takes_other_work(desk: Any) -> None:
    # Found by the property tests: the capacity a time-out frees must be matched at once.
    desk.queue(
        "chat", channels=(Channel.CHAT,), offer_timeout_s=10, not_responding_on_timeout=False
    )
    desk.agent("a1", queues=("chat",), channels=(Channel.CHAT,))
    for i in range(3):
        desk.contact(f"c{i}", "chat", Channel.CHAT)
    desk.contact("c3", "chat", Channel.CHAT, after=1)  # a1 is full: c3 waits
    events = desk.tick(10)
    assert len(of(events, OfferTimedOut)) == 3
    assert desk.offered_to(events) == {"c3": "a1"}


def test_not_responding_withdraws_the_agents_other_offers(desk: Any) -> None:
    desk.queue("chat", channels=(Channel.CHAT,), offer_timeout_s=10)
    desk.agent("a1", queues=("chat",), channels=(Channel.CHAT,))
    desk.contact("i1", "chat", Channel.CHAT)
    desk.contact("i2", "chat", Channel.CHAT, after=5)
    events = desk.tick(6)
    assert [type(e).__name__ for e in events] == [
        "OfferTimedOut",
        "OfferCancelled",
        "AgentStateChanged",
    ]
    cancelled = only(events, OfferCancelled)
    assert cancelled.interaction_id == "i2"
    assert cancelled.reason is OfferCancelReason.AGENT_NOT_RESPONDING
    assert desk.engine.agent("a1").load == 0


def test_going_away_withdraws_open_offers(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.contact("i1")
    events = desk.away("a1", after=2)
    cancelled = only(events, OfferCancelled)
    assert cancelled.reason is OfferCancelReason.AGENT_UNAVAILABLE
    assert desk.engine.contact("i1").returned_to_front
    assert desk.engine.agent("a1").state is AgentState.AWAY


def test_cancelling_an_offered_contact_withdraws_the_offer(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.contact("i1")
    events = desk.when(CancelContact(interaction_id="i1", reason_code="abandoned"), after=7)
    assert [type(e).__name__ for e in events] == [
        "OfferCancelled",
        "ContactRemoved",
        "AgentStateChanged",
    ]
    assert only(events, OfferCancelled).reason is OfferCancelReason.CONTACT_CANCELLED
    removed = only(events, ContactRemoved)
    assert removed.waited_ms == 7_000 and removed.reason_code == "abandoned"
    assert desk.engine.queue_snapshot("q1").abandoned == 1


def test_accepting_an_expired_offer_is_refused_after_the_timeout_is_recorded(desk: Any) -> None:
    desk.queue("q1", offer_timeout_s=10)
    desk.agent("a1")
    desk.contact("i1")
    offer = desk.offer_of("i1")
    with pytest.raises(FailedPrecondition) as refused:
        desk.when(AcceptOffer(offer_id=offer.offer_id, agent_id="a1"), after=11)
    assert refused.value.current_state == "timed_out"
    # The time-out that fired before the refusal is in the history (the adapter appends it).
    assert of(desk.history, OfferTimedOut)


def test_another_agents_offer_looks_missing(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.agent("a2", available=False)
    desk.contact("i1")
    offer = desk.offer_of("i1")
    with pytest.raises(NotFound):
        desk.when(AcceptOffer(offer_id=offer.offer_id, agent_id="a2"))
    with pytest.raises(NotFound):
        desk.when(RejectOffer(offer_id="nope", agent_id="a1"))
    desk.accept("i1")
    with pytest.raises(FailedPrecondition) as refused:
        desk.when(RejectOffer(offer_id=offer.offer_id, agent_id="a1"))
    assert refused.value.current_state == "accepted"


def test_refusals_append_nothing(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    before = desk.engine.version
    with pytest.raises(NotFound):
        desk.when(AcceptOffer(offer_id="o-x", agent_id="a1"))
    assert desk.engine.version == before


def test_queueing_again_in_the_same_queue_changes_nothing(desk: Any) -> None:
    desk.queue("q1")
    desk.contact("i1")
    assert desk.contact("i1", after=3) == []
    assert len(of(desk.history, ContactQueued)) == 1


def test_offers_expire_at_each_own_time_whatever_the_tick_granularity(desk: Any) -> None:
    desk.queue("q1", offer_timeout_s=15)
    for agent in ("a1", "a2"):
        desk.agent(agent)
    desk.contact("i1")
    desk.contact("i2", after=4)
    events = desk.tick(60)
    assert [e.occurred_at for e in of(events, OfferTimedOut)] == [desk.at(15), desk.at(19)]
    assert desk.engine.next_timer_at() is None
    assert desk.clock - desk.T0 == timedelta(seconds=64)
