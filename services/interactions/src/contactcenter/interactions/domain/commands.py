"""Commands: what a caller asks of an interaction. `decide(state, command, context)` answers.

Commands are plain values; `decide` validates them (ValidationFailed naming the request field,
e.g. `queue.required_skills[0].min_proficiency`) and checks them against the state. Field
names follow the gRPC request fields so that violations map one to one. Optional text is None
or the empty string (proto3's default), both meaning "not given".

Ids that the service assigns (interaction, message, note, segment ids) are chosen by the
command handler, never by `decide`, so that deciding stays deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from contactcenter.interactions.domain.values import (
    AttachmentRef,
    Author,
    AuthorRole,
    Channel,
    Direction,
    EndedBy,
    MessageDirection,
    OfferWithdrawalReason,
    ProfileLinkReason,
    QueueReason,
    SkillRequirement,
    TransferMode,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandContext:
    """Who and when: the caller's tenant (from the token), the time (the handler's clock, never
    read by the domain) and the ids that tie the resulting events to their cause."""

    tenant_id: str
    now: datetime
    #: None: the events get a fresh correlation id (shared by all events of the command).
    correlation_id: UUID | None = None
    causation_id: UUID | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueTarget:
    """Where and how to queue. Empty skills/language/intent keep the interaction's current ones;
    attributes are merged into the current ones."""

    queue_id: str
    priority: int = 0
    required_skills: Sequence[SkillRequirement] = ()
    language: str | None = None
    intent: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    target_agent_id: str | None = None


# --- lifecycle -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateInteraction:
    interaction_id: str
    channel: Channel
    direction: Direction = Direction.INBOUND
    customer_profile_id: str | None = None
    customer_address: str | None = None
    entry_point: str | None = None
    subject: str | None = None
    language: str | None = None
    intent: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    external_ref: str | None = None
    #: Enqueue at once.
    queue: QueueTarget | None = None
    #: Assign to this agent at once (outbound, direct-to-agent); not with `queue`.
    agent_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Enqueue:
    """CREATED -> QUEUED, or QUEUED -> QUEUED (overflow/requeue; identical changes nothing).

    Validation paths are the flat fields of EnqueueRequest (`queue_id`, `priority`, ...)."""

    target: QueueTarget
    #: None: INITIAL from CREATED, REQUEUE from QUEUED. TRANSFER is refused (use Transfer).
    reason: QueueReason | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Offer:
    """From routing: an agent was reserved and the interaction offered to them."""

    offer_id: str
    agent_id: str
    queue_id: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WithdrawOffer:
    """From routing: the offer was rejected, timed out or cancelled."""

    offer_id: str
    reason: OfferWithdrawalReason


@dataclass(frozen=True, slots=True, kw_only=True)
class Assign:
    """From routing: the agent accepted the offer (or was assigned directly from the queue)."""

    agent_id: str
    offer_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Connect:
    agent_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    agent_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume:
    agent_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    mode: TransferMode
    to_queue_id: str | None = None
    to_agent_id: str | None = None
    #: The acting agent.
    agent_id: str | None = None
    #: BLIND only: the priority in the new queue (None keeps the current one).
    priority: int | None = None
    #: BLIND only: replaces the skill requirements (empty keeps them).
    required_skills: Sequence[SkillRequirement] = ()
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Conference:
    agent_id: str
    invited_by_agent_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveConference:
    agent_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class End:
    ended_by: EndedBy
    reason: str | None = None
    agent_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Complete:
    disposition_codes: Sequence[str] = ()
    notes: str | None = None
    agent_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Abandon:
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fail:
    failure_code: str
    detail: str | None = None


# --- content -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendMessage:
    #: Assigned by the command handler.
    message_id: str
    author: Author
    direction: MessageDirection
    body: str = ""
    content_type: str | None = None
    subject: str | None = None
    attachments: Sequence[AttachmentRef] = ()
    #: The source's id; an id seen before on this interaction appends nothing.
    external_message_id: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddNote:
    note_id: str
    author_id: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendTranscript:
    #: The gateway's id (or one assigned by the handler); an id seen before appends nothing.
    segment_id: str
    speaker_role: AuthorRole
    text: str
    speaker_id: str | None = None
    start_offset_ms: int = 0
    end_offset_ms: int = 0
    confidence: float | None = None
    language: str | None = None


# --- outcome and customer ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordSatisfaction:
    score: int
    #: 0 (proto default) means 5.
    scale: int = 5
    comment: str | None = None
    survey_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkRepeat:
    """From the FCR policy (see `repeat.py`): this contact repeats an earlier one."""

    repeat_of_interaction_id: str
    previous_created_at: datetime
    window_days: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkProfile:
    """From the profiles service: the customer was resolved to (or merged into) a profile."""

    profile_id: str
    reason: ProfileLinkReason = ProfileLinkReason.RESOLVED


Command = (
    CreateInteraction
    | Enqueue
    | Offer
    | WithdrawOffer
    | Assign
    | Connect
    | Hold
    | Resume
    | Transfer
    | Conference
    | LeaveConference
    | End
    | Complete
    | Abandon
    | Fail
    | AppendMessage
    | AddNote
    | AppendTranscript
    | RecordSatisfaction
    | MarkRepeat
    | LinkProfile
)
