"""Who gets the contact when several agents could: requirements (skills at a minimum
proficiency, language, channel), the queue's selection strategy, and the explanation that
every offer carries."""

from __future__ import annotations

from typing import Any, TypeVar

from contactcenter.routing.domain import (
    AcceptOffer,
    CandidateKind,
    Channel,
    CompleteContact,
    RoutingEvent,
    SelectionStrategy,
    Trigger,
)
from contactcenter.routing.domain.events import OfferIssued

E = TypeVar("E", bound=RoutingEvent)
S = SelectionStrategy


def of(events: list[RoutingEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def offered(desk: Any, events: list[RoutingEvent]) -> str:
    (offer,) = of(events, OfferIssued)
    return offer.agent_id


def serve(desk: Any, interaction_id: str, after: float = 1) -> None:
    """Accept the contact's offer and complete it (no wrap-up)."""
    desk.accept(interaction_id)
    desk.when(CompleteContact(interaction_id=interaction_id), after=after)


def test_skills_at_the_minimum_proficiency(desk: Any) -> None:
    desk.queue("q1", required_skills={"billing": 3})
    desk.agent("novice", skills={"billing": 2})
    desk.agent("none", skills={"sales": 5})
    assert of(desk.contact("i1"), OfferIssued) == []
    assert offered(desk, desk.agent("expert", skills={"billing": 3})) == "expert"


def test_the_contacts_own_requirements_add_to_the_queues(desk: Any) -> None:
    desk.queue("q1", required_skills={"billing": 2})
    desk.agent("a1", skills={"billing": 5}, after=1)
    desk.agent("a2", skills={"billing": 2, "spanish": 4})
    events = desk.contact("i1", required_skills={"spanish": 3, "billing": 1})
    assert offered(desk, events) == "a2"
    assert desk.offer_of("i1").decision.candidates[0].id == "a2"


def test_language_matches_on_the_primary_subtag(desk: Any) -> None:
    desk.queue("q1", language="fr")
    desk.agent("en", languages=("en",))
    desk.agent("fr", languages=("fr-CA",))
    assert offered(desk, desk.contact("i1")) == "fr"
    desk.agent("gb", languages=("en-GB",))
    desk.away("en")
    # The contact's own language overrides the queue's.
    assert offered(desk, desk.contact("i2", language="en-US")) == "gb"


def test_longest_idle(desk: Any) -> None:
    desk.queue("q1", strategy=S.LONGEST_IDLE)
    desk.agent("a1")
    desk.agent("a2", after=5)
    desk.agent("a3", after=5)
    offer = of(desk.contact("i1", after=10), OfferIssued)[0]
    assert offer.agent_id == "a1"
    scores = [(c.id, c.score, c.detail) for c in offer.decision.candidates]
    assert scores == [
        ("a1", 20.0, "idle 20.0 s"),
        ("a2", 15.0, "idle 15.0 s"),
        ("a3", 10.0, "idle 10.0 s"),
    ]
    # After serving, a1 is the most recently idle.
    serve(desk, "i1")
    assert offered(desk, desk.contact("i2", after=1)) == "a2"


def test_most_skilled(desk: Any) -> None:
    desk.queue("q1", strategy=S.MOST_SKILLED, required_skills={"billing": 1, "tax": 1})
    desk.agent("good", skills={"billing": 3, "tax": 3})
    desk.agent("best", skills={"billing": 5, "tax": 4}, after=1)
    desk.agent("ok", skills={"billing": 5, "tax": 1}, after=1)
    offer = of(desk.contact("i1"), OfferIssued)[0]
    assert [(c.id, c.score) for c in offer.decision.candidates] == [
        ("best", 9.0),
        ("good", 6.0),
        ("ok", 6.0),
    ]
    assert offer.decision.candidates[0].detail == "billing=5, tax=4"


def test_least_occupied(desk: Any) -> None:
    desk.queue("chat", channels=(Channel.CHAT,), strategy=S.LEAST_OCCUPIED)
    desk.agent("a1", queues=("chat",), channels=(Channel.CHAT,))
    desk.agent("a2", queues=("chat",), channels=(Channel.CHAT,), after=1)
    assignments = [
        offered(desk, desk.contact(f"c{i}", "chat", Channel.CHAT, after=1)) for i in range(4)
    ]
    # Each takes one, then the less loaded one again: never one agent with two while the
    # other has none.
    assert sorted(assignments[:2]) == ["a1", "a2"] and sorted(assignments[2:]) == ["a1", "a2"]
    last = desk.offer_of("c3")
    assert last.decision.candidates[0].detail == "load 20/60"


def test_round_robin_cycles_through_the_agents(desk: Any) -> None:
    desk.queue("q1", strategy=S.ROUND_ROBIN)
    for name in ("a1", "a2", "a3"):
        desk.agent(name)
    order = []
    for i in range(7):
        # Each agent is free again before the next contact: idle time would pick anyone.
        order.append(offered(desk, desk.contact(f"i{i}", after=1)))
        serve(desk, f"i{i}")
    assert order == ["a1", "a2", "a3", "a1", "a2", "a3", "a1"]


def test_fewest_contacts_today_in_the_agents_time_zone(desk: Any) -> None:
    # 09:00 UTC is 18:00 in Tokyo and 04:00 in New York.
    desk.queue("q1", strategy=S.FEWEST_CONTACTS_TODAY)
    desk.agent("tokyo", time_zone="Asia/Tokyo")
    desk.agent("ny", time_zone="America/New_York", after=1)
    for i in range(2):
        desk.contact(f"t{i}", after=1)
        assert desk.offer_of(f"t{i}").agent_id == ["tokyo", "ny"][i]
        serve(desk, f"t{i}")
    desk.contact("t2", after=1)
    serve(desk, "t2")
    assert desk.offer_of("t2").agent_id == "tokyo"  # 1 each: longest idle breaks the tie
    # Tokyo has 2 today, New York 1: New York takes the next one ...
    assert offered(desk, desk.contact("t3", after=1)) == "ny"
    serve(desk, "t3")
    # ... but after midnight in Tokyo (15:00 UTC) Tokyo's count starts again at 0.
    desk.tick(6 * 3600)
    offer = of(desk.contact("t4"), OfferIssued)[0]
    assert offer.agent_id == "tokyo"
    assert [(c.id, c.detail) for c in offer.decision.candidates] == [
        ("tokyo", "0 contacts today"),
        ("ny", "2 contacts today"),
    ]


def test_the_explanation_of_a_contact_side_decision(desk: Any) -> None:
    desk.queue("q1", strategy=S.LONGEST_IDLE, required_skills={"billing": 2})
    for i in range(5):
        desk.agent(f"a{i}", skills={"billing": 3}, after=1)
    desk.agent("unskilled", skills={"billing": 1})
    offer = of(desk.contact("i1", after=1), OfferIssued)[0]
    decision = offer.decision
    assert decision.trigger is Trigger.CONTACT_QUEUED
    assert decision.strategy is S.LONGEST_IDLE
    assert (decision.policy_id, decision.policy_version, decision.step) == (None, 0, 0)
    assert [c.id for c in decision.candidates] == ["a0", "a1", "a2"]  # the top three
    assert [c.rank for c in decision.candidates] == [1, 2, 3]
    assert all(c.kind is CandidateKind.AGENT and c.queue_id == "q1" for c in decision.candidates)
    assert decision.eligible >= 3
    assert decision.reason.startswith("longest idle among")
    # The explain lookup returns the same decision by offer id.
    assert desk.engine.explain(offer.offer_id) == offer
    assert desk.engine.explain("unknown") is None


def test_the_explanation_of_an_agent_side_decision(desk: Any) -> None:
    desk.queue("fast", sl_threshold_s=20)
    desk.queue("slow", sl_threshold_s=300)
    desk.contact("s1", "slow")
    desk.contact("f1", "fast", after=10)
    events = desk.agent("a1", queues=("fast", "slow"), after=5)
    offer = of(events, OfferIssued)[0]
    decision = offer.decision
    assert decision.trigger is Trigger.AGENT_AVAILABLE
    assert offer.interaction_id == "f1"  # 15 s of 20 s beats 15 s of 300 s
    assert [(c.kind, c.id, c.queue_id) for c in decision.candidates] == [
        (CandidateKind.CONTACT, "f1", "fast"),
        (CandidateKind.CONTACT, "s1", "slow"),
    ]
    assert [c.score for c in decision.candidates] == [-15.0, -285.0]  # seconds past deadline
    assert decision.candidates[0].detail == "waited 5.0 s of 20 s"
    assert "most at risk of missing its service level" in decision.reason


def test_explanations_are_kept_for_recent_offers_and_their_outcome(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    desk.contact("i1")
    offer = desk.offer_of("i1")
    desk.when(AcceptOffer(offer_id=offer.offer_id, agent_id="a1"))
    assert desk.engine.offer_status(offer.offer_id) == "accepted"
    assert desk.engine.explain(offer.offer_id) == offer
