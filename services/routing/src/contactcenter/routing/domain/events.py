"""The events of the routing context: `routing.<EventName>.v1`, published on `cc.routing.events.v1`.

The state of one tenant's routing is a fold over these events, in order, in one stream
(`routing/<tenant_id>/engine`; see `stream_id_for`): the engine's `version` is the number of
events folded, and an append expecting that version is what stops two instances from both
deciding for a tenant (the loser gets ABORTED and rebuilds).

`occurred_at` is whole milliseconds; so are durations (`*_ms`). Configuration events carry the
whole configuration (not a delta), so a consumer never needs an earlier one.

Never rename an event, change a field's meaning or remove a field: add a `.v2` and an upcaster.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import AwareDatetime, Field

from contactcenter.contracts.events import DomainEvent, event
from contactcenter.contracts.streams import stream_id
from contactcenter.routing.domain.values import (
    AgentState,
    Channel,
    Decision,
    MaxWaitAction,
    OfferCancelReason,
    PolicyStep,
    PreferredReleaseReason,
    Presence,
    QueueReason,
    RemovalReason,
    SelectionStrategy,
    SkillRequirement,
    WrapUpEndReason,
)

CONTEXT = "routing"
STREAM_CATEGORY = "routing"


def stream_id_for(tenant_id: str) -> str:
    """The one stream that holds a tenant's routing events."""
    return stream_id(STREAM_CATEGORY, tenant_id, "engine")


class RoutingEvent(DomainEvent):
    """Base of every routing event (not itself registered)."""


# --- configuration -------------------------------------------------------------------------------


@event
class QueueConfigured(RoutingEvent):
    event_type: ClassVar[str] = "routing.QueueConfigured.v1"

    queue_id: str
    config_version: int = Field(ge=1)
    name: str = ""
    channels: tuple[Channel, ...]
    required_skills: tuple[SkillRequirement, ...] = ()
    language: str | None = None
    sl_target_percent: int = Field(ge=1, le=100)
    sl_threshold_s: int = Field(ge=1)
    priority: int = Field(ge=0, le=100)
    aging_s: int = Field(ge=1)
    max_wait_s: int | None = Field(default=None, ge=1)
    max_wait_action: MaxWaitAction = MaxWaitAction.EXIT
    overflow_queue_id: str | None = None
    offer_timeout_s: int = Field(ge=1)
    wrap_up_s: int = Field(ge=0)
    strategy: SelectionStrategy
    policy_id: str | None = None
    preferred_agent_timeout_s: int = Field(ge=0)
    not_responding_on_timeout: bool = True


@event
class AgentConfigured(RoutingEvent):
    event_type: ClassVar[str] = "routing.AgentConfigured.v1"

    agent_id: str
    config_version: int = Field(ge=1)
    name: str = ""
    skills: dict[str, int] = Field(default_factory=dict)
    languages: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    channels: tuple[Channel, ...]
    capacity: int = Field(ge=1)
    channel_costs: dict[Channel, int]
    interruptible_channels: tuple[Channel, ...] = ()
    time_zone: str = "UTC"


@event
class PolicyConfigured(RoutingEvent):
    event_type: ClassVar[str] = "routing.PolicyConfigured.v1"

    policy_id: str
    version: int = Field(ge=1)
    name: str = ""
    steps: tuple[PolicyStep, ...]


# --- agents --------------------------------------------------------------------------------------


@event
class AgentStateChanged(RoutingEvent):
    """The reported state changed (presence, or busy / wrap-up / available by the work held)."""

    event_type: ClassVar[str] = "routing.AgentStateChanged.v1"

    agent_id: str
    state: AgentState
    previous_state: AgentState
    presence: Presence
    reason_code: str | None = None
    #: Capacity units in use (interrupted work not counted) and the budget.
    load: int = Field(ge=0)
    capacity: int = Field(ge=1)


# --- contacts ------------------------------------------------------------------------------------


@event
class ContactQueued(RoutingEvent):
    """A contact waits in a queue (routing's copy of what it needs, from InteractionQueued)."""

    event_type: ClassVar[str] = "routing.ContactQueued.v1"

    interaction_id: str
    queue_id: str
    channel: Channel
    priority: int = Field(ge=0, le=100)
    required_skills: tuple[SkillRequirement, ...] = ()
    language: str | None = None
    reason: QueueReason = QueueReason.INITIAL
    #: When it first entered any queue: its age, kept across overflow and requeue.
    first_enqueued_at: AwareDatetime
    preferred_agent_id: str | None = None
    #: Only the preferred agent may take it until then (None: no preferred phase).
    preferred_until: AwareDatetime | None = None


@event
class PolicyStepReached(RoutingEvent):
    """The contact's pool changed: it reached the next step of its queue's policy."""

    event_type: ClassVar[str] = "routing.PolicyStepReached.v1"

    interaction_id: str
    queue_id: str
    policy_id: str | None = None
    policy_version: int = Field(ge=0)
    step: int = Field(ge=0)
    step_name: str = ""
    #: Time in the queue so far.
    waited_ms: int = Field(ge=0)


@event
class PreferredAgentReleased(RoutingEvent):
    """The contact stops waiting for its preferred agent: the queue's pool may take it."""

    event_type: ClassVar[str] = "routing.PreferredAgentReleased.v1"

    interaction_id: str
    queue_id: str
    agent_id: str
    reason: PreferredReleaseReason


@event
class MaxWaitReached(RoutingEvent):
    """The contact waited the queue's maximum; ContactOverflowed or ContactRemoved follows."""

    event_type: ClassVar[str] = "routing.MaxWaitReached.v1"

    interaction_id: str
    queue_id: str
    waited_ms: int = Field(ge=0)
    action: MaxWaitAction
    overflow_queue_id: str | None = None


@event
class ContactOverflowed(RoutingEvent):
    """The contact moved to another queue (it keeps its age and its own requirements)."""

    event_type: ClassVar[str] = "routing.ContactOverflowed.v1"

    interaction_id: str
    from_queue_id: str
    to_queue_id: str
    priority: int = Field(ge=0, le=100)
    required_skills: tuple[SkillRequirement, ...] = ()
    #: 1 for the first overflow of the contact.
    hop: int = Field(ge=1)


@event
class ContactRemoved(RoutingEvent):
    """The contact left routing without (further) work: abandoned, cancelled, ended in the
    queue, or sent away by its maximum wait. Any work it held is released without wrap-up."""

    event_type: ClassVar[str] = "routing.ContactRemoved.v1"

    interaction_id: str
    queue_id: str
    reason: RemovalReason
    reason_code: str | None = None
    #: The agent whose work on it was released, if any.
    agent_id: str | None = None
    waited_ms: int = Field(ge=0)


# --- offers and work -----------------------------------------------------------------------------


@event
class OfferIssued(RoutingEvent):
    """The contact is offered to the agent, whose capacity is reserved until accept, reject or
    `expires_at`. `decision` explains the choice."""

    event_type: ClassVar[str] = "routing.OfferIssued.v1"

    interaction_id: str
    offer_id: str
    agent_id: str
    queue_id: str
    channel: Channel
    expires_at: AwareDatetime
    #: Capacity units reserved.
    cost: int = Field(ge=1)
    #: Time in the queue until this offer.
    wait_ms: int = Field(ge=0)
    decision: Decision


class _OfferEnded(RoutingEvent):
    interaction_id: str
    offer_id: str
    agent_id: str
    queue_id: str
    #: How long the offer was presented.
    ring_ms: int = Field(ge=0)


@event
class OfferAccepted(_OfferEnded):
    """The agent took the offer; ContactAssigned follows in the same append."""

    event_type: ClassVar[str] = "routing.OfferAccepted.v1"


@event
class OfferRejected(_OfferEnded):
    """The agent declined: the contact is back at the front of its queue (original age kept)."""

    event_type: ClassVar[str] = "routing.OfferRejected.v1"

    reason_code: str | None = None


@event
class OfferTimedOut(_OfferEnded):
    """Nobody answered in time: the contact is back at the front of its queue."""

    event_type: ClassVar[str] = "routing.OfferTimedOut.v1"


@event
class OfferCancelled(_OfferEnded):
    """Routing withdrew the offer (the contact went away, or the agent did)."""

    event_type: ClassVar[str] = "routing.OfferCancelled.v1"

    reason: OfferCancelReason


@event
class ContactAssigned(RoutingEvent):
    """The contact is the agent's work now (after OfferAccepted, or directly without an offer)."""

    event_type: ClassVar[str] = "routing.ContactAssigned.v1"

    interaction_id: str
    agent_id: str
    queue_id: str
    channel: Channel
    offer_id: str | None = None
    cost: int = Field(ge=1)
    #: Time in the queue until assigned; within the queue's service-level threshold or not.
    wait_ms: int = Field(ge=0)
    within_service_level: bool


@event
class ContactEnded(RoutingEvent):
    """The conversation ended. With `wrap_up_until` the agent's capacity stays held for
    after-contact work until then (or until WrapUpEnded); without it, it is free now."""

    event_type: ClassVar[str] = "routing.ContactEnded.v1"

    interaction_id: str
    agent_id: str
    queue_id: str
    wrap_up_until: AwareDatetime | None = None


@event
class WrapUpEnded(RoutingEvent):
    """After-contact work is over: the capacity it held is free."""

    event_type: ClassVar[str] = "routing.WrapUpEnded.v1"

    interaction_id: str
    agent_id: str
    queue_id: str
    reason: WrapUpEndReason


EVENT_TYPES: tuple[type[RoutingEvent], ...] = (
    QueueConfigured,
    AgentConfigured,
    PolicyConfigured,
    AgentStateChanged,
    ContactQueued,
    PolicyStepReached,
    PreferredAgentReleased,
    MaxWaitReached,
    ContactOverflowed,
    ContactRemoved,
    OfferIssued,
    OfferAccepted,
    OfferRejected,
    OfferTimedOut,
    OfferCancelled,
    ContactAssigned,
    ContactEnded,
    WrapUpEnded,
)
