"""Value types of the interactions domain: states, channels, roles, and small value objects.

Enum values are the lower-case strings that appear in event JSON (and, for `InteractionState`,
in the `current_state` of a refused transition), so they are part of the wire contract.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Channel(StrEnum):
    VOICE = "voice"
    EMAIL = "email"
    CHAT = "chat"
    SMS = "sms"
    SOCIAL = "social"
    VIDEO = "video"


#: Channels whose customer can be put on hold.
HOLD_CHANNELS = frozenset({Channel.VOICE, Channel.VIDEO})
#: Channels where several agents can be in the conversation at once.
CONFERENCE_CHANNELS = frozenset({Channel.VOICE, Channel.VIDEO, Channel.CHAT})
#: Channels with speech, hence speech-to-text transcripts.
TRANSCRIPT_CHANNELS = frozenset({Channel.VOICE, Channel.VIDEO})


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class InteractionState(StrEnum):
    """The lifecycle of an interaction.

    CREATED -> QUEUED -> OFFERED -> ASSIGNED -> CONNECTED <-> ON_HOLD -> WRAP_UP -> ENDED ->
    COMPLETED, with ABANDONED (before an agent talked to the customer) and FAILED as the other
    final states. ENDED means "the conversation is over and wrap-up (if any) is done; completion
    is pending"; the service completes in the same append, so readers normally see it only
    between two events of one command.
    """

    CREATED = "created"
    QUEUED = "queued"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    CONNECTED = "connected"
    ON_HOLD = "on_hold"
    ENDED = "ended"
    WRAP_UP = "wrap_up"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {InteractionState.COMPLETED, InteractionState.ABANDONED, InteractionState.FAILED}
)
#: States in which an agent talks with the customer (the customer may be on hold).
LIVE_STATES = frozenset({InteractionState.CONNECTED, InteractionState.ON_HOLD})
#: States counted as waiting: in a queue, offered, or assigned but not yet connected.
WAITING_STATES = frozenset(
    {InteractionState.QUEUED, InteractionState.OFFERED, InteractionState.ASSIGNED}
)


class QueueReason(StrEnum):
    INITIAL = "initial"
    OVERFLOW = "overflow"
    REQUEUE = "requeue"
    TRANSFER = "transfer"


class OfferWithdrawalReason(StrEnum):
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class TransferMode(StrEnum):
    BLIND = "blind"
    CONSULTED = "consulted"


class EndedBy(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    SYSTEM = "system"


class AuthorRole(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"


class MessageDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ProfileLinkReason(StrEnum):
    RESOLVED = "resolved"
    MERGED = "merged"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SkillRequirement(_Value):
    """A skill the agent needs: proficiency 1 (lowest) .. 10; `min_proficiency` 0 means any."""

    skill: str
    min_proficiency: int = 0


class Author(_Value):
    """Who wrote a message: the role, and the agent/profile/bot id (required for agents)."""

    role: AuthorRole
    id: str | None = None
    display_name: str | None = None


class AttachmentRef(_Value):
    """An attachment by reference; the bytes live where `uri` points."""

    uri: str
    attachment_id: str | None = None
    file_name: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None


_MS = timedelta(milliseconds=1)


def to_millis(duration: timedelta) -> int:
    """A duration as whole milliseconds (exact for the millisecond times the domain records)."""
    return duration // _MS


def at_millisecond(moment: datetime) -> datetime:
    """`moment` in UTC, truncated to the millisecond; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got {moment!r}")
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)
