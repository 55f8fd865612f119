"""`decide(state, command, context) -> events`: every rule of the interaction lifecycle.

Order of checks, so that the error a client sees is the most useful one:
1. the command's own input (ValidationFailed naming every bad field);
2. existence and tenant (NotFound; another tenant's interaction looks like a missing one);
   AlreadyExists when creating an interaction that exists;
3. the transition (IllegalTransition naming the current state) and other rules of the state
   (FailedPrecondition with the current state).
Nothing is appended when a check fails. A command that would change nothing (a repeated
offer, an assignment already recorded, a message id seen before ...) returns no events.

Time: events happen at `context.now` truncated to the millisecond, and never before the
interaction's latest event (clocks of two service replicas may disagree by a little), so
durations are never negative and always whole milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar
from uuid import uuid4

from contactcenter.contracts.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    IllegalTransition,
    NotFound,
    ValidationFailed,
)
from contactcenter.interactions.domain.commands import (
    Abandon,
    AddNote,
    AppendMessage,
    AppendTranscript,
    Assign,
    Command,
    CommandContext,
    Complete,
    Conference,
    Connect,
    CreateInteraction,
    End,
    Enqueue,
    Fail,
    Hold,
    LeaveConference,
    LinkProfile,
    MarkRepeat,
    Offer,
    QueueTarget,
    RecordSatisfaction,
    Resume,
    Transfer,
    WithdrawOffer,
)
from contactcenter.interactions.domain.events import (
    InteractionAbandoned,
    InteractionAssigned,
    InteractionCompleted,
    InteractionConferenced,
    InteractionConnected,
    InteractionCreated,
    InteractionEnded,
    InteractionEvent,
    InteractionFailed,
    InteractionHeld,
    InteractionMarkedRepeat,
    InteractionOffered,
    InteractionOfferWithdrawn,
    InteractionParticipantLeft,
    InteractionProfileLinked,
    InteractionQueued,
    InteractionResumed,
    InteractionTransferred,
    MessageAppended,
    NoteAdded,
    SatisfactionRecorded,
    TranscriptAppended,
    WrapUpEnded,
)
from contactcenter.interactions.domain.interaction import Interaction
from contactcenter.interactions.domain.validation import (
    MAX_ADDRESS_LENGTH,
    MAX_ATTRIBUTES,
    MAX_BODY_LENGTH,
    MAX_COMMENT_LENGTH,
    MAX_DISPOSITION_CODES,
    MAX_NOTE_LENGTH,
    MAX_SHORT_TEXT,
    MAX_SUBJECT_LENGTH,
    MAX_TRANSCRIPT_TEXT,
    Checks,
    given,
    or_none,
)
from contactcenter.interactions.domain.values import (
    CONFERENCE_CHANNELS,
    FINAL_STATES,
    HOLD_CHANNELS,
    LIVE_STATES,
    TRANSCRIPT_CHANNELS,
    AuthorRole,
    EndedBy,
    InteractionState,
    MessageDirection,
    QueueReason,
    TransferMode,
    at_millisecond,
    to_millis,
)

S = InteractionState
E = TypeVar("E", bound=InteractionEvent)

MAX_PARTICIPANTS: Final = 10
MAX_MESSAGES: Final = 10_000
MAX_NOTES: Final = 1_000
MAX_TRANSCRIPT_SEGMENTS: Final = 20_000
MAX_REPEAT_WINDOW_DAYS: Final = 365
DEFAULT_SATISFACTION_SCALE: Final = 5

#: The states from which each lifecycle command may start (the transition table).
ALLOWED_FROM: Final[Mapping[type[Command], frozenset[InteractionState]]] = {
    Enqueue: frozenset({S.CREATED, S.QUEUED}),
    Offer: frozenset({S.QUEUED, S.OFFERED}),
    Assign: frozenset({S.QUEUED, S.OFFERED, S.ASSIGNED, S.CONNECTED, S.ON_HOLD}),
    # CREATED/QUEUED: a gateway connects a contact straight to an agent (the agent picked the
    # call from the queue, or it was direct-dialled); it must name the agent (see `_connect`).
    Connect: frozenset({S.CREATED, S.QUEUED, S.OFFERED, S.ASSIGNED}),
    Hold: frozenset({S.CONNECTED}),
    Resume: frozenset({S.ON_HOLD}),
    Transfer: frozenset({S.CONNECTED, S.ON_HOLD}),
    Conference: frozenset({S.CONNECTED, S.ON_HOLD}),
    LeaveConference: frozenset({S.CONNECTED, S.ON_HOLD}),
    End: frozenset({S.CREATED, S.QUEUED, S.CONNECTED, S.ON_HOLD}),
    Complete: frozenset({S.WRAP_UP, S.ENDED}),
    Abandon: frozenset({S.CREATED, S.QUEUED, S.OFFERED, S.ASSIGNED}),
    Fail: frozenset({S.CREATED, S.QUEUED, S.OFFERED, S.ASSIGNED, S.CONNECTED, S.ON_HOLD}),
    # Checked after recognising a message seen before, which is fine in any state.
    AppendMessage: frozenset(set(S) - FINAL_STATES),
    RecordSatisfaction: frozenset({S.WRAP_UP, S.ENDED, S.COMPLETED}),
}
#: Commands allowed in every state (annotations and facts about the customer).
ALLOWED_IN_EVERY_STATE: Final = (WithdrawOffer, AddNote, AppendTranscript, MarkRepeat, LinkProfile)

_ACTIONS: Final[Mapping[type[Command], str]] = {
    Enqueue: "enqueue",
    Offer: "offer",
    Assign: "assign",
    Connect: "connect",
    Hold: "hold",
    Resume: "resume",
    Transfer: "transfer",
    Conference: "conference an agent into",
    LeaveConference: "leave a conference on",
    End: "end",
    Complete: "complete",
    Abandon: "abandon",
    Fail: "fail",
    AppendMessage: "append a message to",
    RecordSatisfaction: "record satisfaction on",
}


def decide(
    state: Interaction | None, command: Command, context: CommandContext
) -> list[InteractionEvent]:
    """The events that `command` produces on `state` (None: the interaction does not exist)."""
    return _run(state, command, context).events


def evolve(
    state: Interaction | None, command: Command, context: CommandContext
) -> tuple[list[InteractionEvent], Interaction | None]:
    """`decide`, and the interaction after its events (the fold `decide` computes anyway)."""
    decision = _run(state, command, context)
    return decision.events, decision.current


def _run(state: Interaction | None, command: Command, context: CommandContext) -> _Decision:
    _VALIDATORS[type(command)](command)
    at = at_millisecond(context.now)
    if isinstance(command, CreateInteraction):
        if state is not None:
            raise AlreadyExists(
                f"interaction {command.interaction_id!r} already exists",
                resource_type="interaction",
                resource_name=command.interaction_id,
            )
        decision = _Decision(None, command.interaction_id, context, at)
        _create(decision, command)
        return decision
    if state is None or state.tenant_id != context.tenant_id:
        raise NotFound("interaction not found", resource_type="interaction")
    allowed = ALLOWED_FROM.get(type(command))
    if allowed is not None and state.state not in allowed and not _seen_message(state, command):
        raise illegal(state, _ACTIONS[type(command)])
    decision = _Decision(state, state.interaction_id, context, max(at, state.updated_at))
    _HANDLERS[type(command)](decision, command)
    return decision


def _seen_message(state: Interaction, command: Command) -> bool:
    """A message whose external id the interaction already holds: a no-op in every state."""
    return (
        isinstance(command, AppendMessage)
        and bool(command.external_message_id)
        and state.message_with_external_id(command.external_message_id or "") is not None
    )


def illegal(state: Interaction, action: str) -> IllegalTransition:
    return IllegalTransition(
        f"cannot {action} interaction {state.interaction_id!r}: it is {state.state.value}",
        current_state=state.state.value,
    )


def precondition(state: Interaction, message: str) -> FailedPrecondition:
    return FailedPrecondition(message, current_state=state.state.value)


class _Decision:
    """The events of one command, applied as they are emitted so later ones see their effect."""

    def __init__(
        self,
        state: Interaction | None,
        interaction_id: str,
        context: CommandContext,
        at: datetime,
    ) -> None:
        self._state = state
        self.at = at
        self.events: list[InteractionEvent] = []
        self._envelope: dict[str, Any] = {
            "tenant_id": context.tenant_id,
            "interaction_id": interaction_id,
            "occurred_at": at,
            "correlation_id": context.correlation_id or uuid4(),
            "causation_id": context.causation_id,
        }

    @property
    def state(self) -> Interaction:
        assert self._state is not None, "no InteractionCreated yet"
        return self._state

    @property
    def current(self) -> Interaction | None:
        """The interaction after the events emitted so far (None before InteractionCreated)."""
        return self._state

    def emit(self, event_type: type[E], **fields: Any) -> E:
        event = event_type(**self._envelope, **fields)
        if self._state is None:
            assert isinstance(event, InteractionCreated)
            self._state = Interaction.created(event)
        else:
            self._state = self._state.apply(event)
        self.events.append(event)
        return event


def _ms(duration: timedelta) -> int:
    return to_millis(duration)


def _require_participant(state: Interaction, agent_id: str | None) -> None:
    if given(agent_id) and agent_id not in state.participants:
        raise precondition(
            state, f"agent {agent_id!r} is not on interaction {state.interaction_id!r}"
        )


# --- validation (state-independent) --------------------------------------------------------------


def _check_target(checks: Checks, target: QueueTarget) -> None:
    checks.identifier("queue_id", target.queue_id, required=True)
    checks.priority("priority", target.priority)
    checks.skills("required_skills", target.required_skills)
    checks.language("language", target.language)
    checks.text("intent", target.intent, MAX_SHORT_TEXT)
    checks.attributes("attributes", target.attributes)
    checks.identifier("target_agent_id", target.target_agent_id)


def _aware(checks: Checks, field: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        checks.fail(field, "must have a time zone")


def _validate_create(c: CreateInteraction) -> None:
    checks = Checks()
    checks.identifier("interaction_id", c.interaction_id, required=True)
    checks.identifier("customer_profile_id", c.customer_profile_id)
    checks.text("customer_address", c.customer_address, MAX_ADDRESS_LENGTH)
    checks.text("entry_point", c.entry_point, MAX_ADDRESS_LENGTH)
    checks.text("subject", c.subject, MAX_SUBJECT_LENGTH)
    checks.language("language", c.language)
    checks.text("intent", c.intent, MAX_SHORT_TEXT)
    checks.attributes("attributes", c.attributes)
    checks.text("external_ref", c.external_ref, MAX_ADDRESS_LENGTH)
    checks.identifier("agent_id", c.agent_id)
    if c.queue is not None:
        _check_target(checks.at("queue."), c.queue)
        if given(c.agent_id):
            checks.fail("agent_id", "cannot be combined with queue")
        if len({**c.attributes, **c.queue.attributes}) > MAX_ATTRIBUTES:
            checks.fail("queue.attributes", f"at most {MAX_ATTRIBUTES} attributes in all")
    checks.done()


def _validate_enqueue(c: Enqueue) -> None:
    checks = Checks()
    _check_target(checks, c.target)
    if c.reason is QueueReason.TRANSFER:
        checks.fail("reason", "TRANSFER is recorded by Transfer")
    checks.done()


def _validate_offer(c: Offer) -> None:
    checks = Checks()
    checks.identifier("offer_id", c.offer_id, required=True)
    checks.identifier("agent_id", c.agent_id, required=True)
    checks.identifier("queue_id", c.queue_id)
    _aware(checks, "expires_at", c.expires_at)
    checks.done()


def _validate_withdraw(c: WithdrawOffer) -> None:
    checks = Checks()
    checks.identifier("offer_id", c.offer_id, required=True)
    checks.done()


def _validate_assign(c: Assign) -> None:
    checks = Checks()
    checks.identifier("agent_id", c.agent_id, required=True)
    checks.identifier("offer_id", c.offer_id)
    checks.done()


def _validate_agent_only(c: Connect | Hold | Resume) -> None:
    checks = Checks()
    checks.identifier("agent_id", c.agent_id)
    checks.done()


def _validate_transfer(c: Transfer) -> None:
    checks = Checks()
    checks.identifier("to_queue_id", c.to_queue_id)
    checks.identifier("to_agent_id", c.to_agent_id)
    checks.identifier("agent_id", c.agent_id)
    checks.text("reason", c.reason, MAX_SHORT_TEXT)
    if c.mode is TransferMode.CONSULTED:
        if not given(c.to_agent_id):
            checks.fail("to_agent_id", "is required for a consulted transfer")
        if c.priority is not None:
            checks.fail("priority", "applies to blind transfers only")
        if c.required_skills:
            checks.fail("required_skills", "apply to blind transfers only")
    else:
        if c.priority is not None:
            checks.priority("priority", c.priority)
        checks.skills("required_skills", c.required_skills)
    if given(c.to_agent_id) and c.to_agent_id == c.agent_id:
        checks.fail("to_agent_id", "must differ from the transferring agent")
    checks.done()


def _validate_conference(c: Conference) -> None:
    checks = Checks()
    checks.identifier("agent_id", c.agent_id, required=True)
    checks.identifier("invited_by_agent_id", c.invited_by_agent_id)
    checks.done()


def _validate_leave(c: LeaveConference) -> None:
    checks = Checks()
    checks.identifier("agent_id", c.agent_id, required=True)
    checks.done()


def _validate_end(c: End) -> None:
    checks = Checks()
    checks.text("reason", c.reason, MAX_SHORT_TEXT)
    checks.identifier("agent_id", c.agent_id)
    checks.done()


def _validate_complete(c: Complete) -> None:
    checks = Checks()
    if len(c.disposition_codes) > MAX_DISPOSITION_CODES:
        checks.fail("disposition_codes", f"must have at most {MAX_DISPOSITION_CODES} entries")
    else:
        seen: set[str] = set()
        for i, code in enumerate(c.disposition_codes):
            checks.code(f"disposition_codes[{i}]", code, required=True)
            if code in seen:
                checks.fail(f"disposition_codes[{i}]", f"{code!r} is listed twice")
            seen.add(code)
    checks.text("notes", c.notes, MAX_NOTE_LENGTH, multiline=True)
    checks.identifier("agent_id", c.agent_id)
    checks.done()


def _validate_abandon(c: Abandon) -> None:
    checks = Checks()
    checks.text("reason", c.reason, MAX_SHORT_TEXT)
    checks.done()


def _validate_fail(c: Fail) -> None:
    checks = Checks()
    checks.code("failure_code", c.failure_code, required=True)
    checks.text("detail", c.detail, MAX_COMMENT_LENGTH, multiline=True)
    checks.done()


_DIRECTION_OF: Final[Mapping[AuthorRole, MessageDirection]] = {
    AuthorRole.CUSTOMER: MessageDirection.INBOUND,
    AuthorRole.AGENT: MessageDirection.OUTBOUND,
    AuthorRole.BOT: MessageDirection.OUTBOUND,
}


def _validate_message(c: AppendMessage) -> None:
    checks = Checks()
    checks.identifier("message_id", c.message_id, required=True)
    checks.identifier("author.id", c.author.id, required=c.author.role is AuthorRole.AGENT)
    checks.text("author.display_name", c.author.display_name, MAX_SHORT_TEXT)
    expected = _DIRECTION_OF.get(c.author.role)
    if expected is not None and c.direction is not expected:
        checks.fail(
            "direction", f"a {c.author.role.value} writes {expected.value.upper()} messages"
        )
    checks.text("body", c.body, MAX_BODY_LENGTH, multiline=True)
    if not c.body and not c.attachments:
        checks.fail("body", "is required when there are no attachments")
    checks.content_type("content_type", c.content_type)
    checks.text("subject", c.subject, MAX_SUBJECT_LENGTH)
    checks.attachments("attachments", c.attachments)
    checks.text("external_message_id", c.external_message_id, 998)
    _aware(checks, "sent_at", c.sent_at)
    checks.done()


def _validate_note(c: AddNote) -> None:
    checks = Checks()
    checks.identifier("note_id", c.note_id, required=True)
    checks.identifier("author_id", c.author_id, required=True)
    checks.text("text", c.text, MAX_NOTE_LENGTH, required=True, multiline=True)
    checks.done()


def _validate_transcript(c: AppendTranscript) -> None:
    checks = Checks()
    checks.identifier("segment_id", c.segment_id, required=True)
    checks.identifier("speaker_id", c.speaker_id)
    checks.text("text", c.text, MAX_TRANSCRIPT_TEXT, required=True, multiline=True)
    if c.start_offset_ms < 0:
        checks.fail("start_offset", "must not be negative")
    if c.end_offset_ms < c.start_offset_ms:
        checks.fail("end_offset", "must not be before start_offset")
    if c.confidence is not None:
        checks.between("confidence", c.confidence, 0.0, 1.0)
    checks.language("language", c.language)
    checks.done()


def _validate_satisfaction(c: RecordSatisfaction) -> None:
    checks = Checks()
    scale = c.scale or DEFAULT_SATISFACTION_SCALE
    checks.between("scale", scale, 3, 10)
    checks.between("score", c.score, 1, scale)
    checks.text("comment", c.comment, MAX_COMMENT_LENGTH, multiline=True)
    checks.identifier("survey_id", c.survey_id)
    checks.done()


def _validate_repeat(c: MarkRepeat) -> None:
    checks = Checks()
    checks.identifier("repeat_of_interaction_id", c.repeat_of_interaction_id, required=True)
    checks.between("window_days", c.window_days, 1, MAX_REPEAT_WINDOW_DAYS)
    _aware(checks, "previous_created_at", c.previous_created_at)
    checks.done()


def _validate_link(c: LinkProfile) -> None:
    checks = Checks()
    checks.identifier("profile_id", c.profile_id, required=True)
    checks.done()


# --- lifecycle -----------------------------------------------------------------------------------


def _queued_fields(
    state: Interaction, target: QueueTarget, reason: QueueReason, at: datetime
) -> dict[str, Any]:
    """The full routing requirements in effect once `target` is applied to `state`."""
    attributes = {**state.attributes, **target.attributes}
    if len(attributes) > MAX_ATTRIBUTES:
        checks = Checks()
        checks.fail("attributes", f"at most {MAX_ATTRIBUTES} attributes in all")
        checks.done()
    return {
        "queue_id": target.queue_id,
        "reason": reason,
        "channel": state.channel,
        "priority": target.priority,
        "required_skills": tuple(target.required_skills) or state.required_skills,
        "language": or_none(target.language) or state.language,
        "intent": or_none(target.intent) or state.intent,
        "attributes": attributes,
        "target_agent_id": or_none(target.target_agent_id),
        "customer_profile_id": state.customer_profile_id,
        "previous_queue_id": state.queue_id,
        "first_enqueued_at": state.first_enqueued_at or at,
    }


def _create(d: _Decision, c: CreateInteraction) -> None:
    d.emit(
        InteractionCreated,
        channel=c.channel,
        direction=c.direction,
        customer_profile_id=or_none(c.customer_profile_id),
        customer_address=or_none(c.customer_address),
        entry_point=or_none(c.entry_point),
        subject=or_none(c.subject),
        language=or_none(c.language),
        intent=or_none(c.intent),
        attributes=dict(c.attributes),
        external_ref=or_none(c.external_ref),
    )
    if c.queue is not None:
        d.emit(InteractionQueued, **_queued_fields(d.state, c.queue, QueueReason.INITIAL, d.at))
    elif c.agent_id:
        d.emit(InteractionAssigned, agent_id=c.agent_id)


def _enqueue(d: _Decision, c: Enqueue) -> None:
    state = d.state
    if state.state is S.CREATED:
        if c.reason not in (None, QueueReason.INITIAL):
            raise precondition(
                state, "an interaction that was never queued can only be queued INITIAL"
            )
        d.emit(InteractionQueued, **_queued_fields(state, c.target, QueueReason.INITIAL, d.at))
        return
    if c.reason is QueueReason.INITIAL:
        raise precondition(
            state, f"interaction {state.interaction_id!r} is already queued; use REQUEUE/OVERFLOW"
        )
    fields = _queued_fields(state, c.target, c.reason or QueueReason.REQUEUE, d.at)
    unchanged = (
        fields["queue_id"] == state.queue_id
        and fields["priority"] == state.priority
        and fields["required_skills"] == state.required_skills
        and fields["language"] == state.language
        and fields["intent"] == state.intent
        and fields["attributes"] == dict(state.attributes)
        and fields["target_agent_id"] == state.target_agent_id
    )
    if not unchanged:
        d.emit(InteractionQueued, **fields)


def _offer(d: _Decision, c: Offer) -> None:
    state = d.state
    if state.state is S.OFFERED:
        if c.offer_id == state.offer_id and c.agent_id == state.offered_agent_id:
            return  # the same offer again
        raise IllegalTransition(
            f"cannot offer interaction {state.interaction_id!r}: it is offered "
            f"(offer {state.offer_id!r} to agent {state.offered_agent_id!r})",
            current_state=state.state.value,
        )
    assert state.queue_entered_at is not None
    d.emit(
        InteractionOffered,
        offer_id=c.offer_id,
        agent_id=c.agent_id,
        queue_id=or_none(c.queue_id) or state.queue_id,
        expires_at=at_millisecond(c.expires_at) if c.expires_at else None,
        queue_wait_ms=_ms(d.at - state.queue_entered_at),
    )


def _withdraw_offer(d: _Decision, c: WithdrawOffer) -> None:
    state = d.state
    if state.state is S.OFFERED and c.offer_id == state.offer_id:
        assert state.offered_agent_id is not None and state.offered_at is not None
        d.emit(
            InteractionOfferWithdrawn,
            offer_id=c.offer_id,
            agent_id=state.offered_agent_id,
            reason=c.reason,
            ring_ms=_ms(d.at - state.offered_at),
        )
    elif c.offer_id == state.accepted_offer_id and state.state in (
        S.ASSIGNED,
        *LIVE_STATES,
    ):
        raise precondition(
            state,
            f"offer {c.offer_id!r} of interaction {state.interaction_id!r} was accepted "
            f"and cannot be withdrawn",
        )
    # Otherwise the offer is not pending (already withdrawn, superseded, or the interaction has
    # moved on): there is nothing to withdraw.


def _assign(d: _Decision, c: Assign) -> None:
    state = d.state
    if state.state is S.OFFERED:
        if given(c.offer_id) and c.offer_id != state.offer_id:
            raise precondition(
                state,
                f"offer {c.offer_id!r} is not the pending offer of interaction "
                f"{state.interaction_id!r}",
            )
        if c.agent_id != state.offered_agent_id:
            raise precondition(
                state,
                f"interaction {state.interaction_id!r} is offered to another agent, "
                f"not {c.agent_id!r}",
            )
        d.emit(
            InteractionAssigned,
            agent_id=c.agent_id,
            offer_id=state.offer_id,
            queue_id=state.queue_id,
        )
    elif state.state is S.QUEUED:
        d.emit(
            InteractionAssigned,
            agent_id=c.agent_id,
            offer_id=or_none(c.offer_id),
            queue_id=state.queue_id,
        )
    elif c.agent_id == state.agent_id and (
        not given(c.offer_id) or c.offer_id == state.accepted_offer_id
    ):
        return  # already assigned (e.g. Connect recorded the assignment first)
    else:
        raise illegal(state, "assign")


def _connect(d: _Decision, c: Connect) -> None:
    state = d.state
    if state.state in (S.CREATED, S.QUEUED):
        # No offer: the gateway connected the contact to an agent it names; the assignment is
        # recorded first (without an offer), as routing would have done.
        if not given(c.agent_id):
            raise ValidationFailed(
                [
                    FieldViolation(
                        "agent_id",
                        f"required to connect interaction {state.interaction_id!r}: it is "
                        f"{state.state.value} and no agent was offered or assigned",
                    )
                ]
            )
        assert c.agent_id is not None
        d.emit(InteractionAssigned, agent_id=c.agent_id, offer_id=None, queue_id=state.queue_id)
    elif state.state is S.OFFERED:
        if given(c.agent_id) and c.agent_id != state.offered_agent_id:
            raise precondition(
                state,
                f"interaction {state.interaction_id!r} is offered to another agent, "
                f"not {c.agent_id!r}",
            )
        assert state.offered_agent_id is not None
        d.emit(
            InteractionAssigned,
            agent_id=state.offered_agent_id,
            offer_id=state.offer_id,
            queue_id=state.queue_id,
        )
    elif given(c.agent_id) and c.agent_id != state.agent_id:
        raise precondition(
            state,
            f"interaction {state.interaction_id!r} is assigned to another agent, "
            f"not {c.agent_id!r}",
        )
    state = d.state
    assert state.agent_id is not None
    queued = state.first_enqueued_at is not None
    d.emit(
        InteractionConnected,
        agent_id=state.agent_id,
        queue_id=state.queue_id,
        first_answer=state.answered_at is None,
        queue_wait_ms=_ms(d.at - state.queue_entered_at) if state.queue_entered_at else None,
        total_wait_ms=_ms(state.wait_duration(d.at)) if queued else None,
        ring_ms=(
            _ms(d.at - state.offered_at) if state.accepted_offer_id and state.offered_at else None
        ),
    )


def _hold(d: _Decision, c: Hold) -> None:
    state = d.state
    _require_participant(state, c.agent_id)
    if state.channel not in HOLD_CHANNELS:
        raise precondition(state, f"a {state.channel.value} interaction cannot be put on hold")
    d.emit(InteractionHeld, agent_id=or_none(c.agent_id), hold_count=state.hold_count + 1)


def _resume(d: _Decision, c: Resume) -> None:
    state = d.state
    _require_participant(state, c.agent_id)
    d.emit(InteractionResumed, agent_id=or_none(c.agent_id), held_ms=_ms(state.open_segment(d.at)))


def _held_ms(state: Interaction, at: datetime) -> int:
    return _ms(state.open_segment(at)) if state.state is S.ON_HOLD else 0


def _transfer(d: _Decision, c: Transfer) -> None:
    state = d.state
    _require_participant(state, c.agent_id)
    assert state.agent_id is not None
    if c.to_agent_id and c.to_agent_id == state.agent_id:
        raise precondition(
            state, f"agent {c.to_agent_id!r} already handles interaction {state.interaction_id!r}"
        )
    leg = {
        "mode": c.mode,
        "from_agent_id": state.agent_id,
        "to_agent_id": or_none(c.to_agent_id),
        "agent_id": or_none(c.agent_id),
        "reason": or_none(c.reason),
        "agent_talk_ms": _ms(state.agent_talk_duration(d.at)),
        "agent_hold_ms": _ms(state.agent_hold_duration(d.at)),
        "held_ms": _held_ms(state, d.at),
    }
    if c.mode is TransferMode.CONSULTED:
        d.emit(InteractionTransferred, to_queue_id=or_none(c.to_queue_id), **leg)
        return
    queue_id = or_none(c.to_queue_id) or state.queue_id
    if queue_id is None:
        checks = Checks()
        checks.fail("to_queue_id", "is required: the interaction has never been queued")
        checks.done()
    assert queue_id is not None
    target = QueueTarget(
        queue_id=queue_id,
        priority=state.priority if c.priority is None else c.priority,
        required_skills=tuple(c.required_skills),
        target_agent_id=c.to_agent_id,
    )
    d.emit(InteractionTransferred, to_queue_id=queue_id, **leg)
    d.emit(InteractionQueued, **_queued_fields(d.state, target, QueueReason.TRANSFER, d.at))


def _conference(d: _Decision, c: Conference) -> None:
    state = d.state
    _require_participant(state, c.invited_by_agent_id)
    if state.channel not in CONFERENCE_CHANNELS:
        raise precondition(state, f"a {state.channel.value} interaction cannot be conferenced")
    if c.agent_id in state.participants:
        raise precondition(
            state, f"agent {c.agent_id!r} is already on interaction {state.interaction_id!r}"
        )
    if len(state.participants) >= MAX_PARTICIPANTS:
        raise precondition(state, f"at most {MAX_PARTICIPANTS} agents can be in a conference")
    d.emit(
        InteractionConferenced,
        agent_id=c.agent_id,
        invited_by_agent_id=or_none(c.invited_by_agent_id),
        participant_agent_ids=(*state.participants, c.agent_id),
        held_ms=_held_ms(state, d.at),
    )


def _leave_conference(d: _Decision, c: LeaveConference) -> None:
    state = d.state
    if c.agent_id not in state.participants:
        raise precondition(
            state, f"agent {c.agent_id!r} is not on interaction {state.interaction_id!r}"
        )
    remaining = tuple(p for p in state.participants if p != c.agent_id)
    if not remaining:
        raise precondition(
            state, "the only agent cannot leave the conversation; end or transfer it"
        )
    primary = state.agent_id if state.agent_id != c.agent_id else remaining[0]
    assert primary is not None
    d.emit(
        InteractionParticipantLeft,
        agent_id=c.agent_id,
        primary_agent_id=primary,
        participant_agent_ids=remaining,
    )


def _end(d: _Decision, c: End) -> None:
    state = d.state
    if state.is_live:
        _require_participant(state, c.agent_id)
        d.emit(
            InteractionEnded,
            ended_by=c.ended_by,
            reason=or_none(c.reason),
            agent_id=state.agent_id,
            talk_ms=_ms(state.talk_duration(d.at)),
            hold_ms=_ms(state.hold_duration(d.at)),
            hold_count=state.hold_count,
            agent_talk_ms=_ms(state.agent_talk_duration(d.at)),
            agent_hold_ms=_ms(state.agent_hold_duration(d.at)),
            held_ms=_held_ms(state, d.at),
        )
        return
    # Without an agent: self-service (CREATED) or closed from the queue by the system/a
    # supervisor (QUEUED). A customer who leaves a queue abandons it. An acting agent must be
    # on the interaction, and nobody is.
    _require_participant(state, c.agent_id)
    if state.state is S.QUEUED and c.ended_by is EndedBy.CUSTOMER:
        raise precondition(
            state, "a customer who leaves a queue abandons the interaction; use Abandon"
        )
    d.emit(
        InteractionEnded,
        ended_by=c.ended_by,
        reason=or_none(c.reason),
        talk_ms=0,
        hold_ms=0,
        hold_count=0,
    )
    _emit_completed(d, agent_id=None, disposition_codes=(), notes=None)


def _emit_completed(
    d: _Decision, *, agent_id: str | None, disposition_codes: tuple[str, ...], notes: str | None
) -> None:
    state = d.state
    talk, hold, wrap_up = state.talk_duration(), state.hold_duration(), state.wrap_up_duration()
    d.emit(
        InteractionCompleted,
        agent_id=agent_id,
        disposition_codes=disposition_codes,
        notes=notes,
        talk_ms=_ms(talk),
        hold_ms=_ms(hold),
        wrap_up_ms=_ms(wrap_up),
        handle_ms=_ms(talk + hold + wrap_up),
        wait_ms=_ms(state.wait_duration()),
    )


def _complete(d: _Decision, c: Complete) -> None:
    state = d.state
    if given(c.agent_id) and c.agent_id != state.agent_id:
        raise precondition(
            state,
            f"agent {c.agent_id!r} is not the wrap-up agent of interaction "
            f"{state.interaction_id!r}",
        )
    if state.state is S.WRAP_UP:
        assert state.agent_id is not None
        d.emit(WrapUpEnded, agent_id=state.agent_id, wrap_up_ms=_ms(state.wrap_up_duration(d.at)))
    _emit_completed(
        d,
        agent_id=state.agent_id,
        disposition_codes=tuple(c.disposition_codes),
        notes=or_none(c.notes),
    )


def _abandon(d: _Decision, c: Abandon) -> None:
    state = d.state
    d.emit(
        InteractionAbandoned,
        reason=or_none(c.reason),
        abandoned_in=state.state,
        queue_id=state.queue_id,
        waited_ms=_ms(state.wait_duration(d.at)),
        queue_wait_ms=_ms(d.at - state.queue_entered_at) if state.queue_entered_at else 0,
        agent_id=state.offered_agent_id or state.agent_id,
    )


def _fail(d: _Decision, c: Fail) -> None:
    state = d.state
    d.emit(
        InteractionFailed,
        failure_code=c.failure_code,
        detail=or_none(c.detail),
        failed_in=state.state,
        agent_id=state.agent_id or state.offered_agent_id,
        talk_ms=_ms(state.talk_duration(d.at)),
        hold_ms=_ms(state.hold_duration(d.at)),
    )


# --- content -------------------------------------------------------------------------------------


def _append_message(d: _Decision, c: AppendMessage) -> None:
    state = d.state
    if c.external_message_id and state.message_with_external_id(c.external_message_id):
        return  # seen before (a redelivered email, a retried webhook)
    if c.author.role is AuthorRole.AGENT and c.author.id not in state.participants:
        raise precondition(
            state,
            f"agent {c.author.id!r} is not on interaction {state.interaction_id!r} "
            f"and cannot write to its customer",
        )
    if len(state.messages) >= MAX_MESSAGES:
        raise precondition(state, f"an interaction holds at most {MAX_MESSAGES:,} messages")
    d.emit(
        MessageAppended,
        message_id=c.message_id,
        author=c.author.model_copy(
            update={"id": or_none(c.author.id), "display_name": or_none(c.author.display_name)}
        ),
        direction=c.direction,
        body=c.body,
        content_type=c.content_type or "text/plain",
        subject=or_none(c.subject),
        attachments=tuple(c.attachments),
        external_message_id=or_none(c.external_message_id),
        sent_at=at_millisecond(c.sent_at) if c.sent_at else None,
    )


def _add_note(d: _Decision, c: AddNote) -> None:
    state = d.state
    if len(state.notes) >= MAX_NOTES:
        raise precondition(state, f"an interaction holds at most {MAX_NOTES:,} notes")
    d.emit(NoteAdded, note_id=c.note_id, author_id=c.author_id, text=c.text)


def _append_transcript(d: _Decision, c: AppendTranscript) -> None:
    state = d.state
    if state.channel not in TRANSCRIPT_CHANNELS:
        raise precondition(state, f"a {state.channel.value} interaction has no transcript")
    if state.transcript_segment(c.segment_id) is not None:
        return  # seen before
    if len(state.transcript) >= MAX_TRANSCRIPT_SEGMENTS:
        raise precondition(
            state, f"an interaction holds at most {MAX_TRANSCRIPT_SEGMENTS:,} transcript segments"
        )
    d.emit(
        TranscriptAppended,
        segment_id=c.segment_id,
        speaker_role=c.speaker_role,
        speaker_id=or_none(c.speaker_id),
        text=c.text,
        start_offset_ms=c.start_offset_ms,
        end_offset_ms=c.end_offset_ms,
        confidence=c.confidence,
        language=or_none(c.language),
    )


# --- outcome and customer ------------------------------------------------------------------------


def _record_satisfaction(d: _Decision, c: RecordSatisfaction) -> None:
    state = d.state
    answer = {
        "score": c.score,
        "scale": c.scale or DEFAULT_SATISFACTION_SCALE,
        "comment": or_none(c.comment),
        "survey_id": or_none(c.survey_id),
    }
    recorded = state.satisfaction
    if recorded is not None:
        if all(getattr(recorded, k) == v for k, v in answer.items()):
            return  # the same answer again
        raise precondition(
            state, f"satisfaction is already recorded for interaction {state.interaction_id!r}"
        )
    d.emit(SatisfactionRecorded, **answer)


def _mark_repeat(d: _Decision, c: MarkRepeat) -> None:
    state = d.state
    if c.repeat_of_interaction_id == state.interaction_id:
        checks = Checks()
        checks.fail("repeat_of_interaction_id", "an interaction cannot repeat itself")
        checks.done()
    previous = at_millisecond(c.previous_created_at)
    if previous > state.created_at:
        checks = Checks()
        checks.fail("previous_created_at", "must not be after the interaction was created")
        checks.done()
    if state.repeat is not None:
        if state.repeat.repeat_of_interaction_id == c.repeat_of_interaction_id:
            return  # already marked
        raise precondition(
            state,
            f"interaction {state.interaction_id!r} is already marked a repeat of "
            f"{state.repeat.repeat_of_interaction_id!r}",
        )
    d.emit(
        InteractionMarkedRepeat,
        repeat_of_interaction_id=c.repeat_of_interaction_id,
        previous_created_at=previous,
        window_days=c.window_days,
    )


def _link_profile(d: _Decision, c: LinkProfile) -> None:
    state = d.state
    if c.profile_id == state.customer_profile_id:
        return
    d.emit(
        InteractionProfileLinked,
        profile_id=c.profile_id,
        previous_profile_id=state.customer_profile_id,
        reason=c.reason,
    )


_VALIDATORS: Final[Mapping[type[Any], Callable[[Any], None]]] = {
    CreateInteraction: _validate_create,
    Enqueue: _validate_enqueue,
    Offer: _validate_offer,
    WithdrawOffer: _validate_withdraw,
    Assign: _validate_assign,
    Connect: _validate_agent_only,
    Hold: _validate_agent_only,
    Resume: _validate_agent_only,
    Transfer: _validate_transfer,
    Conference: _validate_conference,
    LeaveConference: _validate_leave,
    End: _validate_end,
    Complete: _validate_complete,
    Abandon: _validate_abandon,
    Fail: _validate_fail,
    AppendMessage: _validate_message,
    AddNote: _validate_note,
    AppendTranscript: _validate_transcript,
    RecordSatisfaction: _validate_satisfaction,
    MarkRepeat: _validate_repeat,
    LinkProfile: _validate_link,
}

_HANDLERS: Final[Mapping[type[Any], Callable[[_Decision, Any], None]]] = {
    Enqueue: _enqueue,
    Offer: _offer,
    WithdrawOffer: _withdraw_offer,
    Assign: _assign,
    Connect: _connect,
    Hold: _hold,
    Resume: _resume,
    Transfer: _transfer,
    Conference: _conference,
    LeaveConference: _leave_conference,
    End: _end,
    Complete: _complete,
    Abandon: _abandon,
    Fail: _fail,
    AppendMessage: _append_message,
    AddNote: _add_note,
    AppendTranscript: _append_transcript,
    RecordSatisfaction: _record_satisfaction,
    MarkRepeat: _mark_repeat,
    LinkProfile: _link_profile,
}
