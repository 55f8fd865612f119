"""The Interaction aggregate: its state is a fold over its events.

    state = Interaction.from_events(events)      # or state.apply(event) one at a time

`apply` never refuses: events are facts already decided (by `decide`, see `decisions.py`).
The fold is also the full read view of one interaction (messages, notes and transcript
included), which is what GetInteraction and WatchInteraction show.

Time accounting: every event closes the current *segment* (the time since the state was
entered or the primary agent changed) when it changes the state or the primary agent; the
segment's length goes to the total of its state and, while an agent talks (CONNECTED/ON_HOLD),
to that agent's leg. Talk, hold, wrap-up and waiting times are sums of those segments, hence
exact (all timestamps are at millisecond precision). The `*_duration(as_of)` methods add the
open segment up to `as_of` for a live view.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

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
from contactcenter.interactions.domain.values import (
    LIVE_STATES,
    WAITING_STATES,
    Channel,
    Direction,
    EndedBy,
    InteractionState,
    SkillRequirement,
    TransferMode,
)

_ZERO = timedelta(0)


def _no_time() -> Mapping[InteractionState, timedelta]:
    return MappingProxyType({})


S = InteractionState


@dataclass(frozen=True, slots=True, kw_only=True)
class Interaction:
    """One contact, from creation to completion. Immutable: `apply` returns a new one."""

    # identity and origin
    interaction_id: str
    tenant_id: str
    channel: Channel
    direction: Direction
    state: InteractionState
    #: Number of events applied (1 after InteractionCreated).
    version: int
    created_at: datetime
    updated_at: datetime
    customer_profile_id: str | None = None
    customer_address: str | None = None
    entry_point: str | None = None
    subject: str | None = None
    external_ref: str | None = None

    # routing
    queue_id: str | None = None
    priority: int = 0
    required_skills: tuple[SkillRequirement, ...] = ()
    language: str | None = None
    intent: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    target_agent_id: str | None = None
    #: The pending offer (state OFFERED).
    offer_id: str | None = None
    offered_agent_id: str | None = None
    offer_expires_at: datetime | None = None
    #: The offer the current agent accepted.
    accepted_offer_id: str | None = None
    #: The primary agent: assigned, talking, or doing wrap-up.
    agent_id: str | None = None
    #: Every agent connected, primary first (several in a conference).
    participants: tuple[str, ...] = ()
    offer_count: int = 0
    transfer_count: int = 0
    hold_count: int = 0

    # moments
    first_enqueued_at: datetime | None = None
    queue_entered_at: datetime | None = None
    offered_at: datetime | None = None
    assigned_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    wrap_up_ended_at: datetime | None = None
    completed_at: datetime | None = None
    abandoned_at: datetime | None = None
    failed_at: datetime | None = None

    # time accounting (see the module docstring)
    segment_started_at: datetime
    time_in_state: Mapping[InteractionState, timedelta] = field(default_factory=_no_time)
    agent_talk: timedelta = _ZERO
    agent_hold: timedelta = _ZERO

    # outcome
    ended_by: EndedBy | None = None
    end_reason: str | None = None
    disposition_codes: tuple[str, ...] = ()
    completion_notes: str | None = None
    abandon_reason: str | None = None
    failure_code: str | None = None
    failure_detail: str | None = None
    satisfaction: SatisfactionRecorded | None = None
    repeat: InteractionMarkedRepeat | None = None

    # content
    messages: tuple[MessageAppended, ...] = ()
    notes: tuple[NoteAdded, ...] = ()
    transcript: tuple[TranscriptAppended, ...] = ()

    # --- folding ---------------------------------------------------------------------------------

    @classmethod
    def from_events(cls, events: Iterable[InteractionEvent]) -> Interaction:
        """The state after `events` (the interaction's whole stream, in order)."""
        iterator = iter(events)
        first = next(iterator, None)
        if not isinstance(first, InteractionCreated):
            raise ValueError(
                "an interaction's stream starts with InteractionCreated, got "
                f"{type(first).__name__ if first is not None else 'no events'}"
            )
        state = cls.created(first)
        for later in iterator:
            # In place: `state` is private until returned (much faster than a copy per event).
            for name, value in state._changes(later).items():
                object.__setattr__(state, name, value)
        return state

    @classmethod
    def created(cls, event: InteractionCreated) -> Interaction:
        return cls(
            interaction_id=event.interaction_id,
            tenant_id=event.tenant_id,
            channel=event.channel,
            direction=event.direction,
            state=S.CREATED,
            version=1,
            created_at=event.occurred_at,
            updated_at=event.occurred_at,
            segment_started_at=event.occurred_at,
            customer_profile_id=event.customer_profile_id,
            customer_address=event.customer_address,
            entry_point=event.entry_point,
            subject=event.subject,
            external_ref=event.external_ref,
            language=event.language,
            intent=event.intent,
            attributes=MappingProxyType(dict(event.attributes)),
        )

    def apply(self, event: InteractionEvent) -> Interaction:
        """The state after one more event (a new Interaction; this one is unchanged)."""
        return replace(self, **self._changes(event))

    def _changes(self, event: InteractionEvent) -> dict[str, Any]:
        """The fields that `event` changes."""
        if event.interaction_id != self.interaction_id or event.tenant_id != self.tenant_id:
            raise ValueError(
                f"event {event.event_type} of interaction {event.interaction_id!r} "
                f"(tenant {event.tenant_id!r}) applied to {self.interaction_id!r} "
                f"(tenant {self.tenant_id!r})"
            )
        # Exact-type dispatch: events are final classes, and isinstance() against pydantic
        # models (an ABC-style check per case) made folding several times slower.
        handler = _APPLIERS.get(type(event))
        if handler is None:
            if isinstance(event, InteractionCreated):
                raise ValueError(f"interaction {self.interaction_id!r} was already created")
            raise TypeError(f"unknown interactions event {type(event).__name__}")
        return handler(self, event)

    # --- one method per event: the fields it changes ---------------------------------------------

    def _on_queued(self, event: InteractionQueued) -> dict[str, Any]:
        return self._advance(
            event,
            S.QUEUED,
            agent_id=None,
            participants=(),
            queue_id=event.queue_id,
            priority=event.priority,
            required_skills=event.required_skills,
            language=event.language,
            intent=event.intent,
            attributes=MappingProxyType(dict(event.attributes)),
            target_agent_id=event.target_agent_id,
            first_enqueued_at=self.first_enqueued_at or event.first_enqueued_at,
            queue_entered_at=event.occurred_at,
            **_NO_OFFER,
        )

    def _on_offered(self, event: InteractionOffered) -> dict[str, Any]:
        return self._advance(
            event,
            S.OFFERED,
            offer_id=event.offer_id,
            offered_agent_id=event.agent_id,
            offer_expires_at=event.expires_at,
            offered_at=event.occurred_at,
            offer_count=self.offer_count + 1,
        )

    def _on_offer_withdrawn(self, event: InteractionOfferWithdrawn) -> dict[str, Any]:
        return self._advance(event, S.QUEUED, **_NO_OFFER)

    def _on_assigned(self, event: InteractionAssigned) -> dict[str, Any]:
        return self._advance(
            event,
            S.ASSIGNED,
            agent_id=event.agent_id,
            participants=(event.agent_id,),
            accepted_offer_id=event.offer_id,
            assigned_at=event.occurred_at,
            **_NO_OFFER,
        )

    def _on_connected(self, event: InteractionConnected) -> dict[str, Any]:
        return self._advance(
            event,
            S.CONNECTED,
            agent_id=event.agent_id,
            participants=self.participants or (event.agent_id,),
            answered_at=self.answered_at or event.occurred_at,
        )

    def _on_held(self, event: InteractionHeld) -> dict[str, Any]:
        return self._advance(event, S.ON_HOLD, hold_count=event.hold_count)

    def _on_resumed(self, event: InteractionResumed) -> dict[str, Any]:
        return self._advance(event, S.CONNECTED)

    def _on_transferred(self, event: InteractionTransferred) -> dict[str, Any]:
        if event.mode is TransferMode.BLIND:
            return self._advance(
                event,
                S.QUEUED,
                agent_id=None,
                participants=(),
                accepted_offer_id=None,
                transfer_count=self.transfer_count + 1,
            )
        to_agent = event.to_agent_id or self.agent_id
        others = tuple(p for p in self.participants if p not in (to_agent, self.agent_id))
        return self._advance(
            event,
            S.CONNECTED,
            agent_id=to_agent,
            participants=(to_agent, *others) if to_agent else others,
            queue_id=event.to_queue_id or self.queue_id,
            accepted_offer_id=None,
            transfer_count=self.transfer_count + 1,
        )

    def _on_conferenced(self, event: InteractionConferenced) -> dict[str, Any]:
        return self._advance(event, S.CONNECTED, participants=event.participant_agent_ids)

    def _on_participant_left(self, event: InteractionParticipantLeft) -> dict[str, Any]:
        return self._advance(
            event,
            self.state,
            agent_id=event.primary_agent_id,
            participants=event.participant_agent_ids,
        )

    def _on_ended(self, event: InteractionEnded) -> dict[str, Any]:
        return self._advance(
            event,
            S.WRAP_UP if event.agent_id else S.ENDED,
            participants=(event.agent_id,) if event.agent_id else (),
            ended_at=event.occurred_at,
            ended_by=event.ended_by,
            end_reason=event.reason,
        )

    def _on_wrap_up_ended(self, event: WrapUpEnded) -> dict[str, Any]:
        return self._advance(event, S.ENDED, wrap_up_ended_at=event.occurred_at)

    def _on_completed(self, event: InteractionCompleted) -> dict[str, Any]:
        return self._advance(
            event,
            S.COMPLETED,
            participants=(),
            completed_at=event.occurred_at,
            disposition_codes=event.disposition_codes,
            completion_notes=event.notes,
        )

    def _on_abandoned(self, event: InteractionAbandoned) -> dict[str, Any]:
        return self._advance(
            event,
            S.ABANDONED,
            participants=(),
            abandoned_at=event.occurred_at,
            abandon_reason=event.reason,
            **_NO_OFFER,
        )

    def _on_failed(self, event: InteractionFailed) -> dict[str, Any]:
        return self._advance(
            event,
            S.FAILED,
            participants=(),
            failed_at=event.occurred_at,
            failure_code=event.failure_code,
            failure_detail=event.detail,
            **_NO_OFFER,
        )

    def _on_message(self, event: MessageAppended) -> dict[str, Any]:
        return self._touch(event, messages=(*self.messages, event))

    def _on_note(self, event: NoteAdded) -> dict[str, Any]:
        return self._touch(event, notes=(*self.notes, event))

    def _on_transcript(self, event: TranscriptAppended) -> dict[str, Any]:
        return self._touch(event, transcript=(*self.transcript, event))

    def _on_satisfaction(self, event: SatisfactionRecorded) -> dict[str, Any]:
        return self._touch(event, satisfaction=event)

    def _on_marked_repeat(self, event: InteractionMarkedRepeat) -> dict[str, Any]:
        return self._touch(event, repeat=event)

    def _on_profile_linked(self, event: InteractionProfileLinked) -> dict[str, Any]:
        return self._touch(event, customer_profile_id=event.profile_id)

    def _touch(self, event: InteractionEvent, **changes: Any) -> dict[str, Any]:
        """An event that changes neither the state nor the agent."""
        return {"version": self.version + 1, "updated_at": event.occurred_at, **changes}

    def _advance(
        self, event: InteractionEvent, state: InteractionState, **changes: Any
    ) -> dict[str, Any]:
        """Close the open segment if the state or the primary agent changes, then apply."""
        at = event.occurred_at
        agent = changes.get("agent_id", self.agent_id)
        if state is self.state and agent == self.agent_id:
            return self._touch(event, **changes)
        elapsed = max(at - self.segment_started_at, _ZERO)
        totals = dict(self.time_in_state)
        totals[self.state] = totals.get(self.state, _ZERO) + elapsed
        talk, hold = self.agent_talk, self.agent_hold
        if self.state is S.CONNECTED:
            talk += elapsed
        elif self.state is S.ON_HOLD:
            hold += elapsed
        if agent != self.agent_id:
            talk, hold = _ZERO, _ZERO
        return {
            "state": state,
            "version": self.version + 1,
            "updated_at": at,
            "segment_started_at": at,
            "time_in_state": MappingProxyType(totals),
            "agent_talk": talk,
            "agent_hold": hold,
            **changes,
        }

    # --- derived figures -------------------------------------------------------------------------

    def time_in(self, *states: InteractionState, as_of: datetime | None = None) -> timedelta:
        """Total time spent in `states`; with `as_of`, including the open segment up to then."""
        total = sum((self.time_in_state.get(s, _ZERO) for s in states), _ZERO)
        if as_of is not None and self.state in states:
            total += max(as_of - self.segment_started_at, _ZERO)
        return total

    def talk_duration(self, as_of: datetime | None = None) -> timedelta:
        """Time connected and off hold, over every agent."""
        return self.time_in(S.CONNECTED, as_of=as_of)

    def hold_duration(self, as_of: datetime | None = None) -> timedelta:
        """Time on hold, over every hold."""
        return self.time_in(S.ON_HOLD, as_of=as_of)

    def wrap_up_duration(self, as_of: datetime | None = None) -> timedelta:
        return self.time_in(S.WRAP_UP, as_of=as_of)

    def wait_duration(self, as_of: datetime | None = None) -> timedelta:
        """Time waiting: queued, offered, or assigned and not yet connected."""
        return self.time_in(*WAITING_STATES, as_of=as_of)

    def handle_duration(self, as_of: datetime | None = None) -> timedelta:
        """Talk + hold + wrap-up."""
        return self.talk_duration(as_of) + self.hold_duration(as_of) + self.wrap_up_duration(as_of)

    def agent_talk_duration(self, as_of: datetime | None = None) -> timedelta:
        """The current agent's leg: talk since they were connected."""
        open_segment = _ZERO
        if as_of is not None and self.state is S.CONNECTED:
            open_segment = max(as_of - self.segment_started_at, _ZERO)
        return self.agent_talk + open_segment

    def agent_hold_duration(self, as_of: datetime | None = None) -> timedelta:
        """The current agent's leg: hold since they were connected."""
        open_segment = _ZERO
        if as_of is not None and self.state is S.ON_HOLD:
            open_segment = max(as_of - self.segment_started_at, _ZERO)
        return self.agent_hold + open_segment

    def open_segment(self, as_of: datetime) -> timedelta:
        """How long the current state (and agent) has lasted at `as_of`."""
        return max(as_of - self.segment_started_at, _ZERO)

    # --- lookups ---------------------------------------------------------------------------------

    @property
    def is_final(self) -> bool:
        return self.state.is_final

    @property
    def is_live(self) -> bool:
        """An agent and the customer are in conversation (the customer may be on hold)."""
        return self.state in LIVE_STATES

    def message_with_external_id(self, external_message_id: str) -> MessageAppended | None:
        for message in self.messages:
            if message.external_message_id == external_message_id:
                return message
        return None

    def transcript_segment(self, segment_id: str) -> TranscriptAppended | None:
        for segment in self.transcript:
            if segment.segment_id == segment_id:
                return segment
        return None


_NO_OFFER: dict[str, Any] = {"offer_id": None, "offered_agent_id": None, "offer_expires_at": None}


_APPLIERS: dict[type[InteractionEvent], Callable[[Interaction, Any], dict[str, Any]]] = {
    InteractionQueued: Interaction._on_queued,
    InteractionOffered: Interaction._on_offered,
    InteractionOfferWithdrawn: Interaction._on_offer_withdrawn,
    InteractionAssigned: Interaction._on_assigned,
    InteractionConnected: Interaction._on_connected,
    InteractionHeld: Interaction._on_held,
    InteractionResumed: Interaction._on_resumed,
    InteractionTransferred: Interaction._on_transferred,
    InteractionConferenced: Interaction._on_conferenced,
    InteractionParticipantLeft: Interaction._on_participant_left,
    InteractionEnded: Interaction._on_ended,
    WrapUpEnded: Interaction._on_wrap_up_ended,
    InteractionCompleted: Interaction._on_completed,
    InteractionAbandoned: Interaction._on_abandoned,
    InteractionFailed: Interaction._on_failed,
    MessageAppended: Interaction._on_message,
    NoteAdded: Interaction._on_note,
    TranscriptAppended: Interaction._on_transcript,
    SatisfactionRecorded: Interaction._on_satisfaction,
    InteractionMarkedRepeat: Interaction._on_marked_repeat,
    InteractionProfileLinked: Interaction._on_profile_linked,
}
