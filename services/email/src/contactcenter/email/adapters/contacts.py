"""The email thread follows its contact: `thread_contacts` (migrations/0003) from the
interactions service's events on `cc.interactions.events.v1`.

Read (tolerant: other fields and event types are ignored; every event carries interaction_id):

- `interactions.InteractionCreated.v1` {channel, external_ref}: an EMAIL interaction whose
  `external_ref` is a thread id becomes that thread's contact (a later one, opened by a reply
  after the earlier one closed, replaces it).
- `InteractionQueued` {queue_id}, `InteractionAssigned` / `InteractionConnected` {agent_id},
  `InteractionTransferred` {mode, to_agent_id, to_queue_id}: the contact's queue and agent
  (a transferred thread's replies are recorded on the contact with its new agent).
- `InteractionEnded`, `WrapUpEnded`: no longer live; `InteractionCompleted`,
  `InteractionAbandoned`, `InteractionFailed`: closed (the next customer reply opens a new
  contact, which the interactions service decides; EmailReceived says so in `contact_closed`).

A servicekit projection: rows and the applied event id in one transaction (a redelivered event
changes nothing), an event that does not parse goes to the DLQ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from contactcenter.contracts.topics import topic_for
from contactcenter.eventstore import PgConnection
from contactcenter.messaging.cloudevents import EventEnvelope

INTERACTIONS_TOPIC: Final = topic_for("interactions").name

_P: Final = "interactions."
CREATED: Final = f"{_P}InteractionCreated.v1"
#: Event type -> the state the contact is in after it.
_STATES: Final = {
    f"{_P}InteractionQueued.v1": "queued",
    f"{_P}InteractionOffered.v1": "offered",
    f"{_P}InteractionOfferWithdrawn.v1": "queued",
    f"{_P}InteractionAssigned.v1": "assigned",
    f"{_P}InteractionConnected.v1": "connected",
    f"{_P}InteractionHeld.v1": "on_hold",
    f"{_P}InteractionResumed.v1": "connected",
    f"{_P}InteractionTransferred.v1": "transferred",
    f"{_P}InteractionEnded.v1": "wrap_up",
    f"{_P}WrapUpEnded.v1": "ended",
    f"{_P}InteractionCompleted.v1": "completed",
    f"{_P}InteractionAbandoned.v1": "abandoned",
    f"{_P}InteractionFailed.v1": "failed",
}
_CLOSED: Final = frozenset({"completed", "abandoned", "failed"})


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    interaction_id: str = Field(min_length=1)


class _Created(_Event):
    channel: str
    external_ref: str | None = None


class _Change(_Event):
    agent_id: str | None = None
    queue_id: str | None = None
    mode: str | None = None
    to_agent_id: str | None = None
    to_queue_id: str | None = None


class ThreadContacts:
    """The consumer of the interactions service's events (a servicekit projection)."""

    name = "email.thread-contacts"
    topics: Sequence[str] = (INTERACTIONS_TOPIC,)

    def __init__(self, schema: str) -> None:
        table = '"' + schema.replace('"', '""') + '".thread_contacts'
        self._sql_created = (
            f"insert into {table} (tenant_id, thread_id, interaction_id, state) "
            "values ($1, $2, $3, 'created') on conflict (tenant_id, thread_id) do update set "
            "interaction_id = excluded.interaction_id, state = 'created', closed = false, "
            "agent_id = null, queue_id = null, transfer_count = 0, updated_at = now()"
        )
        self._sql_change = (
            f"update {table} set state = $3, closed = $4, "
            "agent_id = case when $5 then $6 else agent_id end, "
            "queue_id = coalesce($7, queue_id), transfer_count = transfer_count + $8, "
            "updated_at = now() where tenant_id = $1 and interaction_id = $2"
        )

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        tenant = envelope.tenant_id
        if envelope.type == CREATED:
            created = _Created.model_validate(envelope.data)
            if created.channel == "email" and created.external_ref:
                await conn.execute(
                    self._sql_created, tenant, created.external_ref, created.interaction_id
                )
            return
        state = _STATES.get(envelope.type)
        if state is None:
            return
        e = _Change.model_validate(envelope.data)
        agent_changes, agent = False, None
        queue = e.queue_id
        transferred = 0
        if state in ("assigned", "connected"):
            agent_changes, agent = True, e.agent_id
        elif state == "queued":
            agent_changes = True  # back in a queue: no agent
        elif state == "transferred":
            transferred = 1
            queue = e.to_queue_id
            agent_changes, agent = True, e.to_agent_id  # blind: none until assigned again
            state = "connected" if e.mode == "consulted" and e.to_agent_id else "queued"
        await conn.execute(
            self._sql_change,
            tenant,
            e.interaction_id,
            state,
            state in _CLOSED,
            agent_changes,
            agent,
            queue,
            transferred,
        )
