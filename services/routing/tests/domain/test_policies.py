"""Bullseye policies: ordered steps that widen (or narrow) the pool as a contact waits, and
the preferred (or last) agent who gets the first chance before the queue's pool."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from contactcenter.contracts.errors import NotFound, ValidationFailed
from contactcenter.routing.domain import (
    PreferredReleaseReason,
    Presence,
    RejectOffer,
    RoutingEvent,
    SetAgentState,
    StepSpec,
    Trigger,
)
from contactcenter.routing.domain.events import (
    ContactQueued,
    OfferIssued,
    PolicyConfigured,
    PolicyStepReached,
    PreferredAgentReleased,
)

E = TypeVar("E", bound=RoutingEvent)


def of(events: list[RoutingEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


WIDENING = (
    StepSpec(after_s=0, name="experts"),
    StepSpec(after_s=30, name="relaxed", min_proficiency_delta=-2),
    StepSpec(after_s=60, name="backup group", agent_groups=("backup",)),
    StepSpec(after_s=120, name="sister queue", agent_queues=("q2",)),
)


def test_steps_relax_the_proficiency_then_add_a_group_then_a_queue(desk: Any) -> None:
    desk.policy("p1", *WIDENING)
    desk.queue("q1", required_skills={"billing": 4}, policy_id="p1")
    desk.queue("q2")
    desk.agent("junior", skills={"billing": 2})
    desk.agent("backup", queues=(), groups=("backup",), skills={"billing": 2})
    desk.agent("sister", queues=("q2",), skills={"billing": 2})
    for name in ("junior", "backup", "sister"):
        desk.away(name)

    desk.contact("i1")
    desk.available("junior", after=1)
    assert of(desk.history, OfferIssued) == []  # 2 < 4 at the first step

    events = desk.tick(30)
    reached = of(events, PolicyStepReached)[0]
    assert (reached.step, reached.step_name, reached.waited_ms) == (1, "relaxed", 30_000)
    assert reached.occurred_at == desk.at(30)
    offer = of(events, OfferIssued)[0]
    assert offer.agent_id == "junior"
    assert (offer.decision.trigger, offer.decision.step, offer.decision.step_name) == (
        Trigger.STEP_REACHED,
        1,
        "relaxed",
    )
    assert offer.decision.policy_id == "p1" and offer.decision.policy_version == 1


def test_a_group_joins_the_pool_at_its_step(desk: Any) -> None:
    desk.policy("p1", *WIDENING)
    desk.queue("q1", policy_id="p1")
    desk.queue("q2")
    desk.agent("backup", queues=(), groups=("backup",))
    desk.contact("i1")
    assert of(desk.tick(59), OfferIssued) == []
    events = desk.tick(1)
    assert [e.step for e in of(events, PolicyStepReached)] == [2]
    assert of(events, OfferIssued)[0].agent_id == "backup"


def test_another_queues_agents_join_the_pool_at_their_step(desk: Any) -> None:
    desk.policy("p1", *WIDENING)
    desk.queue("q1", policy_id="p1")
    desk.queue("q2")
    desk.agent("sister", queues=("q2",))
    desk.contact("i1")
    events = desk.tick(150)
    assert [e.step for e in of(events, PolicyStepReached)] == [1, 2, 3]
    offer = of(events, OfferIssued)[0]
    assert offer.agent_id == "sister" and offer.occurred_at == desk.at(120)
    assert offer.decision.step == 3 and offer.wait_ms == 120_000


def test_an_agent_freed_later_takes_a_contact_by_its_current_step(desk: Any) -> None:
    desk.policy("p1", *WIDENING)
    desk.queue("q1", required_skills={"billing": 4}, policy_id="p1")
    desk.agent("junior", skills={"billing": 2}, available=False)
    desk.contact("i1")
    desk.tick(45)
    events = desk.available("junior")
    offer = of(events, OfferIssued)[0]
    assert offer.decision.trigger is Trigger.AGENT_AVAILABLE and offer.decision.step == 1


def test_narrowing_to_experts(desk: Any) -> None:
    desk.policy(
        "escalate",
        StepSpec(after_s=0, name="tier 1", include_queue_agents=False, agent_groups=("tier1",)),
        StepSpec(after_s=60, name="experts", min_proficiency_delta=2),
    )
    desk.queue("q1", required_skills={"tech": 2}, policy_id="escalate")
    desk.agent("t1", queues=(), groups=("tier1",), skills={"tech": 2}, available=False)
    desk.agent("member", skills={"tech": 3})
    desk.agent("guru", skills={"tech": 5}, available=False)
    desk.contact("i1")
    assert of(desk.history, OfferIssued) == []  # queue members are not in the first ring
    desk.tick(60)
    # At the second step the pool is the queue's members again, but at 4 or better.
    assert of(desk.history, OfferIssued) == []
    events = desk.available("guru", after=1)
    assert of(events, OfferIssued)[0].agent_id == "guru"


def test_a_policy_change_is_a_new_version_and_applies_to_waiting_contacts(desk: Any) -> None:
    desk.policy("p1", StepSpec(after_s=0), StepSpec(after_s=300, min_proficiency_delta=-3))
    desk.queue("q1", required_skills={"billing": 4}, policy_id="p1")
    desk.agent("junior", skills={"billing": 1})
    desk.contact("i1")
    events = desk.policy("p1", StepSpec(after_s=0), StepSpec(after_s=10, min_proficiency_delta=-3))
    assert of(events, PolicyConfigured)[0].version == 2
    # The contact waited 0 s so far: the new second step comes 10 s after it entered.
    events = desk.tick(10)
    offer = of(events, OfferIssued)[0]
    assert (offer.decision.policy_version, offer.decision.step) == (2, 1)
    assert (
        desk.policy("p1", StepSpec(after_s=0), StepSpec(after_s=10, min_proficiency_delta=-3)) == []
    )


def test_policies_are_validated(desk: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        desk.policy(
            "p1",
            StepSpec(after_s=5),
            StepSpec(after_s=5, min_proficiency_delta=9),
            StepSpec(after_s=10, include_queue_agents=False),
        )
    assert sorted(v.field for v in refused.value.field_violations) == [
        "steps[0].after_s",
        "steps[1].after_s",
        "steps[1].min_proficiency_delta",
        "steps[2]",
    ]
    with pytest.raises(NotFound):
        desk.queue("q1", policy_id="missing")


def test_the_preferred_agent_gets_the_first_chance(desk: Any) -> None:
    desk.queue("q1", preferred_agent_timeout_s=30)
    desk.agent("idle-longest")
    desk.agent("last-agent", after=5)
    desk.away("last-agent")
    events = desk.contact("i1", preferred_agent_id="last-agent", after=1)
    queued = of(events, ContactQueued)[0]
    assert queued.preferred_until == desk.at(36)
    assert of(events, OfferIssued) == []  # idle-longest is free, but waits its turn
    events = desk.available("last-agent", after=10)
    offer = of(events, OfferIssued)[0]
    assert offer.agent_id == "last-agent" and offer.decision.preferred
    assert (
        offer.decision.reason
        == "most at risk of missing its service level among 1 queue with a matching contact"
    )


def test_the_preferred_agent_is_offered_at_once_when_available(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("other")
    desk.agent("last-agent", after=1)
    offer = of(desk.contact("i1", preferred_agent_id="last-agent"), OfferIssued)[0]
    assert offer.agent_id == "last-agent"
    assert offer.decision.preferred and offer.decision.reason == "the customer's preferred agent"


def test_after_the_timeout_anyone_may_take_it(desk: Any) -> None:
    desk.queue("q1", preferred_agent_timeout_s=30)
    desk.agent("other")
    desk.agent("last-agent")
    desk.away("last-agent")
    desk.contact("i1", preferred_agent_id="last-agent")
    events = desk.tick(30)
    released = of(events, PreferredAgentReleased)[0]
    assert released.reason is PreferredReleaseReason.TIMEOUT
    offer = of(events, OfferIssued)[0]
    assert offer.agent_id == "other" and not offer.decision.preferred
    assert offer.decision.trigger is Trigger.PREFERRED_RELEASED


def test_no_preferred_phase_for_an_agent_logged_out(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("other")
    desk.agent("last-agent", available=False)
    events = desk.contact("i1", preferred_agent_id="last-agent")
    assert of(events, ContactQueued)[0].preferred_until is None
    assert of(events, OfferIssued)[0].agent_id == "other"


def test_the_preferred_agent_logging_out_or_declining_releases_the_contact(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("last-agent")
    desk.away("last-agent")
    desk.contact("i1", preferred_agent_id="last-agent")
    desk.contact("i2", preferred_agent_id="last-agent")
    events = desk.when(SetAgentState(agent_id="last-agent", presence=Presence.OFFLINE))
    assert [e.interaction_id for e in of(events, PreferredAgentReleased)] == ["i1", "i2"]


def test_the_preferred_agent_declining_releases_the_contact(desk: Any) -> None:
    desk.queue("q1")
    # Preferred agents need not serve the queue: the customer asked for them.
    desk.agent("last-agent", queues=())
    desk.contact("i3", preferred_agent_id="last-agent")
    offer = desk.offer_of("i3")
    events = desk.when(RejectOffer(offer_id=offer.offer_id, agent_id="last-agent"))
    released = of(events, PreferredAgentReleased)
    assert [(r.interaction_id, r.reason) for r in released] == [
        ("i3", PreferredReleaseReason.DECLINED)
    ]
