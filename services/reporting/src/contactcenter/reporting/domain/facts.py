"""What the reporting fold consumes: the facts it needs from the other services' events (and
its own configuration events), already read by the tolerant readers of `adapters/inbound.py`.

Every fact names its tenant and the instant it happened (`at`, epoch milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass

from contactcenter.reporting.domain.values import ServiceLevelVariant


@dataclass(frozen=True, slots=True)
class _Fact:
    tenant_id: str
    at: int


# --- contacts (interactions) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactQueued(_Fact):
    """Entered a queue (first time, overflow, requeue, blind transfer)."""

    interaction_id: str
    queue_id: str
    channel: str
    reason: str = "initial"


@dataclass(frozen=True, slots=True)
class ContactAnswered(_Fact):
    """Connected to an agent. `queue_wait_ms`: the wait in the current queue, when known."""

    interaction_id: str
    agent_id: str
    queue_wait_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ContactAbandoned(_Fact):
    """The customer left before talking to an agent."""

    interaction_id: str
    queue_wait_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ContactFailed(_Fact):
    """A technical failure: the contact is gone and counts in no outcome."""

    interaction_id: str


@dataclass(frozen=True, slots=True)
class ContactTransferred(_Fact):
    """The agent's leg ended by a transfer (BLIND: back to a queue; CONSULTED: to an agent)."""

    interaction_id: str
    from_agent_id: str
    blind: bool
    to_agent_id: str | None
    agent_talk_ms: int
    agent_hold_ms: int


@dataclass(frozen=True, slots=True)
class ConversationEnded(_Fact):
    """The conversation ended; the last agent's leg (talk + hold) waits for its wrap-up."""

    interaction_id: str
    agent_id: str | None
    agent_talk_ms: int
    agent_hold_ms: int


@dataclass(frozen=True, slots=True)
class WrapUpFinished(_Fact):
    interaction_id: str
    agent_id: str
    wrap_up_ms: int


@dataclass(frozen=True, slots=True)
class ContactCompleted(_Fact):
    """Final. Finishes a leg whose wrap-up end was not reported separately."""

    interaction_id: str
    wrap_up_ms: int = 0


# --- agents and queues (routing) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentConfigured(_Fact):
    agent_id: str
    name: str
    queues: tuple[str, ...]
    channels: tuple[str, ...]
    capacity: int


@dataclass(frozen=True, slots=True)
class AgentStateChanged(_Fact):
    """routing's AgentState (available, busy, wrap_up, away, not_responding, offline)."""

    agent_id: str
    state: str
    reason_code: str | None
    load: int
    capacity: int


@dataclass(frozen=True, slots=True)
class QueueConfigured(_Fact):
    """routing's queue configuration: its service-level threshold and target win."""

    queue_id: str
    name: str
    sl_threshold_s: int
    sl_target_percent: int


# --- reporting's own configuration -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TenantReportingConfigured(_Fact):
    time_zone: str


@dataclass(frozen=True, slots=True)
class QueueReportingConfigured(_Fact):
    queue_id: str
    variant: ServiceLevelVariant
    short_abandon_threshold_s: int
    #: Used while routing has not configured the queue.
    sl_threshold_s: int
    sl_target_percent: int


Fact = (
    ContactQueued
    | ContactAnswered
    | ContactAbandoned
    | ContactFailed
    | ContactTransferred
    | ConversationEnded
    | WrapUpFinished
    | ContactCompleted
    | AgentConfigured
    | AgentStateChanged
    | QueueConfigured
    | TenantReportingConfigured
    | QueueReportingConfigured
)
