"""Given events / when command / then events: the facts each transition records, and the
durations that derive from them exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contactcenter.contracts.errors import (
    AlreadyExists,
    FailedPrecondition,
    IllegalTransition,
    NotFound,
    ValidationFailed,
)
from contactcenter.interactions.domain import (
    Abandon,
    AppendMessage,
    Assign,
    Author,
    AuthorRole,
    Channel,
    CommandContext,
    Complete,
    Conference,
    Connect,
    CreateInteraction,
    Direction,
    End,
    EndedBy,
    Enqueue,
    Fail,
    Hold,
    Interaction,
    InteractionState,
    LeaveConference,
    MessageDirection,
    Offer,
    OfferWithdrawalReason,
    QueueReason,
    QueueTarget,
    Resume,
    SkillRequirement,
    Transfer,
    TransferMode,
    WithdrawOffer,
    decide,
)
from contactcenter.interactions.domain.events import (
    InteractionAbandoned,
    InteractionAssigned,
    InteractionCompleted,
    InteractionConferenced,
    InteractionConnected,
    InteractionCreated,
    InteractionEnded,
    InteractionFailed,
    InteractionHeld,
    InteractionOffered,
    InteractionOfferWithdrawn,
    InteractionParticipantLeft,
    InteractionQueued,
    InteractionResumed,
    InteractionTransferred,
    MessageAppended,
    WrapUpEnded,
)

S = InteractionState
T0 = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
SKILL = SkillRequirement(skill="billing", min_proficiency=3)


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def only(events: list[Any], kind: type) -> Any:
    assert len(events) == 1 and isinstance(events[0], kind), events
    return events[0]


# --- creation and queueing -----------------------------------------------------------------------


def test_create_records_where_the_contact_came_from(story: Any) -> None:
    event = only(
        story.when(
            CreateInteraction(
                interaction_id="i-1",
                channel=Channel.EMAIL,
                customer_address="ann@example.com",
                entry_point="support@acme.example",
                subject="Invoice 42",
                external_ref="<thread-1@mail.acme.example>",
                attributes={"mailbox": "support"},
                language="",  # proto3's unset string
            )
        ),
        InteractionCreated,
    )
    assert event.event_type == "interactions.InteractionCreated.v1"
    assert event.direction is Direction.INBOUND
    assert event.language is None
    assert event.occurred_at == T0
    state = story.interaction
    assert (state.state, state.version, state.created_at) == (S.CREATED, 1, T0)
    assert state.subject == "Invoice 42"
    assert dict(state.attributes) == {"mailbox": "support"}


def test_create_and_enqueue_in_one_call(story: Any) -> None:
    events = story.when(
        CreateInteraction(
            interaction_id="i-1",
            channel=Channel.CHAT,
            language="fr-CA",
            intent="billing",
            attributes={"page": "/pricing"},
            queue=QueueTarget(
                queue_id="q-chat",
                priority=20,
                required_skills=(SKILL,),
                attributes={"vip": "yes"},
            ),
        )
    )
    assert [type(e) for e in events] == [InteractionCreated, InteractionQueued]
    queued = events[1]
    assert queued.reason is QueueReason.INITIAL
    assert queued.channel is Channel.CHAT
    assert queued.first_enqueued_at == T0
    assert queued.previous_queue_id is None
    # the full requirements in effect, not a delta
    assert queued.language == "fr-CA" and queued.intent == "billing"
    assert queued.attributes == {"page": "/pricing", "vip": "yes"}
    assert queued.required_skills == (SKILL,)
    assert story.interaction.first_enqueued_at == T0


def test_create_assigned_to_an_agent_for_outbound(story: Any) -> None:
    events = story.when(
        CreateInteraction(
            interaction_id="i-1",
            channel=Channel.VOICE,
            direction=Direction.OUTBOUND,
            customer_address="+14155550100",
            agent_id="a-7",
        )
    )
    assert [type(e) for e in events] == [InteractionCreated, InteractionAssigned]
    assert story.interaction.state is S.ASSIGNED
    connected = only(story.when(Connect(agent_id="a-7"), after=12), InteractionConnected)
    assert connected.first_answer is True
    assert connected.total_wait_ms is None and connected.ring_ms is None  # never queued


def test_create_twice_already_exists(reach: Any) -> None:
    story = reach(S.CREATED)
    with pytest.raises(AlreadyExists) as error:
        story.when(CreateInteraction(interaction_id="i-1", channel=Channel.VOICE))
    assert error.value.resource_name == "i-1"


def test_commands_on_a_missing_or_foreign_interaction_are_not_found(reach: Any) -> None:
    with pytest.raises(NotFound):
        decide(None, Hold(), CommandContext(tenant_id="t-acme", now=T0))
    story = reach(S.CONNECTED)
    with pytest.raises(NotFound):
        decide(story.state, Hold(), CommandContext(tenant_id="t-other", now=story.clock))


def test_overflow_moves_the_queue_and_keeps_the_first_enqueue_time(reach: Any) -> None:
    story = reach(S.QUEUED)
    event = only(
        story.when(
            Enqueue(target=QueueTarget(queue_id="q-overflow"), reason=QueueReason.OVERFLOW),
            after=90,
        ),
        InteractionQueued,
    )
    assert event.reason is QueueReason.OVERFLOW
    assert event.previous_queue_id == "q-support"
    assert event.first_enqueued_at == T0
    # empty skills/language/intent keep the current ones
    assert event.required_skills == (SKILL,)
    assert event.language == "en" and event.intent == "billing"
    assert event.priority == 0
    state = story.interaction
    assert state.queue_entered_at == T0 + s(90)
    assert state.first_enqueued_at == T0


def test_enqueue_reason_must_fit_the_state(reach: Any) -> None:
    queued = reach(S.QUEUED)
    with pytest.raises(FailedPrecondition, match="already queued"):
        queued.when(Enqueue(target=QueueTarget(queue_id="q-x"), reason=QueueReason.INITIAL))
    created = reach(S.CREATED)
    with pytest.raises(FailedPrecondition, match="never queued"):
        created.when(Enqueue(target=QueueTarget(queue_id="q-x"), reason=QueueReason.OVERFLOW))
    # unset means INITIAL from CREATED and REQUEUE from QUEUED
    assert created.when(Enqueue(target=QueueTarget(queue_id="q-x")))[0].reason is (
        QueueReason.INITIAL
    )
    assert created.when(Enqueue(target=QueueTarget(queue_id="q-y")))[0].reason is (
        QueueReason.REQUEUE
    )


# --- offers, assignment, connection --------------------------------------------------------------


def test_offer_then_withdraw_returns_to_the_queue(reach: Any) -> None:
    story = reach(S.QUEUED)
    offered = only(
        story.when(
            Offer(
                offer_id="o-1",
                agent_id="a-1",
                expires_at=T0 + s(35.123456),
            ),
            after=20,
        ),
        InteractionOffered,
    )
    assert offered.queue_id == "q-support"
    assert offered.queue_wait_ms == 20_000
    assert offered.expires_at == T0 + timedelta(seconds=35, milliseconds=123)
    withdrawn = only(
        story.when(WithdrawOffer(offer_id="o-1", reason=OfferWithdrawalReason.TIMED_OUT), after=15),
        InteractionOfferWithdrawn,
    )
    assert (withdrawn.agent_id, withdrawn.ring_ms) == ("a-1", 15_000)
    state = story.interaction
    assert state.state is S.QUEUED
    assert state.offer_id is None and state.offered_agent_id is None
    assert state.offer_count == 1
    # the next offer is to someone else
    story.when(Offer(offer_id="o-2", agent_id="a-2"), after=5)
    assert story.interaction.offer_count == 2


def test_assign_must_match_the_pending_offer(reach: Any) -> None:
    story = reach(S.OFFERED)
    with pytest.raises(FailedPrecondition, match="not the pending offer") as error:
        story.when(Assign(agent_id="a-1", offer_id="o-9"))
    assert not isinstance(error.value, IllegalTransition)
    assert error.value.current_state == "offered"
    with pytest.raises(FailedPrecondition, match="offered to another agent"):
        story.when(Assign(agent_id="a-9", offer_id="o-1"))
    with pytest.raises(FailedPrecondition, match="offered to another agent"):
        story.when(Connect(agent_id="a-9"))


def test_a_second_offer_while_offered_is_illegal(reach: Any) -> None:
    story = reach(S.OFFERED)
    with pytest.raises(IllegalTransition, match="offer 'o-1' to agent 'a-1'"):
        story.when(Offer(offer_id="o-2", agent_id="a-2"))


def test_assign_in_another_agents_hands_is_illegal(reach: Any) -> None:
    story = reach(S.CONNECTED)
    with pytest.raises(IllegalTransition):
        story.when(Assign(agent_id="a-2", offer_id="o-2"))


def test_direct_assignment_from_the_queue(reach: Any) -> None:
    story = reach(S.QUEUED)
    assigned = only(story.when(Assign(agent_id="a-5"), after=8), InteractionAssigned)
    assert (assigned.offer_id, assigned.queue_id) == (None, "q-support")
    connected = only(story.when(Connect(), after=2), InteractionConnected)
    assert connected.agent_id == "a-5"
    assert connected.ring_ms is None  # there was no offer
    assert connected.total_wait_ms == 10_000


def test_connect_records_answer_facts(reach: Any) -> None:
    story = reach(S.ASSIGNED)  # queued at 0, offered at 20, assigned at 24
    connected = only(story.when(Connect(agent_id="a-1"), after=1), InteractionConnected)
    assert connected.first_answer is True
    assert connected.queue_id == "q-support"
    assert connected.queue_wait_ms == 25_000
    assert connected.total_wait_ms == 25_000
    assert connected.ring_ms == 5_000
    state = story.interaction
    assert state.answered_at == T0 + s(25)
    assert state.participants == ("a-1",)
    assert state.wait_duration() == s(25)


def test_connect_from_offered_records_the_assignment_first(reach: Any) -> None:
    story = reach(S.OFFERED)
    assigned, connected = story.when(Connect(), after=3)
    assert isinstance(assigned, InteractionAssigned) and assigned.offer_id == "o-1"
    assert isinstance(connected, InteractionConnected) and connected.ring_ms == 3_000
    assert assigned.occurred_at == connected.occurred_at


def test_connect_straight_from_the_queue(reach: Any) -> None:
    """The gateway connects a queued call to the agent who picked it: no offer ever made."""
    story = reach(S.QUEUED)
    assigned, connected = story.when(Connect(agent_id="a-5"), after=7)
    assert isinstance(assigned, InteractionAssigned)
    assert (assigned.agent_id, assigned.offer_id, assigned.queue_id) == ("a-5", None, "q-support")
    assert isinstance(connected, InteractionConnected)
    assert connected.agent_id == "a-5" and connected.first_answer is True
    assert connected.ring_ms is None  # there was no offer
    assert connected.queue_wait_ms == 7_000
    state = story.interaction
    assert (state.state, state.agent_id, state.participants) == (S.CONNECTED, "a-5", ("a-5",))
    assert state.wait_duration() == s(7)


def test_connect_a_direct_dialled_contact(reach: Any) -> None:
    """Created and connected to the dialled agent without ever being queued."""
    story = reach(S.CREATED)
    assigned, connected = story.when(Connect(agent_id="a-5"), after=2)
    assert isinstance(assigned, InteractionAssigned) and assigned.queue_id is None
    assert isinstance(connected, InteractionConnected)
    assert connected.queue_wait_ms is None and connected.total_wait_ms is None
    assert story.interaction.state is S.CONNECTED


@pytest.mark.parametrize("state", [S.CREATED, S.QUEUED])
def test_connect_without_an_offer_must_name_the_agent(reach: Any, state: S) -> None:
    story = reach(state)
    before = list(story.history)
    with pytest.raises(ValidationFailed) as error:
        story.when(Connect())
    assert [v.field for v in error.value.field_violations] == ["agent_id"]
    assert story.history == before


@pytest.mark.parametrize("state", [S.WRAP_UP, S.ENDED, S.COMPLETED, S.ABANDONED, S.FAILED])
def test_connect_after_the_conversation_is_illegal(reach: Any, state: S) -> None:
    story = reach(state)
    with pytest.raises(IllegalTransition) as error:
        story.when(Connect(agent_id="a-5"))
    assert error.value.current_state == state.value


def test_connect_by_another_agent_is_refused(reach: Any) -> None:
    story = reach(S.ASSIGNED)
    with pytest.raises(FailedPrecondition, match="assigned to another agent"):
        story.when(Connect(agent_id="a-9"))


# --- hold, transfer, conference ------------------------------------------------------------------


def test_hold_and_resume(reach: Any) -> None:
    story = reach(S.CONNECTED)
    held = only(story.when(Hold(agent_id="a-1"), after=10), InteractionHeld)
    assert held.hold_count == 1
    resumed = only(story.when(Resume(agent_id="a-1"), after=7.5), InteractionResumed)
    assert resumed.held_ms == 7_500
    held = only(story.when(Hold(), after=1), InteractionHeld)
    assert (held.hold_count, held.agent_id) == (2, None)


@pytest.mark.parametrize("channel", [Channel.CHAT, Channel.EMAIL, Channel.SMS, Channel.SOCIAL])
def test_only_voice_and_video_can_hold(channel: Channel, reach: Any) -> None:
    story = reach(S.CONNECTED, channel)
    with pytest.raises(FailedPrecondition, match="cannot be put on hold") as error:
        story.when(Hold())
    assert error.value.current_state == "connected"


def test_video_can_hold(reach: Any) -> None:
    story = reach(S.CONNECTED, Channel.VIDEO)
    assert story.when(Hold())


def test_an_agent_not_on_the_interaction_cannot_act(reach: Any) -> None:
    story = reach(S.CONNECTED)
    for command in (
        Hold(agent_id="a-9"),
        Transfer(mode=TransferMode.BLIND, agent_id="a-9"),
        End(ended_by=EndedBy.AGENT, agent_id="a-9"),
        Conference(agent_id="a-3", invited_by_agent_id="a-9"),
    ):
        with pytest.raises(FailedPrecondition, match="'a-9' is not on interaction"):
            story.when(command)


def test_blind_transfer_back_to_a_queue(reach: Any) -> None:
    story = reach(S.CONNECTED)  # connected at 25s
    story.when(Hold(), after=40)
    transferred, queued = story.when(
        Transfer(
            mode=TransferMode.BLIND,
            to_queue_id="q-tier2",
            agent_id="a-1",
            priority=50,
            reason="needs tier 2",
        ),
        after=20,
    )
    assert isinstance(transferred, InteractionTransferred)
    assert transferred.from_agent_id == "a-1"
    assert transferred.to_queue_id == "q-tier2"
    assert (transferred.agent_talk_ms, transferred.agent_hold_ms, transferred.held_ms) == (
        40_000,
        20_000,
        20_000,
    )
    assert isinstance(queued, InteractionQueued)
    assert queued.reason is QueueReason.TRANSFER
    assert (queued.queue_id, queued.previous_queue_id, queued.priority) == (
        "q-tier2",
        "q-support",
        50,
    )
    assert queued.required_skills == (SKILL,)
    assert queued.first_enqueued_at == T0
    state = story.interaction
    assert state.state is S.QUEUED
    assert (state.agent_id, state.participants, state.transfer_count) == (None, (), 1)

    # the second agent answers: not the first answer; talk and hold add up over both legs
    story.when(Offer(offer_id="o-2", agent_id="a-2"), after=10)
    connected = story.when(Connect(agent_id="a-2"), after=2)[-1]
    assert connected.first_answer is False
    assert connected.queue_wait_ms == 12_000
    assert connected.total_wait_ms == 25_000 + 12_000
    ended = only(
        story.when(End(ended_by=EndedBy.AGENT, agent_id="a-2"), after=30), InteractionEnded
    )
    assert (ended.talk_ms, ended.hold_ms, ended.hold_count) == (70_000, 20_000, 1)
    assert (ended.agent_id, ended.agent_talk_ms, ended.agent_hold_ms) == ("a-2", 30_000, 0)
    assert story.interaction.answered_at == T0 + s(25)  # the first answer stays


def test_blind_transfer_to_an_agent_keeps_the_queue(reach: Any) -> None:
    story = reach(S.CONNECTED)
    _, queued = story.when(Transfer(mode=TransferMode.BLIND, to_agent_id="a-2"), after=5)
    assert (queued.queue_id, queued.target_agent_id) == ("q-support", "a-2")
    assert story.interaction.target_agent_id == "a-2"


def test_blind_transfer_of_a_never_queued_interaction_needs_a_queue(story: Any) -> None:
    story.when(CreateInteraction(interaction_id="i-1", channel=Channel.VOICE, agent_id="a-1"))
    story.when(Connect(), after=1)
    with pytest.raises(Exception, match="to_queue_id: is required") as error:
        story.when(Transfer(mode=TransferMode.BLIND, to_agent_id="a-2"))
    assert type(error.value).__name__ == "ValidationFailed"


def test_consulted_transfer_from_hold_connects_the_consulted_agent(reach: Any) -> None:
    story = reach(S.CONNECTED)
    story.when(Hold(agent_id="a-1"), after=30)  # consults a-2 meanwhile
    transferred = only(
        story.when(
            Transfer(
                mode=TransferMode.CONSULTED,
                to_agent_id="a-2",
                to_queue_id="q-tier2",
                agent_id="a-1",
            ),
            after=45,
        ),
        InteractionTransferred,
    )
    assert (transferred.agent_talk_ms, transferred.agent_hold_ms, transferred.held_ms) == (
        30_000,
        45_000,
        45_000,
    )
    state = story.interaction
    assert (state.state, state.agent_id, state.participants) == (S.CONNECTED, "a-2", ("a-2",))
    assert state.queue_id == "q-tier2"
    ended = only(story.when(End(ended_by=EndedBy.CUSTOMER), after=60), InteractionEnded)
    assert (ended.talk_ms, ended.hold_ms) == (90_000, 45_000)
    assert (ended.agent_id, ended.agent_talk_ms, ended.agent_hold_ms) == ("a-2", 60_000, 0)


def test_transfer_to_the_current_agent_is_refused(reach: Any) -> None:
    story = reach(S.CONNECTED)
    with pytest.raises(FailedPrecondition, match="already handles"):
        story.when(Transfer(mode=TransferMode.CONSULTED, to_agent_id="a-1"))


def test_conference_and_leave(reach: Any) -> None:
    story = reach(S.CONNECTED)
    story.when(Hold(), after=10)
    joined = only(
        story.when(Conference(agent_id="a-2", invited_by_agent_id="a-1"), after=20),
        InteractionConferenced,
    )
    assert joined.participant_agent_ids == ("a-1", "a-2")
    assert joined.held_ms == 20_000
    assert story.interaction.state is S.CONNECTED
    with pytest.raises(FailedPrecondition, match="already on interaction"):
        story.when(Conference(agent_id="a-2"))
    # the primary agent leaves: a-2 takes over, with a fresh leg
    left = only(story.when(LeaveConference(agent_id="a-1"), after=30), InteractionParticipantLeft)
    assert (left.primary_agent_id, left.participant_agent_ids) == ("a-2", ("a-2",))
    state = story.interaction
    assert (state.agent_id, state.participants) == ("a-2", ("a-2",))
    with pytest.raises(FailedPrecondition, match="only agent cannot leave"):
        story.when(LeaveConference(agent_id="a-2"))
    with pytest.raises(FailedPrecondition, match="'a-1' is not on interaction"):
        story.when(LeaveConference(agent_id="a-1"))
    ended = only(story.when(End(ended_by=EndedBy.CUSTOMER), after=5), InteractionEnded)
    assert (ended.talk_ms, ended.hold_ms) == (10_000 + 30_000 + 5_000, 20_000)
    assert (ended.agent_id, ended.agent_talk_ms) == ("a-2", 5_000)


def test_a_conferenced_agent_leaving_keeps_the_primary(reach: Any) -> None:
    story = reach(S.CONNECTED)
    story.when(Conference(agent_id="a-2"), after=10)
    story.when(LeaveConference(agent_id="a-2"), after=10)
    state = story.interaction
    assert (state.agent_id, state.participants) == ("a-1", ("a-1",))
    assert state.agent_talk_duration(story.clock) == s(20)  # the leg was not interrupted
    assert state.agent_talk_duration() == s(0)  # nothing closed yet


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.SMS, Channel.SOCIAL])
def test_conference_needs_a_live_channel(channel: Channel, reach: Any) -> None:
    story = reach(S.CONNECTED, channel)
    with pytest.raises(FailedPrecondition, match="cannot be conferenced"):
        story.when(Conference(agent_id="a-2"))


def test_a_conference_has_room_for_ten_agents(reach: Any) -> None:
    story = reach(S.CONNECTED)
    for n in range(2, 11):
        story.when(Conference(agent_id=f"a-{n}"))
    with pytest.raises(FailedPrecondition, match="at most 10"):
        story.when(Conference(agent_id="a-11"))


# --- end, wrap-up, completion --------------------------------------------------------------------


def test_durations_with_several_holds_derive_exactly(reach: Any) -> None:
    """queued 0s, offered 20s, assigned 24s, connected 25s; holds 85-115s and 135s-end;
    ended 165s while on hold; wrap-up until 195.5s."""
    story = reach(S.CONNECTED)
    story.when(Hold(), after=60)  # 85
    story.when(Resume(), after=30)  # 115
    story.when(Hold(), after=20)  # 135
    live = story.interaction
    as_of = story.clock + s(10)
    assert live.talk_duration(as_of) == s(80)
    assert live.hold_duration(as_of) == s(40)
    assert live.talk_duration() == s(80) and live.hold_duration() == s(30)  # closed only

    ended = only(story.when(End(ended_by=EndedBy.CUSTOMER), after=30), InteractionEnded)  # 165
    assert (ended.talk_ms, ended.hold_ms, ended.hold_count, ended.held_ms) == (
        80_000,
        60_000,
        2,
        30_000,
    )
    assert ended.agent_id == "a-1"
    assert story.interaction.state is S.WRAP_UP
    assert story.interaction.wrap_up_duration(story.clock + s(3)) == s(3)

    wrap, completed = story.when(
        Complete(disposition_codes=("resolved", "billing.refund"), notes="refund issued"),
        after=30.5,
    )
    assert isinstance(wrap, WrapUpEnded) and wrap.wrap_up_ms == 30_500
    assert isinstance(completed, InteractionCompleted)
    assert completed.agent_id == "a-1"
    assert completed.disposition_codes == ("resolved", "billing.refund")
    assert completed.notes == "refund issued"
    assert (completed.talk_ms, completed.hold_ms, completed.wrap_up_ms) == (80_000, 60_000, 30_500)
    assert completed.handle_ms == 170_500
    assert completed.wait_ms == 25_000

    state = story.interaction
    assert state.state is S.COMPLETED
    assert state.ended_at == T0 + s(165)
    assert state.wrap_up_ended_at == state.completed_at == T0 + s(195.5)
    # the same figures from the timestamps alone
    assert state.answered_at is not None and state.first_enqueued_at is not None
    assert state.talk_duration() == s(60 + 20)
    assert state.hold_duration() == (T0 + s(115)) - (T0 + s(85)) + (T0 + s(165)) - (T0 + s(135))
    assert state.wrap_up_duration() == state.wrap_up_ended_at - state.ended_at
    assert state.wait_duration() == state.answered_at - state.first_enqueued_at
    assert state.handle_duration() == s(170.5)
    # after completion, nothing is open any more
    assert state.talk_duration(state.completed_at + s(999)) == s(80)


def test_self_service_end_completes_at_once(reach: Any) -> None:
    story = reach(S.CREATED)
    ended, completed = story.when(End(ended_by=EndedBy.CUSTOMER, reason="ivr_resolved"), after=40)
    assert isinstance(ended, InteractionEnded) and ended.agent_id is None
    assert isinstance(completed, InteractionCompleted)
    assert (completed.handle_ms, completed.wait_ms) == (0, 0)
    state = story.interaction
    assert (state.state, state.end_reason, state.ended_by) == (
        S.COMPLETED,
        "ivr_resolved",
        EndedBy.CUSTOMER,
    )


def test_system_closes_a_queued_email(reach: Any) -> None:
    story = reach(S.QUEUED, Channel.EMAIL)
    _, completed = story.when(End(ended_by=EndedBy.SYSTEM, reason="spam"), after=300)
    assert completed.wait_ms == 300_000
    assert story.interaction.state is S.COMPLETED


def test_complete_by_another_agent_is_refused(reach: Any) -> None:
    story = reach(S.WRAP_UP)
    with pytest.raises(FailedPrecondition, match="not the wrap-up agent"):
        story.when(Complete(agent_id="a-9"))


def test_end_while_on_hold_closes_the_hold(reach: Any) -> None:
    story = reach(S.ON_HOLD)
    ended = only(story.when(End(ended_by=EndedBy.CUSTOMER), after=12), InteractionEnded)
    assert ended.held_ms == 12_000
    assert story.interaction.hold_duration() == s(12)


# --- abandon and failure -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "waited_ms", "agent"),
    [
        (S.CREATED, 0, None),
        (S.QUEUED, 10_000, None),
        (S.OFFERED, 30_000, "a-1"),
        (S.ASSIGNED, 34_000, "a-1"),
    ],
)
def test_abandon_records_the_time_waited(
    state: InteractionState, waited_ms: int, agent: str | None, reach: Any
) -> None:
    story = reach(state)
    event = only(story.when(Abandon(reason="customer_hangup"), after=10), InteractionAbandoned)
    assert event.abandoned_in is state
    assert event.waited_ms == waited_ms
    assert event.queue_wait_ms == waited_ms
    assert event.agent_id == agent
    assert event.queue_id == (None if state is S.CREATED else "q-support")
    final = story.interaction
    assert (final.state, final.abandon_reason) == (S.ABANDONED, "customer_hangup")
    assert final.abandoned_at == story.clock
    assert final.offer_id is None


def test_abandon_after_overflow_separates_queue_and_total_wait(reach: Any) -> None:
    story = reach(S.QUEUED)
    story.when(Enqueue(target=QueueTarget(queue_id="q-2"), reason=QueueReason.OVERFLOW), after=60)
    event = only(story.when(Abandon(), after=15), InteractionAbandoned)
    assert (event.queue_id, event.waited_ms, event.queue_wait_ms) == ("q-2", 75_000, 15_000)


def test_failure_while_connected_keeps_the_talk_time(reach: Any) -> None:
    story = reach(S.CONNECTED)
    event = only(
        story.when(Fail(failure_code="media_lost", detail="RTP timeout"), after=42),
        InteractionFailed,
    )
    assert (event.failed_in, event.agent_id, event.talk_ms, event.hold_ms) == (
        S.CONNECTED,
        "a-1",
        42_000,
        0,
    )
    state = story.interaction
    assert (state.state, state.failure_code, state.failure_detail) == (
        S.FAILED,
        "media_lost",
        "RTP timeout",
    )


# --- time ----------------------------------------------------------------------------------------


def test_time_is_truncated_to_the_millisecond_and_kept_in_utc(story: Any) -> None:
    from datetime import timezone

    paris = timezone(timedelta(hours=1))
    events = decide(
        None,
        CreateInteraction(interaction_id="i-1", channel=Channel.VOICE),
        CommandContext(tenant_id="t-acme", now=datetime(2026, 3, 2, 10, 0, 0, 123_999, paris)),
    )
    assert events[0].occurred_at == datetime(2026, 3, 2, 9, 0, 0, 123_000, UTC)
    assert events[0].occurred_at.utcoffset() == timedelta(0)


def test_a_naive_clock_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(
            None,
            CreateInteraction(interaction_id="i-1", channel=Channel.VOICE),
            CommandContext(tenant_id="t-acme", now=datetime(2026, 3, 2, 9, 0)),
        )


def test_a_clock_behind_the_last_event_never_makes_negative_durations(reach: Any) -> None:
    story = reach(S.CONNECTED)
    last = story.interaction.updated_at
    story.clock = last - s(2)  # another replica's clock is a little behind
    held = only(story.when(Hold()), InteractionHeld)
    assert held.occurred_at == last
    resumed = only(story.when(Resume()), InteractionResumed)
    assert resumed.held_ms == 0


def test_the_context_ids_are_stamped_on_every_event(reach: Any) -> None:
    from uuid import uuid4

    story = reach(S.WRAP_UP)
    correlation, causation = uuid4(), uuid4()
    events = decide(
        story.state,
        Complete(),
        CommandContext(
            tenant_id="t-acme",
            now=story.clock,
            correlation_id=correlation,
            causation_id=causation,
        ),
    )
    assert len(events) == 2
    assert {(e.correlation_id, e.causation_id) for e in events} == {(correlation, causation)}
    assert len({e.event_id for e in events}) == 2


# --- messages ------------------------------------------------------------------------------------


def test_agent_messages_need_the_agent_on_the_interaction(reach: Any) -> None:
    message = AppendMessage(
        message_id="m-1",
        author=Author(role=AuthorRole.AGENT, id="a-1", display_name="Ann"),
        direction=MessageDirection.OUTBOUND,
        body="How can I help?",
    )
    queued = reach(S.QUEUED, Channel.CHAT)
    with pytest.raises(FailedPrecondition, match="cannot write to its customer"):
        queued.when(message)
    connected = reach(S.CONNECTED, Channel.CHAT)
    appended = only(connected.when(message, after=3), MessageAppended)
    assert appended.direction is MessageDirection.OUTBOUND
    state = connected.interaction
    assert [m.body for m in state.messages] == ["How can I help?"]
    assert state.messages[0].content_type == "text/plain"
    assert state.messages[0].author.display_name == "Ann"
    wrap_up = reach(S.WRAP_UP, Channel.CHAT)
    assert wrap_up.when(message)  # e.g. a closing email sent during wrap-up


def test_from_events_needs_a_creation_first(reach: Any) -> None:
    story = reach(S.CONNECTED)
    with pytest.raises(ValueError, match="starts with InteractionCreated"):
        Interaction.from_events(story.history[1:])
    with pytest.raises(ValueError, match="starts with InteractionCreated"):
        Interaction.from_events([])
    with pytest.raises(ValueError, match="already created"):
        story.interaction.apply(story.history[0])


def test_apply_refuses_another_interactions_event(reach: Any) -> None:
    story = reach(S.CONNECTED)
    foreign = story.history[-1].model_copy(update={"interaction_id": "i-2"})
    with pytest.raises(ValueError, match="applied to 'i-1'"):
        story.interaction.apply(foreign)


def test_incremental_and_full_folds_agree(reach: Any) -> None:
    story = reach(S.COMPLETED)
    incremental = Interaction.created(story.history[0])
    for event in story.history[1:]:
        incremental = incremental.apply(event)
    assert incremental == Interaction.from_events(story.history)
    assert incremental.version == len(story.history)
