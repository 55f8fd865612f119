"""Contacts moving: maximum wait (overflow to another queue, or exit), requeue and blind
transfer, direct assignment (consulted transfer, an agent picking a contact), cancellation."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from contactcenter.contracts.errors import FailedPrecondition, NotFound
from contactcenter.routing.domain import (
    AssignContact,
    CancelContact,
    Channel,
    EndContact,
    MaxWaitAction,
    QueueReason,
    RejectOffer,
    RemovalReason,
    RoutingEvent,
)
from contactcenter.routing.domain.events import (
    ContactAssigned,
    ContactEnded,
    ContactOverflowed,
    ContactQueued,
    ContactRemoved,
    MaxWaitReached,
    OfferCancelled,
    OfferIssued,
)

E = TypeVar("E", bound=RoutingEvent)


def of(events: list[RoutingEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def kinds(events: list[RoutingEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_max_wait_overflows_to_the_target_queue(desk: Any) -> None:
    desk.queue("q1", max_wait_s=60, max_wait_action=MaxWaitAction.OVERFLOW, overflow_queue_id="q2")
    desk.queue("q2")
    desk.agent("backup", queues=("q2",))
    desk.contact("i1", priority=7, required_skills={"billing": 2})
    desk.agent("backup-skilled", queues=("q2",), skills={"billing": 3}, available=False)
    events = desk.tick(61)
    assert kinds(events)[:2] == ["MaxWaitReached", "ContactOverflowed"]
    reached = of(events, MaxWaitReached)[0]
    assert (reached.waited_ms, reached.action, reached.overflow_queue_id) == (
        60_000,
        MaxWaitAction.OVERFLOW,
        "q2",
    )
    moved = of(events, ContactOverflowed)[0]
    assert (moved.from_queue_id, moved.to_queue_id, moved.priority, moved.hop) == ("q1", "q2", 7, 1)
    assert [(r.skill, r.min_proficiency) for r in moved.required_skills] == [("billing", 2)]
    view = desk.engine.contact("i1")
    assert view.queue_id == "q2" and view.first_enqueued_at == desk.at(0)
    assert view.entered_queue_at == desk.at(60)
    # The contact keeps its own requirements: only the skilled backup agent takes it.
    events = desk.available("backup-skilled")
    assert desk.offered_to(events) == {"i1": "backup-skilled"}
    snapshot = desk.engine.queue_snapshot("q1")
    assert (snapshot.overflowed_out, desk.engine.queue_snapshot("q2").overflowed_in) == (1, 1)


def test_routings_own_overflow_coming_back_from_interactions_changes_nothing(desk: Any) -> None:
    desk.queue("q1", max_wait_s=10, max_wait_action=MaxWaitAction.OVERFLOW, overflow_queue_id="q2")
    desk.queue("q2")
    desk.contact("i1")
    desk.tick(10)
    assert desk.contact("i1", "q2", reason=QueueReason.OVERFLOW, after=1) == []


def test_max_wait_exit_removes_the_contact(desk: Any) -> None:
    desk.queue("q1", max_wait_s=30)
    desk.contact("i1")
    events = desk.tick(45)
    assert kinds(events) == ["MaxWaitReached", "ContactRemoved"]
    removed = of(events, ContactRemoved)[0]
    assert removed.reason is RemovalReason.MAX_WAIT_EXIT and removed.waited_ms == 30_000
    assert desk.engine.contact("i1") is None
    assert desk.engine.queue_snapshot("q1").exited == 1


def test_max_wait_during_an_offer_waits_for_the_offers_outcome(desk: Any) -> None:
    desk.queue("q1", max_wait_s=30, offer_timeout_s=20)
    desk.agent("a1", available=False)
    desk.contact("i1")
    desk.available("a1", after=25)  # offered at 25 s, the maximum wait falls at 30 s
    assert of(desk.tick(10), MaxWaitReached) == []
    events = desk.when(RejectOffer(offer_id=desk.offer_of("i1").offer_id, agent_id="a1"), after=1)
    assert kinds(events)[:3] == ["OfferRejected", "MaxWaitReached", "ContactRemoved"]


def test_an_overflow_loop_ends(desk: Any) -> None:
    desk.queue("q1", max_wait_s=10, max_wait_action=MaxWaitAction.OVERFLOW, overflow_queue_id="q2")
    desk.queue("q2", max_wait_s=10, max_wait_action=MaxWaitAction.OVERFLOW, overflow_queue_id="q1")
    desk.contact("i1")
    events = desk.tick(1000)
    hops = [e.hop for e in of(events, ContactOverflowed)]
    assert hops == list(range(1, 9))
    assert of(events, ContactRemoved)[0].reason is RemovalReason.MAX_WAIT_EXIT


def test_requeue_to_another_queue_cancels_the_offer(desk: Any) -> None:
    desk.queue("q1")
    desk.queue("q2")
    desk.agent("a1")
    desk.contact("i1")
    events = desk.contact("i1", "q2", reason=QueueReason.REQUEUE, after=3)
    assert kinds(events)[:2] == ["OfferCancelled", "ContactQueued"]
    assert desk.engine.contact("i1").queue_id == "q2"
    assert desk.engine.contact("i1").first_enqueued_at == desk.at(0)


def test_a_blind_transfer_ends_the_agents_leg_with_wrap_up(desk: Any) -> None:
    desk.queue("q1", wrap_up_s=15)
    desk.queue("q2")
    desk.agent("a1")
    desk.contact("i1")
    desk.accept("i1")
    desk.agent("a2", queues=("q2",))
    events = desk.contact("i1", "q2", reason=QueueReason.TRANSFER, after=30)
    assert kinds(events)[:3] == ["ContactEnded", "ContactQueued", "AgentStateChanged"]
    assert of(events, ContactEnded)[0].wrap_up_until == desk.at(45)
    assert desk.offered_to(events) == {"i1": "a2"}


def test_direct_assignment_takes_the_contact_out_of_the_queue(desk: Any) -> None:
    desk.queue("email", channels=(Channel.EMAIL,))
    desk.agent("picker", queues=(), channels=(Channel.EMAIL,))
    desk.contact("e1", "email", Channel.EMAIL)
    events = desk.when(AssignContact(interaction_id="e1", agent_id="picker"), after=40)
    assigned = of(events, ContactAssigned)[0]
    assert (assigned.offer_id, assigned.wait_ms, assigned.cost) == (None, 40_000, 12)
    assert desk.engine.contact("e1") is None
    assert desk.engine.agent("picker").load == 12


def test_direct_assignment_of_a_contact_offered_to_someone_else(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.agent("a2", queues=())
    desk.contact("i1")
    events = desk.when(AssignContact(interaction_id="i1", agent_id="a2"))
    assert kinds(events)[:2] == ["OfferCancelled", "ContactAssigned"]
    assert desk.engine.agent("a1").load == 0


def test_a_consulted_transfer_moves_the_work(desk: Any) -> None:
    desk.queue("q1", wrap_up_s=10)
    desk.agent("a1")
    desk.agent("a2", queues=())
    desk.contact("i1")
    desk.accept("i1")
    events = desk.when(AssignContact(interaction_id="i1", agent_id="a2"), after=60)
    assert kinds(events)[:1] == ["ContactEnded"] and of(events, ContactAssigned)
    assert [w.status.value for w in desk.engine.agent("a1").work] == ["wrap_up"]
    assert [w.status.value for w in desk.engine.agent("a2").work] == ["assigned"]
    assert desk.when(AssignContact(interaction_id="i1", agent_id="a2")) == []


def test_direct_assignment_needs_room_and_a_logged_in_agent(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("busy")
    desk.agent("gone", queues=(), available=False)
    desk.contact("i1")
    desk.contact("i2")
    with pytest.raises(FailedPrecondition, match="no capacity"):
        desk.when(AssignContact(interaction_id="i2", agent_id="busy"))
    with pytest.raises(FailedPrecondition, match="offline"):
        desk.when(AssignContact(interaction_id="i2", agent_id="gone"))
    with pytest.raises(NotFound):
        desk.when(AssignContact(interaction_id="nope", agent_id="busy"))


def test_cancel_and_end_of_unknown_contacts_are_redeliveries(desk: Any) -> None:
    desk.queue("q1")
    assert desk.when(CancelContact(interaction_id="i9")) == []
    assert desk.when(EndContact(interaction_id="i9")) == []


def test_abandoned_after_acceptance_frees_the_agent_without_wrap_up(desk: Any) -> None:
    desk.queue("q1", wrap_up_s=60)
    desk.agent("a1")
    desk.contact("i1")
    desk.accept("i1")
    events = desk.when(CancelContact(interaction_id="i1", reason_code="hung_up"))
    removed = of(events, ContactRemoved)[0]
    assert removed.agent_id == "a1" and removed.reason is RemovalReason.CANCELLED
    assert desk.engine.agent("a1").work == ()


def test_a_contact_ending_in_the_queue_leaves_it(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.contact("i1")
    events = desk.when(EndContact(interaction_id="i1"))
    assert of(events, OfferCancelled)[0].reason.value == "contact_ended"
    assert of(events, ContactRemoved)[0].reason is RemovalReason.ENDED
    assert of(desk.history, ContactQueued) and of(desk.history, OfferIssued)
