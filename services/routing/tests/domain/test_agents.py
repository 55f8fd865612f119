"""Agents: presence and reported state, the capacity budget each channel spends, the
cross-channel rules, and wrap-up after each contact (ended by time-out or by the agent)."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from contactcenter.contracts.errors import FailedPrecondition, NotFound, ValidationFailed
from contactcenter.routing.domain import (
    AgentState,
    Channel,
    CompleteContact,
    EndContact,
    EndWrapUp,
    Presence,
    RoutingEvent,
    SetAgentState,
    WrapUpEndReason,
)
from contactcenter.routing.domain.events import (
    AgentStateChanged,
    ContactEnded,
    OfferIssued,
    WrapUpEnded,
)

E = TypeVar("E", bound=RoutingEvent)


def of(events: list[RoutingEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def channel_queues(desk: Any, wrap_up_s: int = 0) -> None:
    desk.queue("voice", channels=(Channel.VOICE,), wrap_up_s=wrap_up_s)
    desk.queue("chat", channels=(Channel.CHAT,), wrap_up_s=wrap_up_s)
    desk.queue("email", channels=(Channel.EMAIL,), wrap_up_s=wrap_up_s)


ALL = ("voice", "chat", "email")


def test_presence_changes_are_reported_with_their_reason(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1", available=False)
    (available,) = desk.available("a1")
    assert (available.previous_state, available.state) == (AgentState.OFFLINE, AgentState.AVAILABLE)
    (away,) = desk.away("a1", reason="lunch")
    assert (away.state, away.reason_code) == (AgentState.AWAY, "lunch")
    (other_reason,) = desk.away("a1", reason="training")
    assert other_reason.previous_state is AgentState.AWAY and other_reason.reason_code == "training"
    assert desk.away("a1", reason="training") == []  # nothing changed
    (offline,) = desk.when(SetAgentState(agent_id="a1", presence=Presence.OFFLINE))
    assert offline.state is AgentState.OFFLINE


def test_not_responding_cannot_be_set_by_a_caller(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1")
    with pytest.raises(ValidationFailed) as refused:
        desk.when(SetAgentState(agent_id="a1", presence=Presence.NOT_RESPONDING))
    assert [v.field for v in refused.value.field_violations] == ["presence"]
    with pytest.raises(NotFound):
        desk.available("nobody")


def test_an_away_or_offline_agent_gets_nothing(desk: Any) -> None:
    desk.queue("q1")
    desk.agent("a1", available=False)
    desk.agent("a2")
    desk.away("a2")
    assert of(desk.contact("i1"), OfferIssued) == []


def test_a_chat_spends_a_third_and_an_email_a_fifth(desk: Any) -> None:
    channel_queues(desk)
    desk.agent("chatter", queues=ALL, channels=(Channel.CHAT,))
    for i in range(4):
        desk.contact(f"c{i}", "chat", Channel.CHAT)
    assert sorted(desk.offered_to(desk.history)) == ["c0", "c1", "c2"]  # three chats fill it
    assert desk.engine.agent("chatter").load == 60

    desk.agent("mailer", queues=ALL, channels=(Channel.EMAIL,))
    for i in range(6):
        desk.contact(f"e{i}", "email", Channel.EMAIL)
    mails = [i for i, a in desk.offered_to(desk.history).items() if a == "mailer"]
    assert len(mails) == 5


def test_custom_budget_and_costs(desk: Any) -> None:
    channel_queues(desk)
    desk.agent(
        "a1",
        queues=ALL,
        channels=(Channel.CHAT,),
        capacity=100,
        channel_costs={Channel.CHAT: 25},
    )
    for i in range(5):
        desk.contact(f"c{i}", "chat", Channel.CHAT)
    assert len(desk.offered_to(desk.history)) == 4


def test_no_voice_while_chatting(desk: Any) -> None:
    channel_queues(desk)
    desk.agent("a1", queues=ALL, channels=(Channel.VOICE, Channel.CHAT))
    desk.contact("c1", "chat", Channel.CHAT)
    assert of(desk.contact("v1", "voice"), OfferIssued) == []
    assert desk.engine.agent("a1").ready_channels == frozenset({Channel.CHAT})


def test_voice_beside_interruptible_chats(desk: Any) -> None:
    channel_queues(desk)
    desk.agent(
        "a1",
        queues=ALL,
        channels=(Channel.VOICE, Channel.CHAT),
        interruptible_channels=(Channel.CHAT, Channel.EMAIL),
    )
    desk.contact("c1", "chat", Channel.CHAT)
    desk.contact("c2", "chat", Channel.CHAT)
    assert desk.offered_to(desk.contact("v1", "voice")) == {"v1": "a1"}
    view = desk.engine.agent("a1")
    # The chats are paused while the call lasts: only the call counts against the budget.
    assert view.load == 60 and view.capacity == 60
    # ... and nothing else is offered meanwhile.
    assert of(desk.contact("c3", "chat", Channel.CHAT), OfferIssued) == []


def test_email_is_interruptible_by_default(desk: Any) -> None:
    channel_queues(desk)
    desk.agent("a1", queues=ALL, channels=(Channel.VOICE, Channel.EMAIL))
    desk.contact("e1", "email", Channel.EMAIL)
    assert desk.offered_to(desk.contact("v1", "voice")) == {"v1": "a1"}


def test_nothing_beside_a_call(desk: Any) -> None:
    channel_queues(desk)
    desk.agent("a1", queues=ALL, channels=(Channel.VOICE, Channel.EMAIL, Channel.CHAT))
    desk.contact("v1", "voice")
    assert of(desk.contact("e1", "email", Channel.EMAIL), OfferIssued) == []
    assert of(desk.contact("c1", "chat", Channel.CHAT), OfferIssued) == []


def test_only_the_channels_an_agent_handles(desk: Any) -> None:
    channel_queues(desk)
    desk.agent("a1", queues=ALL, channels=(Channel.EMAIL,))
    assert of(desk.contact("v1", "voice"), OfferIssued) == []


def test_wrap_up_after_the_contact_ends_by_timeout(desk: Any) -> None:
    desk.queue("q1", wrap_up_s=30)
    desk.agent("a1")
    desk.contact("i1")
    desk.accept("i1", after=2)
    events = desk.when(EndContact(interaction_id="i1"), after=60)
    ended = of(events, ContactEnded)[0]
    assert ended.wrap_up_until == desk.at(92)
    assert of(events, AgentStateChanged)[0].state is AgentState.WRAP_UP
    # Still in wrap-up: a new contact waits.
    assert of(desk.contact("i2", after=10), OfferIssued) == []
    events = desk.tick(30)
    assert [type(e).__name__ for e in events] == [
        "WrapUpEnded",
        "AgentStateChanged",
        "OfferIssued",
        "AgentStateChanged",
    ]
    wrapped = of(events, WrapUpEnded)[0]
    assert wrapped.reason is WrapUpEndReason.TIMEOUT and wrapped.occurred_at == desk.at(92)
    assert desk.offer_of("i2").occurred_at == desk.at(92)


def test_the_agent_ends_wrap_up(desk: Any) -> None:
    desk.queue("q1", wrap_up_s=300)
    desk.agent("a1")
    desk.contact("i1")
    desk.accept("i1")
    desk.when(EndContact(interaction_id="i1"), after=30)
    desk.contact("i2")
    events = desk.when(EndWrapUp(agent_id="a1"), after=5)
    assert of(events, WrapUpEnded)[0].reason is WrapUpEndReason.AGENT
    assert desk.offered_to(events) == {"i2": "a1"}
    with pytest.raises(FailedPrecondition) as refused:
        desk.when(EndWrapUp(agent_id="a1"))
    assert refused.value.current_state == "busy"
    # The wrap-up timer of i1 is gone with it.
    assert desk.engine.next_timer_at() == desk.offer_of("i2").expires_at


def test_completion_ends_wrap_up(desk: Any) -> None:
    desk.queue("q1", wrap_up_s=300)
    desk.agent("a1")
    desk.contact("i1")
    desk.accept("i1")
    desk.when(EndContact(interaction_id="i1"), after=30)
    events = desk.when(CompleteContact(interaction_id="i1"), after=5)
    assert of(events, WrapUpEnded)[0].reason is WrapUpEndReason.COMPLETED
    assert desk.engine.agent("a1").state is AgentState.AVAILABLE
    assert desk.when(CompleteContact(interaction_id="i1")) == []  # a redelivery


def test_completion_without_an_end_frees_the_agent_without_wrap_up(desk: Any) -> None:
    desk.queue("q1", wrap_up_s=300)
    desk.agent("a1")
    desk.contact("i1")
    desk.accept("i1")
    events = desk.when(CompleteContact(interaction_id="i1"), after=30)
    assert of(events, ContactEnded)[0].wrap_up_until is None
    assert desk.engine.agent("a1").work == ()


def test_each_chat_wraps_up_on_its_own(desk: Any) -> None:
    desk.queue("chat", channels=(Channel.CHAT,), wrap_up_s=20)
    desk.agent("a1", queues=("chat",), channels=(Channel.CHAT,))
    for i in range(3):
        desk.contact(f"c{i}", "chat", Channel.CHAT)
        desk.accept(f"c{i}")
    desk.when(EndContact(interaction_id="c0"), after=10)
    view = desk.engine.agent("a1")
    assert view.state is AgentState.BUSY  # two chats still going
    assert sorted(w.status.value for w in view.work) == ["assigned", "assigned", "wrap_up"]
    assert view.load == 60  # wrap-up holds its share
    events = desk.when(EndWrapUp(agent_id="a1", interaction_id="c0"), after=1)
    assert of(events, WrapUpEnded) and desk.engine.agent("a1").load == 40
