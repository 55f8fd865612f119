"""Routing's events that WFM reads, and their consumer (adherence's state log).

`cc.routing.events.v1` (CloudEvents, key = tenant); the reader is tolerant (fields not listed
are ignored, other event types skipped):

- `routing.AgentStateChanged.v1` {agent_id, state, previous_state, presence, reason_code?,
  load, capacity} plus the envelope fields (`event_id`, `tenant_id`, `occurred_at`, ...).
  `state` is one of offline, available, away, busy, wrap_up, not_responding; WFM keeps
  (agent_id, occurred_at, state) and reads the rest only to validate the contract.

Exactly once: the consumer runs through servicekit's `subscribe_projection` (event ids are
claimed with `apply_once` in the insert's transaction); the insert is also keyed by the event
id. An event that does not parse goes to the DLQ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contactcenter.contracts.topics import topic_for
from contactcenter.eventstore import PgConnection
from contactcenter.messaging.cloudevents import EventEnvelope

ROUTING_TOPIC: Final = topic_for("routing").name
AGENT_STATE_CHANGED: Final = "routing.AgentStateChanged.v1"


class AgentStateChanged(BaseModel):
    """What WFM reads of routing's AgentStateChanged (routing owns the full model)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    agent_id: str = Field(min_length=1)
    state: str = Field(min_length=1)
    previous_state: str | None = None
    presence: str | None = None
    reason_code: str | None = None
    load: int = Field(default=0, ge=0)
    capacity: int = Field(default=1, ge=0)
    occurred_at: AwareDatetime | None = None


class AgentStateLog:
    """The projection keeping agent states for adherence."""

    name: str = "wfm-agent-states"
    topics: Sequence[str] = (ROUTING_TOPIC,)

    def __init__(self, schema: str, on_change: object = None) -> None:
        self._table = f'"{schema}".agent_state_log'
        self._on_change = on_change

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        if envelope.type != AGENT_STATE_CHANGED:
            return
        e = AgentStateChanged.model_validate(envelope.data)
        await conn.execute(
            f"insert into {self._table} (tenant_id, agent_id, occurred_at, state, event_id)"
            " values ($1, $2, $3, $4, $5) on conflict do nothing",
            envelope.tenant_id,
            e.agent_id,
            e.occurred_at or envelope.time,
            e.state,
            envelope.id,
        )
        if callable(self._on_change):
            self._on_change()
