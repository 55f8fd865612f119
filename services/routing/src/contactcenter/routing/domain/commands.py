"""Commands: what callers (gRPC, the interaction events consumer, the timer loop) ask of the
routing engine. `RoutingEngine.execute(command, context)` answers with an `Outcome`.

Commands are plain values; the engine validates them (ValidationFailed naming the request
field, e.g. `required_skills[0].min_proficiency`) and then checks them against its state.
Durations in configuration are whole seconds (`*_s`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from contactcenter.routing.domain.values import (
    DEFAULT_CAPACITY,
    DEFAULT_INTERRUPTIBLE,
    Channel,
    MaxWaitAction,
    Presence,
    QueueReason,
    SelectionStrategy,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandContext:
    """When, and the ids that tie the resulting events to their cause. `now` is the caller's
    clock (the domain never reads one); the engine never lets its own time go backwards."""

    now: datetime
    #: None: events about a contact carry the contact's correlation id, others a derived one.
    correlation_id: UUID | None = None
    causation_id: UUID | None = None


# --- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigureQueue:
    """Create or replace a queue (QueueConfigured carries the whole configuration)."""

    queue_id: str
    name: str = ""
    channels: tuple[Channel, ...] = (Channel.VOICE,)
    #: skill -> minimum proficiency 1..5 (0 means any level, as 1).
    required_skills: Mapping[str, int] = field(default_factory=dict)
    #: BCP 47 tag; a contact's own language overrides it.
    language: str | None = None
    #: Service level: `sl_target_percent` % of contacts answered within `sl_threshold_s`.
    sl_target_percent: int = 80
    sl_threshold_s: int = 20
    #: Queue priority 0..100: each point moves the queue's contacts ahead by `aging_s`.
    priority: int = 0
    #: Seconds of waiting one point of priority is worth (the aging rate: priority + wait/aging_s).
    aging_s: int = 10
    #: None: no maximum wait.
    max_wait_s: int | None = None
    max_wait_action: MaxWaitAction = MaxWaitAction.EXIT
    overflow_queue_id: str | None = None
    offer_timeout_s: int = 15
    #: 0: the agent is free as soon as the contact ends.
    wrap_up_s: int = 30
    strategy: SelectionStrategy = SelectionStrategy.LONGEST_IDLE
    policy_id: str | None = None
    #: How long a contact waits for its preferred (or last) agent before anyone may take it.
    preferred_agent_timeout_s: int = 30
    #: An agent who lets an offer of this queue time out goes to NOT_RESPONDING.
    not_responding_on_timeout: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigureAgent:
    """Create or replace an agent's routing profile (AgentConfigured carries all of it)."""

    agent_id: str
    name: str = ""
    #: skill -> proficiency 1..5.
    skills: Mapping[str, int] = field(default_factory=dict)
    languages: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    channels: tuple[Channel, ...] = (Channel.VOICE, Channel.CHAT, Channel.EMAIL)
    capacity: int = DEFAULT_CAPACITY
    #: Units one contact of a channel spends; missing channels cost the defaults.
    channel_costs: Mapping[Channel, int] = field(default_factory=dict)
    #: Work on these channels may be interrupted by a voice or video offer.
    interruptible_channels: tuple[Channel, ...] = tuple(sorted(DEFAULT_INTERRUPTIBLE))
    #: IANA time zone: "today" for the fewest-contacts-today strategy.
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepSpec:
    """One step of a policy (see `values.PolicyStep`, what PolicyConfigured records)."""

    after_s: int
    name: str = ""
    #: Added to every required minimum proficiency (-4..4; negative relaxes, positive narrows).
    min_proficiency_delta: int = 0
    include_queue_agents: bool = True
    agent_queues: tuple[str, ...] = ()
    agent_groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigurePolicy:
    """Create or replace a routing policy; each change is a new version."""

    policy_id: str
    name: str = ""
    #: Ordered by `after_s`, the first at 0; at most 16.
    steps: tuple[StepSpec, ...] = ()


# --- agents --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SetAgentState:
    """Presence set by the agent, a supervisor, or the heartbeat lease (OFFLINE)."""

    agent_id: str
    presence: Presence
    reason_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptOffer:
    offer_id: str
    agent_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectOffer:
    offer_id: str
    agent_id: str
    reason_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EndWrapUp:
    """The agent finished after-contact work (on one contact, or on all when None)."""

    agent_id: str
    interaction_id: str | None = None


# --- contacts (from the interactions stream) -----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueContact:
    """An interaction entered a queue (InteractionQueued). Repeating it for the queue the
    contact is already in changes nothing; another queue moves it (cancelling any offer and
    ending any assignment)."""

    interaction_id: str
    queue_id: str
    channel: Channel
    priority: int = 0
    #: skill -> minimum proficiency 1..5 (0 means any level, as 1); added to the queue's.
    required_skills: Mapping[str, int] = field(default_factory=dict)
    language: str | None = None
    #: The customer's preferred or last agent (target agent or attribute).
    preferred_agent_id: str | None = None
    #: When the contact first entered any queue (its age for ordering); None: now.
    first_enqueued_at: datetime | None = None
    reason: QueueReason = QueueReason.INITIAL


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelContact:
    """The customer abandoned, or the interaction was cancelled or failed."""

    interaction_id: str
    reason_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EndContact:
    """The conversation ended (InteractionEnded): the agent goes to wrap-up."""

    interaction_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteContact:
    """The interaction completed (wrap-up submitted): any wrap-up ends, capacity is freed."""

    interaction_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignContact:
    """Assign without an offer: a consulted transfer, or an agent picking a contact."""

    interaction_id: str
    agent_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordAssignment:
    """Interactions recorded that the contact is the agent's (InteractionAssigned): a fact
    routing follows and never refuses, e.g. a gateway connected a queued contact straight to
    an agent. The contact leaves its queue (a pending offer to someone else is cancelled) and
    the agent's capacity for the channel is seized as for an accepted offer, even beyond the
    agent's capacity or presence (the work exists). Routing's own assignment coming back, or
    the same fact again, changes nothing; the agent's own pending offer is accepted. An agent
    routing does not know only takes the contact out of its queue (ContactRemoved, reason
    `assigned_outside`, reason code `unknown_agent`); a contact routing does not hold is
    NotFound (nothing to follow: the caller logs it)."""

    interaction_id: str
    agent_id: str
    #: The offer the assignment took, if any (routing's own, when it made it).
    offer_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """Fire the timers due by `context.now` (every command does that first)."""


Command = (
    ConfigureQueue
    | ConfigureAgent
    | ConfigurePolicy
    | SetAgentState
    | AcceptOffer
    | RejectOffer
    | EndWrapUp
    | QueueContact
    | CancelContact
    | EndContact
    | CompleteContact
    | AssignContact
    | RecordAssignment
    | Tick
)
