"""The pure ACD core of the routing service: queues, agents, policies, offers, decisions.

Imports nothing but the standard library, pydantic and `contactcenter.contracts`; never reads
a clock or a random source. One `RoutingEngine` per tenant:

    engine = RoutingEngine.from_events(tenant_id, stored_events)
    outcome = engine.execute(SetAgentState(agent_id="a-1", presence=Presence.AVAILABLE),
                             CommandContext(now=now))
    # append outcome.events (expected version: engine.version - len(outcome.events)),
    # push outcome.offers to desktops, arm a wake-up at engine.next_timer_at(),
    # then outcome.raise_error()
"""

from contactcenter.routing.domain import events
from contactcenter.routing.domain.commands import (
    AcceptOffer,
    AssignContact,
    CancelContact,
    Command,
    CommandContext,
    CompleteContact,
    ConfigureAgent,
    ConfigurePolicy,
    ConfigureQueue,
    EndContact,
    EndWrapUp,
    QueueContact,
    RecordAssignment,
    RejectOffer,
    SetAgentState,
    StepSpec,
    Tick,
)
from contactcenter.routing.domain.engine import Outcome, RoutingEngine
from contactcenter.routing.domain.events import (
    CONTEXT,
    EVENT_TYPES,
    STREAM_CATEGORY,
    RoutingEvent,
    stream_id_for,
)
from contactcenter.routing.domain.state import ContactStatus, WorkStatus
from contactcenter.routing.domain.timers import Timer, TimerKind
from contactcenter.routing.domain.values import (
    DEFAULT_CAPACITY,
    DEFAULT_CHANNEL_COSTS,
    EXCLUSIVE_CHANNELS,
    AgentState,
    Candidate,
    CandidateKind,
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
    Trigger,
    WrapUpEndReason,
)
from contactcenter.routing.domain.views import AgentView, ContactView, QueueSnapshot, WorkView

__all__ = [
    "CONTEXT",
    "DEFAULT_CAPACITY",
    "DEFAULT_CHANNEL_COSTS",
    "EVENT_TYPES",
    "EXCLUSIVE_CHANNELS",
    "STREAM_CATEGORY",
    "AcceptOffer",
    "AgentState",
    "AgentView",
    "AssignContact",
    "CancelContact",
    "Candidate",
    "CandidateKind",
    "Channel",
    "Command",
    "CommandContext",
    "CompleteContact",
    "ConfigureAgent",
    "ConfigurePolicy",
    "ConfigureQueue",
    "ContactStatus",
    "ContactView",
    "Decision",
    "EndContact",
    "EndWrapUp",
    "MaxWaitAction",
    "OfferCancelReason",
    "Outcome",
    "PolicyStep",
    "PreferredReleaseReason",
    "Presence",
    "QueueContact",
    "QueueReason",
    "QueueSnapshot",
    "RecordAssignment",
    "RejectOffer",
    "RemovalReason",
    "RoutingEngine",
    "RoutingEvent",
    "SelectionStrategy",
    "SetAgentState",
    "SkillRequirement",
    "StepSpec",
    "Tick",
    "Timer",
    "TimerKind",
    "Trigger",
    "WorkStatus",
    "WorkView",
    "WrapUpEndReason",
    "events",
    "stream_id_for",
]
