"""The events of the interactions context: `interactions.<EventName>.v1`.

Published on `cc.interactions.events.v1` (keyed by tenant) by the outbox relay.

Every event names its interaction (`interaction_id`; the stream is
`interaction/<tenant_id>/<interaction_id>`). `occurred_at` is the moment of the fact, in UTC at
millisecond precision; durations in the events (`*_ms`) are whole milliseconds computed from
those timestamps, so a consumer can take them as they are or recompute them exactly.

Events are self-contained for their consumers: `InteractionQueued` carries the full routing
requirements in effect (not a delta) so that routing never needs an earlier event, and the
events that close a conversation carry its talk, hold and wrap-up figures.

Never rename an event, change a field's meaning or remove a field: add a `.v2` and an upcaster.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field

from contactcenter.contracts.events import DomainEvent, event
from contactcenter.interactions.domain.values import (
    AttachmentRef,
    Author,
    AuthorRole,
    Channel,
    Direction,
    EndedBy,
    InteractionState,
    MessageDirection,
    OfferWithdrawalReason,
    ProfileLinkReason,
    QueueReason,
    SkillRequirement,
    TransferMode,
)

CONTEXT = "interactions"
#: Event store stream category: `interaction/<tenant_id>/<interaction_id>`.
STREAM_CATEGORY = "interaction"


class InteractionEvent(DomainEvent):
    """Base of every interactions event (not itself registered)."""

    interaction_id: str = Field(min_length=1, max_length=128)


# --- lifecycle -----------------------------------------------------------------------------------


@event
class InteractionCreated(InteractionEvent):
    """A contact arrived (or an outbound one was started). State CREATED."""

    event_type: ClassVar[str] = "interactions.InteractionCreated.v1"

    channel: Channel
    direction: Direction = Direction.INBOUND
    customer_profile_id: str | None = None
    #: E.164 number, email address, chat or social handle of the customer.
    customer_address: str | None = None
    #: Dialled number, mailbox, chat widget or page where the customer reached us.
    entry_point: str | None = None
    subject: str | None = None
    language: str | None = None
    intent: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    #: The source's id: SIP Call-ID, chat session id, email thread id ...
    external_ref: str | None = None


@event
class InteractionQueued(InteractionEvent):
    """Entered a queue (first time, overflow, requeue or blind transfer). State QUEUED.

    Carries the full routing requirements in effect, the channel and the customer, so routing
    can act on this event alone.
    """

    event_type: ClassVar[str] = "interactions.InteractionQueued.v1"

    queue_id: str
    reason: QueueReason
    channel: Channel
    priority: int = 0
    required_skills: tuple[SkillRequirement, ...] = ()
    language: str | None = None
    intent: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    target_agent_id: str | None = None
    customer_profile_id: str | None = None
    previous_queue_id: str | None = None
    #: When the interaction first entered any queue (equals occurred_at the first time).
    first_enqueued_at: AwareDatetime


@event
class InteractionOffered(InteractionEvent):
    """Routing reserved an agent and offered the interaction (ringing). State OFFERED."""

    event_type: ClassVar[str] = "interactions.InteractionOffered.v1"

    offer_id: str
    agent_id: str
    queue_id: str | None = None
    expires_at: AwareDatetime | None = None
    #: Time in the current queue until this offer.
    queue_wait_ms: int = Field(ge=0)


@event
class InteractionOfferWithdrawn(InteractionEvent):
    """The offer ended without acceptance (rejected, timed out, cancelled). State QUEUED."""

    event_type: ClassVar[str] = "interactions.InteractionOfferWithdrawn.v1"

    offer_id: str
    agent_id: str
    reason: OfferWithdrawalReason
    #: How long the offer was presented.
    ring_ms: int = Field(ge=0)


@event
class InteractionAssigned(InteractionEvent):
    """An agent accepted the offer (or was assigned directly). State ASSIGNED."""

    event_type: ClassVar[str] = "interactions.InteractionAssigned.v1"

    agent_id: str
    offer_id: str | None = None
    queue_id: str | None = None


@event
class InteractionConnected(InteractionEvent):
    """The agent and the customer are connected (answered). State CONNECTED."""

    event_type: ClassVar[str] = "interactions.InteractionConnected.v1"

    agent_id: str
    queue_id: str | None = None
    #: True for the first connection to any agent (answer time of the interaction).
    first_answer: bool
    #: Wait in the current queue; None if never queued.
    queue_wait_ms: int | None = Field(default=None, ge=0)
    #: Wait over every queue so far; None if never queued.
    total_wait_ms: int | None = Field(default=None, ge=0)
    #: Since the latest offer; None without an offer.
    ring_ms: int | None = Field(default=None, ge=0)


@event
class InteractionHeld(InteractionEvent):
    """The customer was put on hold. State ON_HOLD."""

    event_type: ClassVar[str] = "interactions.InteractionHeld.v1"

    agent_id: str | None = None
    #: 1 for the first hold of the interaction, 2 for the second ...
    hold_count: int = Field(ge=1)


@event
class InteractionResumed(InteractionEvent):
    """The customer was taken off hold. State CONNECTED."""

    event_type: ClassVar[str] = "interactions.InteractionResumed.v1"

    agent_id: str | None = None
    #: Length of the hold that ended.
    held_ms: int = Field(ge=0)


@event
class InteractionTransferred(InteractionEvent):
    """Transferred away from `from_agent_id`.

    BLIND: back to a queue (an `InteractionQueued` with reason TRANSFER follows in the same
    append); state QUEUED. CONSULTED: to `to_agent_id`, who is now connected; state CONNECTED.
    """

    event_type: ClassVar[str] = "interactions.InteractionTransferred.v1"

    mode: TransferMode
    from_agent_id: str
    to_queue_id: str | None = None
    to_agent_id: str | None = None
    #: Who initiated it (None: the from agent or a system).
    agent_id: str | None = None
    reason: str | None = None
    #: The transferring agent's leg: talk and hold since they were connected.
    agent_talk_ms: int = Field(ge=0)
    agent_hold_ms: int = Field(ge=0)
    #: Length of the hold this transfer ended (0 when the customer was not on hold).
    held_ms: int = Field(default=0, ge=0)


@event
class InteractionConferenced(InteractionEvent):
    """Another agent joined the conversation. State CONNECTED (a hold ends)."""

    event_type: ClassVar[str] = "interactions.InteractionConferenced.v1"

    agent_id: str
    invited_by_agent_id: str | None = None
    #: Every agent connected after the join, primary first.
    participant_agent_ids: tuple[str, ...]
    held_ms: int = Field(default=0, ge=0)


@event
class InteractionParticipantLeft(InteractionEvent):
    """A conferenced agent left; the conversation goes on with the others."""

    event_type: ClassVar[str] = "interactions.InteractionParticipantLeft.v1"

    agent_id: str
    primary_agent_id: str
    participant_agent_ids: tuple[str, ...]


@event
class InteractionEnded(InteractionEvent):
    """The conversation ended. State WRAP_UP with an agent; ENDED without one (an
    `InteractionCompleted` follows in the same append)."""

    event_type: ClassVar[str] = "interactions.InteractionEnded.v1"

    ended_by: EndedBy
    reason: str | None = None
    #: The primary agent at the end (None without an agent).
    agent_id: str | None = None
    talk_ms: int = Field(ge=0)
    hold_ms: int = Field(ge=0)
    hold_count: int = Field(ge=0)
    #: The last agent's leg.
    agent_talk_ms: int = Field(default=0, ge=0)
    agent_hold_ms: int = Field(default=0, ge=0)
    #: Length of the hold the end closed (0 when not on hold).
    held_ms: int = Field(default=0, ge=0)


@event
class WrapUpEnded(InteractionEvent):
    """The agent finished after-contact work. State ENDED (InteractionCompleted follows)."""

    event_type: ClassVar[str] = "interactions.WrapUpEnded.v1"

    agent_id: str
    wrap_up_ms: int = Field(ge=0)


@event
class InteractionCompleted(InteractionEvent):
    """Final: done, with disposition codes. State COMPLETED."""

    event_type: ClassVar[str] = "interactions.InteractionCompleted.v1"

    agent_id: str | None = None
    disposition_codes: tuple[str, ...] = ()
    notes: str | None = None
    talk_ms: int = Field(ge=0)
    hold_ms: int = Field(ge=0)
    wrap_up_ms: int = Field(ge=0)
    #: talk + hold + wrap-up.
    handle_ms: int = Field(ge=0)
    #: Time spent waiting in queues.
    wait_ms: int = Field(ge=0)


@event
class InteractionAbandoned(InteractionEvent):
    """Final: the customer left before talking to an agent. State ABANDONED."""

    event_type: ClassVar[str] = "interactions.InteractionAbandoned.v1"

    reason: str | None = None
    #: CREATED, QUEUED, OFFERED or ASSIGNED.
    abandoned_in: InteractionState
    queue_id: str | None = None
    #: Waiting time over every queue (0 if never queued).
    waited_ms: int = Field(ge=0)
    #: Waiting time in the current queue (0 if never queued).
    queue_wait_ms: int = Field(ge=0)
    #: The agent it was offered or assigned to, if any.
    agent_id: str | None = None


@event
class InteractionFailed(InteractionEvent):
    """Final: a technical failure. State FAILED."""

    event_type: ClassVar[str] = "interactions.InteractionFailed.v1"

    failure_code: str
    detail: str | None = None
    failed_in: InteractionState
    agent_id: str | None = None
    talk_ms: int = Field(default=0, ge=0)
    hold_ms: int = Field(default=0, ge=0)


# --- content -------------------------------------------------------------------------------------


@event
class MessageAppended(InteractionEvent):
    """A message on the contact: an email body, a chat line, an SMS, a social post."""

    event_type: ClassVar[str] = "interactions.MessageAppended.v1"

    message_id: str
    author: Author
    direction: MessageDirection
    body: str = ""
    content_type: str = "text/plain"
    subject: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    #: The source's id (email Message-ID, provider message id); unique per interaction.
    external_message_id: str | None = None
    #: When the source says it was sent; informational.
    sent_at: AwareDatetime | None = None


@event
class NoteAdded(InteractionEvent):
    """An internal note (never shown to the customer)."""

    event_type: ClassVar[str] = "interactions.NoteAdded.v1"

    note_id: str
    author_id: str
    text: str


@event
class TranscriptAppended(InteractionEvent):
    """A final speech-to-text segment of a voice or video interaction."""

    event_type: ClassVar[str] = "interactions.TranscriptAppended.v1"

    segment_id: str
    speaker_role: AuthorRole
    speaker_id: str | None = None
    text: str
    start_offset_ms: int = Field(ge=0)
    end_offset_ms: int = Field(ge=0)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    language: str | None = None


# --- outcome and customer ------------------------------------------------------------------------


@event
class SatisfactionRecorded(InteractionEvent):
    """The customer's satisfaction survey answer (CSAT)."""

    event_type: ClassVar[str] = "interactions.SatisfactionRecorded.v1"

    score: int = Field(ge=1)
    scale: int = Field(ge=3, le=10)
    comment: str | None = None
    survey_id: str | None = None


@event
class InteractionMarkedRepeat(InteractionEvent):
    """First-contact resolution: this contact repeats an earlier one of the same customer
    profile made within `window_days`."""

    event_type: ClassVar[str] = "interactions.InteractionMarkedRepeat.v1"

    repeat_of_interaction_id: str
    previous_created_at: AwareDatetime
    window_days: int = Field(ge=1)


@event
class InteractionProfileLinked(InteractionEvent):
    """The customer's profile was resolved, or changed by a profile merge."""

    event_type: ClassVar[str] = "interactions.InteractionProfileLinked.v1"

    profile_id: str
    previous_profile_id: str | None = None
    reason: ProfileLinkReason


#: Every event class of the context, in declaration order.
EVENT_TYPES: tuple[type[InteractionEvent], ...] = (
    InteractionCreated,
    InteractionQueued,
    InteractionOffered,
    InteractionOfferWithdrawn,
    InteractionAssigned,
    InteractionConnected,
    InteractionHeld,
    InteractionResumed,
    InteractionTransferred,
    InteractionConferenced,
    InteractionParticipantLeft,
    InteractionEnded,
    WrapUpEnded,
    InteractionCompleted,
    InteractionAbandoned,
    InteractionFailed,
    MessageAppended,
    NoteAdded,
    TranscriptAppended,
    SatisfactionRecorded,
    InteractionMarkedRepeat,
    InteractionProfileLinked,
)
