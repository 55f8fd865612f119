"""The other services' events that reporting folds: the contract it expects, read tolerantly.

CloudEvents on Kafka, key = tenant. Readers ignore fields not listed (producers may add
fields) and skip other event types. Each event also carries the usual envelope fields
(`event_id`, `tenant_id`, `occurred_at`, `correlation_id`, `causation_id`); `occurred_at`
(the CloudEvent `time`) is the instant every fact is counted at.

`cc.interactions.events.v1` (contacts: offered, answered, abandoned, legs and handle time):

- `interactions.InteractionQueued.v1` {queue_id, channel, reason?}: entered a queue.
- `interactions.InteractionConnected.v1` {agent_id, queue_wait_ms?}: answered.
- `interactions.InteractionAbandoned.v1` {queue_wait_ms?}: left unanswered.
- `interactions.InteractionFailed.v1` {}: gone, counted nowhere.
- `interactions.InteractionTransferred.v1` {mode: blind|consulted, from_agent_id,
  to_agent_id?, agent_talk_ms, agent_hold_ms}: the from agent's leg ends.
- `interactions.InteractionEnded.v1` {agent_id?, agent_talk_ms, agent_hold_ms}: the last
  leg's talk and hold; wrap-up follows.
- `interactions.WrapUpEnded.v1` {agent_id, wrap_up_ms}: the leg ends (AHT counts here).
- `interactions.InteractionCompleted.v1` {wrap_up_ms?}: final.

`cc.routing.events.v1` (agents and queue settings):

- `routing.QueueConfigured.v1` {queue_id, name?, sl_threshold_s, sl_target_percent}.
- `routing.AgentConfigured.v1` {agent_id, name?, queues?, channels?, capacity?}.
- `routing.AgentStateChanged.v1` {agent_id, state: available|busy|wrap_up|away|
  not_responding|offline, reason_code?, load?, capacity?}.

Routing's contact events (ContactQueued, OfferIssued ...) repeat what the interactions stream
says and are not counted a second time.

`cc.reporting.events.v1`: this service's own configuration (domain/events.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field

from contactcenter.contracts.topics import topic_for
from contactcenter.reporting.domain import facts as f
from contactcenter.reporting.domain.intervals import is_valid_zone
from contactcenter.reporting.domain.values import (
    DEFAULT_TIME_ZONE,
    ServiceLevelVariant,
)

INTERACTIONS_TOPIC: Final = topic_for("interactions").name
ROUTING_TOPIC: Final = topic_for("routing").name
REPORTING_TOPIC: Final = topic_for("reporting").name
TOPICS: Final = (INTERACTIONS_TOPIC, ROUTING_TOPIC, REPORTING_TOPIC)


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class _Contact(_In):
    interaction_id: str = Field(min_length=1)


class InteractionQueued(_Contact):
    queue_id: str = Field(min_length=1)
    channel: str = Field(min_length=1)
    reason: str = "initial"


class InteractionConnected(_Contact):
    agent_id: str = Field(min_length=1)
    queue_wait_ms: int | None = Field(default=None, ge=0)


class InteractionAbandoned(_Contact):
    queue_wait_ms: int | None = Field(default=None, ge=0)


class InteractionTransferred(_Contact):
    mode: str
    from_agent_id: str = Field(min_length=1)
    to_agent_id: str | None = None
    agent_talk_ms: int = Field(default=0, ge=0)
    agent_hold_ms: int = Field(default=0, ge=0)


class InteractionEnded(_Contact):
    agent_id: str | None = None
    agent_talk_ms: int = Field(default=0, ge=0)
    agent_hold_ms: int = Field(default=0, ge=0)


class WrapUpEnded(_Contact):
    agent_id: str = Field(min_length=1)
    wrap_up_ms: int = Field(default=0, ge=0)


class InteractionCompleted(_Contact):
    wrap_up_ms: int = Field(default=0, ge=0)


class QueueConfigured(_In):
    queue_id: str = Field(min_length=1)
    name: str = ""
    sl_threshold_s: int = Field(ge=1)
    sl_target_percent: int = Field(ge=1, le=100)


class AgentConfigured(_In):
    agent_id: str = Field(min_length=1)
    name: str = ""
    queues: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    capacity: int = Field(default=1, ge=1)


class AgentStateChanged(_In):
    agent_id: str = Field(min_length=1)
    state: str = Field(min_length=1)
    reason_code: str | None = None
    load: int = Field(default=0, ge=0)
    capacity: int = Field(default=1, ge=1)


class TenantReportingConfigured(_In):
    time_zone: str = DEFAULT_TIME_ZONE


class QueueReportingConfigured(_In):
    queue_id: str = Field(min_length=1)
    service_level_variant: ServiceLevelVariant
    short_abandon_threshold_s: int = Field(ge=0)
    service_level_threshold_s: int = Field(ge=1)
    service_level_target_percent: int = Field(ge=1, le=100)


def _queued(t: str, at: int, e: InteractionQueued) -> f.Fact:
    return f.ContactQueued(t, at, e.interaction_id, e.queue_id, e.channel, e.reason)


def _connected(t: str, at: int, e: InteractionConnected) -> f.Fact:
    return f.ContactAnswered(t, at, e.interaction_id, e.agent_id, e.queue_wait_ms)


def _abandoned(t: str, at: int, e: InteractionAbandoned) -> f.Fact:
    return f.ContactAbandoned(t, at, e.interaction_id, e.queue_wait_ms)


def _failed(t: str, at: int, e: _Contact) -> f.Fact:
    return f.ContactFailed(t, at, e.interaction_id)


def _transferred(t: str, at: int, e: InteractionTransferred) -> f.Fact:
    return f.ContactTransferred(
        t, at, e.interaction_id, e.from_agent_id, e.mode == "blind", e.to_agent_id,
        e.agent_talk_ms, e.agent_hold_ms,
    )  # fmt: skip


def _ended(t: str, at: int, e: InteractionEnded) -> f.Fact:
    return f.ConversationEnded(
        t, at, e.interaction_id, e.agent_id, e.agent_talk_ms, e.agent_hold_ms
    )


def _wrapped(t: str, at: int, e: WrapUpEnded) -> f.Fact:
    return f.WrapUpFinished(t, at, e.interaction_id, e.agent_id, e.wrap_up_ms)


def _completed(t: str, at: int, e: InteractionCompleted) -> f.Fact:
    return f.ContactCompleted(t, at, e.interaction_id, e.wrap_up_ms)


def _queue(t: str, at: int, e: QueueConfigured) -> f.Fact:
    return f.QueueConfigured(t, at, e.queue_id, e.name, e.sl_threshold_s, e.sl_target_percent)


def _agent(t: str, at: int, e: AgentConfigured) -> f.Fact:
    return f.AgentConfigured(t, at, e.agent_id, e.name, e.queues, e.channels, e.capacity)


def _agent_state(t: str, at: int, e: AgentStateChanged) -> f.Fact:
    return f.AgentStateChanged(t, at, e.agent_id, e.state, e.reason_code, e.load, e.capacity)


def _tenant_config(t: str, at: int, e: TenantReportingConfigured) -> f.Fact:
    # A zone this machine does not know is reported in UTC rather than failing the stream.
    zone = e.time_zone if is_valid_zone(e.time_zone) else DEFAULT_TIME_ZONE
    return f.TenantReportingConfigured(t, at, zone)


def _queue_config(t: str, at: int, e: QueueReportingConfigured) -> f.Fact:
    return f.QueueReportingConfigured(
        t, at, e.queue_id, e.service_level_variant, e.short_abandon_threshold_s,
        e.service_level_threshold_s, e.service_level_target_percent,
    )  # fmt: skip


_Reader = tuple[type[_In], Callable[[str, int, Any], f.Fact]]

#: Wire name -> (tolerant model, fact builder). Other types are skipped.
READERS: Final[dict[str, _Reader]] = {
    "interactions.InteractionQueued.v1": (InteractionQueued, _queued),
    "interactions.InteractionConnected.v1": (InteractionConnected, _connected),
    "interactions.InteractionAbandoned.v1": (InteractionAbandoned, _abandoned),
    "interactions.InteractionFailed.v1": (_Contact, _failed),
    "interactions.InteractionTransferred.v1": (InteractionTransferred, _transferred),
    "interactions.InteractionEnded.v1": (InteractionEnded, _ended),
    "interactions.WrapUpEnded.v1": (WrapUpEnded, _wrapped),
    "interactions.InteractionCompleted.v1": (InteractionCompleted, _completed),
    "routing.QueueConfigured.v1": (QueueConfigured, _queue),
    "routing.AgentConfigured.v1": (AgentConfigured, _agent),
    "routing.AgentStateChanged.v1": (AgentStateChanged, _agent_state),
    "reporting.TenantReportingConfigured.v1": (TenantReportingConfigured, _tenant_config),
    "reporting.QueueReportingConfigured.v1": (QueueReportingConfigured, _queue_config),
}


def is_relevant(event_type: str) -> bool:
    return event_type in READERS


def read_fact(event_type: str, tenant_id: str, at_ms: int, data: dict[str, Any] | str) -> f.Fact:
    """The fact of one relevant event (a dict from the envelope, or the JSON text stored in
    the inbox); raises pydantic.ValidationError when the event breaks the contract."""
    model, build = READERS[event_type]
    parsed = (
        model.model_validate_json(data) if isinstance(data, str) else model.model_validate(data)
    )
    return build(tenant_id, at_ms, parsed)
