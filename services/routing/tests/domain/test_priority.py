"""Which contact an agent takes: priority with aging inside a queue; across the queues of a
shared agent, the one most at risk of missing its service level, age breaking ties; and the
bound that keeps any queue from starving another."""

from __future__ import annotations

from typing import Any, TypeVar

from contactcenter.routing.domain import CompleteContact, RoutingEvent
from contactcenter.routing.domain.events import ContactQueued, OfferIssued

E = TypeVar("E", bound=RoutingEvent)


def of(events: list[RoutingEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def next_offer(desk: Any, agent_id: str = "a1", after: float = 0) -> str:
    """The agent comes back; the interaction it is offered."""
    (offer,) = of(desk.available(agent_id, after=after), OfferIssued)
    return offer.interaction_id


def test_higher_priority_first(desk: Any) -> None:
    desk.queue("q1", aging_s=10)
    desk.agent("a1", available=False)
    desk.contact("low", priority=0)
    desk.contact("high", priority=20, after=1)
    assert next_offer(desk) == "high"


def test_aging_lets_a_long_wait_beat_a_higher_priority(desk: Any) -> None:
    # aging_s=10: 10 s of waiting is worth one point of priority.
    desk.queue("q1", aging_s=10)
    desk.agent("a1", available=False)
    desk.contact("old", priority=0)
    desk.contact("vip", priority=5, after=51)  # 51 s waited > 5 points * 10 s
    assert next_offer(desk, after=1) == "old"


def test_within_a_priority_the_oldest_first(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1", available=False)
    for i in range(3):
        desk.contact(f"i{i}", after=1)
    assert next_offer(desk) == "i0"


def test_an_overflowed_or_requeued_contact_keeps_its_age(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1", available=False)
    desk.contact("fresh", after=0)
    desk.contact("old", first_enqueued_at=desk.at(-120), after=1)
    assert next_offer(desk) == "old"
    queued = of(desk.history, ContactQueued)[-1]
    assert queued.first_enqueued_at == desk.at(-120)


def test_a_shared_agent_takes_the_queue_most_at_risk(desk: Any) -> None:
    desk.queue("voice", sl_threshold_s=20)
    desk.queue("email", sl_threshold_s=3600)
    desk.agent("a1", queues=("voice", "email"), available=False)
    desk.contact("mail", "email")  # waited longest, but has an hour
    desk.contact("call", "voice", after=600)
    assert next_offer(desk, after=1) == "call"


def test_age_breaks_a_tie_of_risk(desk: Any) -> None:
    desk.queue("q1", sl_threshold_s=30)
    desk.queue("q2", sl_threshold_s=20)
    desk.agent("a1", queues=("q1", "q2"), available=False)
    desk.contact("in-q2", "q2")  # deadline t0 + 20 s
    desk.contact("in-q1", "q1", first_enqueued_at=desk.at(-10))  # deadline t0 + 20 s, older
    assert next_offer(desk, after=1) == "in-q1"


def test_queue_priority_moves_a_queue_ahead(desk: Any) -> None:
    desk.queue("gold", sl_threshold_s=60, priority=10, aging_s=6)  # 60 s ahead
    desk.queue("std", sl_threshold_s=20)
    desk.agent("a1", queues=("gold", "std"), available=False)
    desk.contact("std-1", "std")
    desk.contact("gold-1", "gold", after=1)  # deadline t0+1+60-60 < t0+20
    assert next_offer(desk, after=1) == "gold-1"


def test_no_queue_starves_another(desk: Any) -> None:
    """The bound of `engine` (module doc): a contact c is overtaken by a contact d of another
    queue only if d arrived less than Delta after c, where Delta is the spread of
    `T - (P + p) * A` over the agent's queues. Here one agent serves a 20 s queue flooded
    beyond its capacity and a 60 s queue with one contact: Delta = 40 s."""
    desk.queue("fast", sl_threshold_s=20)
    desk.queue("slow", sl_threshold_s=60)
    delta = 60 - 20
    desk.agent("a1", queues=("fast", "slow"), available=False)
    arrivals: dict[str, float] = {}
    t = 0.0
    # Three fast contacts every 4 s, 3 s of work each: the fast queue only grows.
    for n in range(30):
        desk.contact(f"f{n}", "fast", after=4 if n else 0)
        arrivals[f"f{n}"] = t
        t += 4 if n < 29 else 0
    desk.contact("s", "slow", after=0)
    arrivals["s"] = t
    served: list[str] = []
    desk.available("a1")
    n = 30
    while "s" not in served:
        offer = [e for e in desk.history if isinstance(e, OfferIssued)][-1]
        served.append(offer.interaction_id)
        desk.accept(offer.interaction_id)
        # The flood goes on while the agent works.
        desk.contact(f"f{n}", "fast", after=1.5)
        arrivals[f"f{n}"] = t = t + 1.5
        n += 1
        desk.contact(f"f{n}", "fast", after=1.5)
        arrivals[f"f{n}"] = t = t + 1.5
        n += 1
        desk.when(CompleteContact(interaction_id=offer.interaction_id))
        assert len(served) < 200, "the slow contact starved"
    overtaking = served[: served.index("s")]
    assert overtaking, "the flood did get ahead of the slow contact for a while"
    assert all(arrivals[f] < arrivals["s"] + delta for f in overtaking)
    # ... and none of those that arrived after the bound did, though they kept coming.
    later = [f for f, at in arrivals.items() if f != "s" and at >= arrivals["s"] + delta]
    assert later and not set(later) & set(overtaking)
