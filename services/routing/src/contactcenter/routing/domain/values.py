"""Value types of the routing domain: channels, states, strategies, reasons, and time helpers.

Enum values are the lower-case strings that appear in event JSON, so they are part of the wire
contract: add values, never rename them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field


class Channel(StrEnum):
    VOICE = "voice"
    EMAIL = "email"
    CHAT = "chat"
    SMS = "sms"
    SOCIAL = "social"
    VIDEO = "video"


#: Channels that take the agent's whole attention: never offered beside other work unless that
#: work is interruptible, and nothing else is offered while one is held.
EXCLUSIVE_CHANNELS: Final = frozenset({Channel.VOICE, Channel.VIDEO})
#: The same as plain strings, as the engine's state keeps channels.
EXCLUSIVE_VALUES: Final = frozenset(channel.value for channel in EXCLUSIVE_CHANNELS)
CHANNEL_VALUES: Final = tuple(channel.value for channel in Channel)

#: The capacity budget of an agent, in units each channel spends. 60 divides by 1, 2, 3, 4, 5, 6,
#: so "a third" or "a fifth" of an agent are whole numbers.
DEFAULT_CAPACITY: Final = 60
DEFAULT_CHANNEL_COSTS: Final = {
    Channel.VOICE: 60,
    Channel.VIDEO: 60,
    Channel.CHAT: 20,
    Channel.SMS: 20,
    Channel.SOCIAL: 20,
    Channel.EMAIL: 12,
}
#: Work on these channels may be interrupted by a voice or video offer unless configured otherwise.
DEFAULT_INTERRUPTIBLE: Final = frozenset({Channel.EMAIL})

MIN_PROFICIENCY: Final = 1
MAX_PROFICIENCY: Final = 5
MIN_PRIORITY: Final = 0
MAX_PRIORITY: Final = 100
#: How many candidates an offer's explanation lists.
EXPLAIN_TOP: Final = 3
#: A contact overflowed this many times exits instead (a loop of overflow targets ends).
MAX_OVERFLOW_HOPS: Final = 8


class Presence(StrEnum):
    """What the agent (or, for NOT_RESPONDING, the system) set."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    AWAY = "away"
    NOT_RESPONDING = "not_responding"


class AgentState(StrEnum):
    """The state reported for an agent: presence, refined by the work held when available.

    BUSY: an offer or an assigned contact; WRAP_UP: only after-contact work left.
    """

    OFFLINE = "offline"
    AVAILABLE = "available"
    AWAY = "away"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    NOT_RESPONDING = "not_responding"


class SelectionStrategy(StrEnum):
    """How a queue picks among several eligible agents (when agents wait for contacts)."""

    LONGEST_IDLE = "longest_idle"
    MOST_SKILLED = "most_skilled"
    LEAST_OCCUPIED = "least_occupied"
    ROUND_ROBIN = "round_robin"
    FEWEST_CONTACTS_TODAY = "fewest_contacts_today"


class MaxWaitAction(StrEnum):
    OVERFLOW = "overflow"
    EXIT = "exit"


class Trigger(StrEnum):
    """What made the engine look for a match."""

    CONTACT_QUEUED = "contact_queued"
    CONTACT_RETURNED = "contact_returned"
    CONTACT_OVERFLOWED = "contact_overflowed"
    STEP_REACHED = "step_reached"
    PREFERRED_RELEASED = "preferred_released"
    AGENT_AVAILABLE = "agent_available"
    CONFIGURATION_CHANGED = "configuration_changed"


class CandidateKind(StrEnum):
    AGENT = "agent"
    CONTACT = "contact"


class OfferCancelReason(StrEnum):
    CONTACT_CANCELLED = "contact_cancelled"
    CONTACT_ENDED = "contact_ended"
    CONTACT_REQUEUED = "contact_requeued"
    CONTACT_ASSIGNED = "contact_assigned"
    AGENT_UNAVAILABLE = "agent_unavailable"
    AGENT_NOT_RESPONDING = "agent_not_responding"
    AGENT_RECONFIGURED = "agent_reconfigured"


class RemovalReason(StrEnum):
    """Why a contact left routing before (or instead of) being worked."""

    CANCELLED = "cancelled"
    ENDED = "ended"
    MAX_WAIT_EXIT = "max_wait_exit"
    #: Interactions assigned it to an agent routing does not know (reason code
    #: `unknown_agent`), or to another agent than the one routing assigned (with `agent_id`,
    #: reason code `assigned_elsewhere`): routing's copy leaves, no wrap-up.
    ASSIGNED_OUTSIDE = "assigned_outside"


class QueueReason(StrEnum):
    INITIAL = "initial"
    REQUEUE = "requeue"
    TRANSFER = "transfer"
    OVERFLOW = "overflow"


class PreferredReleaseReason(StrEnum):
    TIMEOUT = "timeout"
    AGENT_UNAVAILABLE = "agent_unavailable"
    DECLINED = "declined"


class WrapUpEndReason(StrEnum):
    TIMEOUT = "timeout"
    AGENT = "agent"
    COMPLETED = "completed"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SkillRequirement(_Value):
    """A skill the agent needs at `min_proficiency` or above (1 lowest .. 5 expert)."""

    skill: str = Field(min_length=1, max_length=128)
    min_proficiency: int = Field(default=MIN_PROFICIENCY, ge=MIN_PROFICIENCY, le=MAX_PROFICIENCY)


class PolicyStep(_Value):
    """One ring of the bullseye: from `after_s` seconds in the queue on, until the next step.

    The pool is the queue's own agents (unless `include_queue_agents` is false: a narrowed
    step) plus the agents serving `agent_queues` and the members of `agent_groups`; every
    required minimum proficiency moves by `min_proficiency_delta` (negative relaxes, positive
    narrows to experts), kept within 1..5.
    """

    after_s: int = Field(ge=0)
    name: str = ""
    min_proficiency_delta: int = Field(default=0, ge=-4, le=4)
    include_queue_agents: bool = True
    agent_queues: tuple[str, ...] = ()
    agent_groups: tuple[str, ...] = ()


#: The step of a queue without a policy: its own agents, its own requirements.
DEFAULT_STEP: Final = PolicyStep(after_s=0, name="default")


class Candidate(_Value):
    """One candidate a decision considered, best first; `score`: higher is better."""

    kind: CandidateKind
    id: str
    queue_id: str | None = None
    rank: int = Field(ge=1)
    score: float
    detail: str = ""


class Decision(_Value):
    """Why an offer went to this agent: what triggered the look, under which policy step, the
    top candidates with their scores, and the reason in words."""

    trigger: Trigger
    reason: str
    strategy: SelectionStrategy
    policy_id: str | None = None
    policy_version: int = Field(default=0, ge=0)
    step: int = Field(default=0, ge=0)
    step_name: str = ""
    #: True when the contact waited for its preferred (or last) agent.
    preferred: bool = False
    #: Best first. Agents when the contact chose (score per the strategy); contacts when the
    #: agent chose (score: seconds past the contact's virtual deadline, higher is more at risk).
    candidates: tuple[Candidate, ...] = ()
    #: Agents that matched every requirement (at least: a longest-idle search stops once the
    #: top few are certain), or queues with a matching contact when the agent chose.
    eligible: int = Field(default=0, ge=0)


# --- time ----------------------------------------------------------------------------------------

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got {moment!r}")
    return (moment - EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def language_key(tag: str) -> str:
    """Languages match on their primary subtag: an `en` agent serves an `en-GB` customer."""
    return tag.split("-", 1)[0].lower()
