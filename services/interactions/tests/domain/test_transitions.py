"""The whole transition matrix: every command in every state.

For each (command, state): either the events it produces and the state they lead to, a no-op
(no events), or a refusal: IllegalTransition (FAILED_PRECONDITION naming the current state)
for a command the state does not allow, FailedPrecondition for another rule of the state.
Every refusal appends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contactcenter.contracts.errors import FailedPrecondition, IllegalTransition
from contactcenter.interactions.domain import (
    ALLOWED_FROM,
    Abandon,
    AddNote,
    AppendMessage,
    AppendTranscript,
    Assign,
    Author,
    AuthorRole,
    Command,
    Complete,
    Conference,
    Connect,
    End,
    EndedBy,
    Enqueue,
    Fail,
    Hold,
    InteractionState,
    LeaveConference,
    LinkProfile,
    MarkRepeat,
    MessageDirection,
    Offer,
    OfferWithdrawalReason,
    QueueTarget,
    RecordSatisfaction,
    Resume,
    Transfer,
    TransferMode,
    WithdrawOffer,
)

S = InteractionState
ALL = tuple(S)
NOT_FINAL = tuple(s for s in S if not s.is_final)
AGENT, OTHER, OFFER = "a-1", "a-2", "o-1"

NOOP = "noop"
ILLEGAL = "illegal"
PRECONDITION = "precondition"


@dataclass(frozen=True)
class Ok:
    events: tuple[str, ...]
    then: InteractionState | None = None  # None: the state does not change


def ok(*events: str, then: InteractionState | None = None) -> Ok:
    return Ok(events, then)


@dataclass(frozen=True)
class Row:
    command: Command
    outcomes: dict[InteractionState, Any]  # unlisted states: ILLEGAL


def every(states: tuple[InteractionState, ...], outcome: Any) -> dict[InteractionState, Any]:
    return dict.fromkeys(states, outcome)


MATRIX: dict[str, Row] = {
    "enqueue": Row(
        Enqueue(target=QueueTarget(queue_id="q-sales", priority=5)),
        {S.CREATED: ok("InteractionQueued", then=S.QUEUED), S.QUEUED: ok("InteractionQueued")},
    ),
    "offer": Row(
        Offer(offer_id="o-2", agent_id=OTHER),
        {S.QUEUED: ok("InteractionOffered", then=S.OFFERED)},
    ),
    "withdraw_offer": Row(
        WithdrawOffer(offer_id=OFFER, reason=OfferWithdrawalReason.REJECTED),
        {
            **every(ALL, NOOP),
            S.OFFERED: ok("InteractionOfferWithdrawn", then=S.QUEUED),
            S.ASSIGNED: PRECONDITION,
            S.CONNECTED: PRECONDITION,
            S.ON_HOLD: PRECONDITION,
        },
    ),
    "assign": Row(
        Assign(agent_id=AGENT, offer_id=OFFER),
        {
            S.QUEUED: ok("InteractionAssigned", then=S.ASSIGNED),
            S.OFFERED: ok("InteractionAssigned", then=S.ASSIGNED),
            S.ASSIGNED: NOOP,
            S.CONNECTED: NOOP,
            S.ON_HOLD: NOOP,
        },
    ),
    "connect": Row(
        Connect(agent_id=AGENT),
        {
            # straight to an agent (picked from the queue, or direct-dialled): assigned first
            S.CREATED: ok("InteractionAssigned", "InteractionConnected", then=S.CONNECTED),
            S.QUEUED: ok("InteractionAssigned", "InteractionConnected", then=S.CONNECTED),
            S.OFFERED: ok("InteractionAssigned", "InteractionConnected", then=S.CONNECTED),
            S.ASSIGNED: ok("InteractionConnected", then=S.CONNECTED),
        },
    ),
    "hold": Row(Hold(agent_id=AGENT), {S.CONNECTED: ok("InteractionHeld", then=S.ON_HOLD)}),
    "resume": Row(Resume(agent_id=AGENT), {S.ON_HOLD: ok("InteractionResumed", then=S.CONNECTED)}),
    "transfer_blind": Row(
        Transfer(mode=TransferMode.BLIND, to_queue_id="q-tier2", agent_id=AGENT),
        every(
            (S.CONNECTED, S.ON_HOLD),
            ok("InteractionTransferred", "InteractionQueued", then=S.QUEUED),
        ),
    ),
    "transfer_consulted": Row(
        Transfer(mode=TransferMode.CONSULTED, to_agent_id=OTHER, agent_id=AGENT),
        every((S.CONNECTED, S.ON_HOLD), ok("InteractionTransferred", then=S.CONNECTED)),
    ),
    "conference": Row(
        Conference(agent_id=OTHER, invited_by_agent_id=AGENT),
        every((S.CONNECTED, S.ON_HOLD), ok("InteractionConferenced", then=S.CONNECTED)),
    ),
    "leave_conference_alone": Row(
        LeaveConference(agent_id=AGENT), every((S.CONNECTED, S.ON_HOLD), PRECONDITION)
    ),
    "end_by_customer": Row(
        End(ended_by=EndedBy.CUSTOMER),
        {
            S.CREATED: ok("InteractionEnded", "InteractionCompleted", then=S.COMPLETED),
            S.QUEUED: PRECONDITION,  # a customer leaving a queue abandons it
            S.CONNECTED: ok("InteractionEnded", then=S.WRAP_UP),
            S.ON_HOLD: ok("InteractionEnded", then=S.WRAP_UP),
        },
    ),
    "end_by_system": Row(
        End(ended_by=EndedBy.SYSTEM, reason="spam"),
        {
            S.CREATED: ok("InteractionEnded", "InteractionCompleted", then=S.COMPLETED),
            S.QUEUED: ok("InteractionEnded", "InteractionCompleted", then=S.COMPLETED),
            S.CONNECTED: ok("InteractionEnded", then=S.WRAP_UP),
            S.ON_HOLD: ok("InteractionEnded", then=S.WRAP_UP),
        },
    ),
    "complete": Row(
        Complete(disposition_codes=("resolved",)),
        {
            S.WRAP_UP: ok("WrapUpEnded", "InteractionCompleted", then=S.COMPLETED),
            S.ENDED: ok("InteractionCompleted", then=S.COMPLETED),
        },
    ),
    "abandon": Row(
        Abandon(reason="customer_hangup"),
        every(
            (S.CREATED, S.QUEUED, S.OFFERED, S.ASSIGNED),
            ok("InteractionAbandoned", then=S.ABANDONED),
        ),
    ),
    "fail": Row(
        Fail(failure_code="media_setup_failed"),
        every(
            (S.CREATED, S.QUEUED, S.OFFERED, S.ASSIGNED, S.CONNECTED, S.ON_HOLD),
            ok("InteractionFailed", then=S.FAILED),
        ),
    ),
    "append_customer_message": Row(
        AppendMessage(
            message_id="m-1",
            author=Author(role=AuthorRole.CUSTOMER, id="p-1"),
            direction=MessageDirection.INBOUND,
            body="Hello?",
        ),
        every(NOT_FINAL, ok("MessageAppended")),
    ),
    "add_note": Row(
        AddNote(note_id="n-1", author_id="sup-1", text="VIP, handle with care"),
        every(ALL, ok("NoteAdded")),
    ),
    "append_transcript": Row(
        AppendTranscript(
            segment_id="s-1",
            speaker_role=AuthorRole.CUSTOMER,
            text="I want to check my bill",
            start_offset_ms=1_000,
            end_offset_ms=2_500,
        ),
        every(ALL, ok("TranscriptAppended")),
    ),
    "record_satisfaction": Row(
        RecordSatisfaction(score=4, comment="quick"),
        every((S.WRAP_UP, S.ENDED, S.COMPLETED), ok("SatisfactionRecorded")),
    ),
    "mark_repeat": Row(
        MarkRepeat(
            repeat_of_interaction_id="i-0",
            previous_created_at=datetime(2026, 3, 1, tzinfo=UTC),
            window_days=7,
        ),
        every(ALL, ok("InteractionMarkedRepeat")),
    ),
    "link_profile": Row(LinkProfile(profile_id="p-2"), every(ALL, ok("InteractionProfileLinked"))),
}

CASES = [pytest.param(name, state, id=f"{name}-{state.value}") for name in MATRIX for state in S]


@pytest.mark.parametrize(("name", "state"), CASES)
def test_command_in_state(name: str, state: InteractionState, reach: Any) -> None:
    row = MATRIX[name]
    expected = row.outcomes.get(state, ILLEGAL)
    story = reach(state)
    before = list(story.history)

    if expected in (ILLEGAL, PRECONDITION):
        with pytest.raises(FailedPrecondition) as refused:
            story.when(row.command, after=5)
        error = refused.value
        assert isinstance(error, IllegalTransition) is (expected == ILLEGAL), error
        assert error.current_state == state.value
        assert error.metadata() == {"current_state": state.value}
        if expected == ILLEGAL:
            assert f"it is {state.value}" in str(error)
        assert story.history == before  # nothing appended
        return

    events = story.when(row.command, after=5)
    if expected == NOOP:
        assert events == []
        return
    assert tuple(type(e).__name__ for e in events) == expected.events
    after = story.interaction
    assert after.state is (expected.then or state)
    assert after.version == len(before) + len(events)
    for event in events:
        assert event.tenant_id == story.TENANT
        assert event.interaction_id == story.IID
        assert event.occurred_at == story.clock
    # one command, one correlation id
    assert len({e.correlation_id for e in events}) == 1


def test_matrix_covers_the_transition_table() -> None:
    """The documented table (ALLOWED_FROM) and this matrix agree on which states allow what."""
    for name, row in MATRIX.items():
        table = ALLOWED_FROM.get(type(row.command))
        if table is None:
            continue
        allowed_here = {s for s, outcome in row.outcomes.items() if outcome != ILLEGAL}
        assert allowed_here <= table, (name, allowed_here - table)


def test_states_are_what_they_say() -> None:
    assert {s for s in S if s.is_final} == {S.COMPLETED, S.ABANDONED, S.FAILED}


@pytest.mark.parametrize("state", [s for s in S if s.is_final])
def test_nothing_but_annotations_after_a_final_state(state: InteractionState, reach: Any) -> None:
    story = reach(state)
    allowed = {
        name
        for name, row in MATRIX.items()
        if row.outcomes.get(state, ILLEGAL) not in (ILLEGAL, PRECONDITION)
        and row.outcomes.get(state) != NOOP
    }
    expected = {"add_note", "append_transcript", "mark_repeat", "link_profile"}
    if state is S.COMPLETED:
        expected.add("record_satisfaction")
    assert allowed == expected
    assert story.interaction.is_final


def test_refused_command_keeps_the_clock_honest(reach: Any) -> None:
    story = reach(S.COMPLETED)
    with pytest.raises(IllegalTransition):
        story.when(Hold(), after=1)
    assert story.interaction.updated_at < story.clock
    assert story.interaction.updated_at == story.T0 + timedelta(seconds=20 + 4 + 1 + 120 + 30)
