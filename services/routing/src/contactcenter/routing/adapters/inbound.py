"""The interactions service's events that routing acts on, and their Kafka consumer.

`cc.interactions.events.v1` (CloudEvents, key = tenant); readers are tolerant (fields not listed
are ignored, other event types skipped). Each event carries `interaction_id` and the usual
envelope fields (`event_id`, `tenant_id`, `occurred_at`, `correlation_id`, `causation_id`).

- `interactions.InteractionQueued.v1` {queue_id, channel, reason?, priority?, required_skills?,
  language?, target_agent_id?, first_enqueued_at?} -> QueueContact.
- `interactions.InteractionAbandoned.v1` {reason?}, `interactions.InteractionFailed.v1`
  {failure_code?} -> CancelContact.
- `interactions.InteractionEnded.v1` -> EndContact (the agent goes to wrap-up).
- `interactions.InteractionCompleted.v1` -> CompleteContact.
- `interactions.InteractionAssigned.v1` {agent_id, offer_id?, queue_id?} -> RecordAssignment:
  the contact is that agent's. Routing's own accepted offer coming back changes nothing; an
  assignment without an offer (a gateway's `Connect` of a queued contact to an agent it names)
  takes the contact out of its queue, cancels a pending offer to another agent (releasing that
  reservation) and seizes the agent's capacity for the channel (ContactAssigned without
  `offer_id`), so the agent is busy until InteractionEnded / InteractionCompleted. An agent
  routing does not know: ContactRemoved (reason `assigned_outside`, code `unknown_agent`). A
  contact routing does not hold (never queued here, already gone) is refused NotFound and
  logged. `interactions.InteractionConnected.v1` is not consumed: it follows the assignment in
  the same append, for the same agent, and adds nothing routing needs.

`required_skills` items are `{"skill": ..., "min_proficiency": 0..10}`; routing's levels are
1..5, so a higher minimum is read as 5 (the top level).

Exactly once: the command is executed with the request id `event:<event id>`, so a
redelivered event (the Kafka offset was not committed yet) finds its first result and appends
nothing twice. The consumer is untracked (no `apply_once` transaction around the append: it
would keep the offer invisible to the outbox relay until it committed). A command the engine
refuses (an unknown queue, a contact already gone) is logged and dropped; an event that does
not parse goes to the DLQ.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final
from uuid import UUID

from aiokafka import TopicPartition
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contactcenter.contracts.errors import DomainError
from contactcenter.contracts.topics import topic_for
from contactcenter.eventstore import PgConnection
from contactcenter.messaging.cloudevents import EventEnvelope
from contactcenter.routing.application import RoutingApplication
from contactcenter.routing.domain import (
    CancelContact,
    Command,
    CompleteContact,
    EndContact,
    QueueContact,
    RecordAssignment,
)
from contactcenter.routing.domain.values import MAX_PROFICIENCY, Channel, QueueReason

_log = logging.getLogger(__name__)

INTERACTIONS_TOPIC: Final = topic_for("interactions").name

INTERACTION_QUEUED: Final = "interactions.InteractionQueued.v1"
INTERACTION_ABANDONED: Final = "interactions.InteractionAbandoned.v1"
INTERACTION_FAILED: Final = "interactions.InteractionFailed.v1"
INTERACTION_ENDED: Final = "interactions.InteractionEnded.v1"
INTERACTION_COMPLETED: Final = "interactions.InteractionCompleted.v1"
INTERACTION_ASSIGNED: Final = "interactions.InteractionAssigned.v1"


class _Inbound(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    interaction_id: str = Field(min_length=1)
    correlation_id: UUID | None = None


class _Skill(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    skill: str
    min_proficiency: int = 0


class InteractionQueued(_Inbound):
    queue_id: str = Field(min_length=1)
    channel: Channel
    reason: QueueReason = QueueReason.INITIAL
    priority: int = 0
    required_skills: tuple[_Skill, ...] = ()
    language: str | None = None
    target_agent_id: str | None = None
    first_enqueued_at: AwareDatetime | None = None


class InteractionAbandoned(_Inbound):
    reason: str | None = None


class InteractionFailed(_Inbound):
    failure_code: str | None = None


class InteractionAssigned(_Inbound):
    agent_id: str = Field(min_length=1)
    offer_id: str | None = None


def _queue(data: Mapping[str, Any]) -> tuple[QueueContact, UUID | None]:
    e = InteractionQueued.model_validate(data)
    return (
        QueueContact(
            interaction_id=e.interaction_id,
            queue_id=e.queue_id,
            channel=e.channel,
            priority=e.priority,
            required_skills={
                s.skill: min(s.min_proficiency, MAX_PROFICIENCY) for s in e.required_skills
            },
            language=e.language,
            preferred_agent_id=e.target_agent_id,
            first_enqueued_at=e.first_enqueued_at,
            reason=e.reason,
        ),
        e.correlation_id,
    )


def _abandoned(data: Mapping[str, Any]) -> tuple[Command, UUID | None]:
    e = InteractionAbandoned.model_validate(data)
    return CancelContact(interaction_id=e.interaction_id, reason_code="abandoned"), e.correlation_id


def _failed(data: Mapping[str, Any]) -> tuple[Command, UUID | None]:
    e = InteractionFailed.model_validate(data)
    return CancelContact(interaction_id=e.interaction_id, reason_code="failed"), e.correlation_id


def _ended(data: Mapping[str, Any]) -> tuple[Command, UUID | None]:
    e = _Inbound.model_validate(data)
    return EndContact(interaction_id=e.interaction_id), e.correlation_id


def _completed(data: Mapping[str, Any]) -> tuple[Command, UUID | None]:
    e = _Inbound.model_validate(data)
    return CompleteContact(interaction_id=e.interaction_id), e.correlation_id


def _assigned(data: Mapping[str, Any]) -> tuple[Command, UUID | None]:
    e = InteractionAssigned.model_validate(data)
    return (
        RecordAssignment(interaction_id=e.interaction_id, agent_id=e.agent_id, offer_id=e.offer_id),
        e.correlation_id,
    )


_COMMANDS: Final[Mapping[str, Callable[[Mapping[str, Any]], tuple[Command, UUID | None]]]] = {
    INTERACTION_QUEUED: _queue,
    INTERACTION_ABANDONED: _abandoned,
    INTERACTION_FAILED: _failed,
    INTERACTION_ENDED: _ended,
    INTERACTION_COMPLETED: _completed,
    INTERACTION_ASSIGNED: _assigned,
}


def command_for(envelope: EventEnvelope) -> tuple[Command, UUID | None] | None:
    """The routing command an interactions event asks for (None: not routing's business).
    Raises pydantic.ValidationError for an event that does not parse (-> DLQ)."""
    translate = _COMMANDS.get(envelope.type)
    return None if translate is None else translate(envelope.data)


class InteractionEvents:
    """The projection (servicekit's `subscribe_projection`) feeding the engine; its partition
    assignment is the set of tenants this instance owns (see RoutingApplication.assign)."""

    name: str = "routing-interactions"
    topics: Sequence[str] = (INTERACTIONS_TOPIC,)
    #: Exactly once by the request id `event:<event id>` of each command's append (see the
    #: module doc); no tracking transaction that would hide the offers from the relay.
    tracked = False

    def __init__(self, application: RoutingApplication, *, partition_count: int) -> None:
        self._app = application
        self._partition_count = partition_count

    async def partitions_revoked(self, partitions: frozenset[TopicPartition]) -> None:
        dropped = self._app.revoke(p.partition for p in partitions)
        _log.info(
            "partitions %s revoked: %d tenants dropped",
            _numbers(partitions),
            len(dropped),
            extra={"revoked_partitions": _numbers(partitions)},
        )

    async def partitions_assigned(self, partitions: frozenset[TopicPartition]) -> None:
        started = time.perf_counter()
        owned = await self._app.assign(
            [p.partition for p in partitions], partition_count=self._partition_count
        )
        _log.info(
            "partitions %s assigned: %d tenants rebuilt in %.0f ms",
            _numbers(partitions),
            len(owned),
            (time.perf_counter() - started) * 1000,
            extra={"assigned_partitions": _numbers(partitions)},
        )

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        found = command_for(envelope)
        if found is None:
            return
        command, correlation_id = found
        try:
            await self._app.execute(
                envelope.tenant_id,
                command,
                request_id=f"event:{envelope.id}",
                correlation_id=correlation_id,
                causation_id=envelope.id,
                look_up_request=False,
            )
        except DomainError as error:
            if error.reason == "CONCURRENCY_CONFLICT":
                raise  # redelivered, decided again on the current state
            _log.warning(
                "dropped %s %s of tenant %s: %s",
                envelope.type,
                envelope.id,
                envelope.tenant_id,
                error,
            )


def _numbers(partitions: frozenset[TopicPartition]) -> list[int]:
    return sorted(p.partition for p in partitions)
