"""Other services' events that the interactions service reacts to, and their Kafka consumers.

The routing and email-ingestion services publish these (CloudEvents on their topics, key =
tenant); this module is the contract this service expects. Readers are tolerant: fields
not listed are ignored (producers may add fields), other event types on the topics are
skipped. Each event also carries the usual envelope fields (`event_id`, `tenant_id`,
`occurred_at`, `correlation_id`, `causation_id`).

`cc.routing.events.v1`:

- `routing.OfferIssued.v1` {interaction_id, offer_id, agent_id, queue_id?, expires_at?}:
  the interaction is offered to the agent (OFFERED).
- `routing.OfferAccepted.v1` {interaction_id, offer_id, agent_id}: assigned (ASSIGNED).
- `routing.OfferRejected.v1`, `routing.OfferTimedOut.v1`, `routing.OfferCancelled.v1`
  {interaction_id, offer_id}: the offer is withdrawn (REJECTED, TIMED_OUT, CANCELLED) and the
  interaction waits in its queue again (QUEUED).
- `routing.ContactAssigned.v1` {interaction_id, agent_id, offer_id?}: assigned (after an
  accepted offer, where it changes nothing, or directly without one).
- `routing.ContactOverflowed.v1` {interaction_id, to_queue_id, from_queue_id?, priority?,
  required_skills?}: queued again in `to_queue_id`, reason OVERFLOW (priority and skills
  unchanged when absent).

`cc.email.events.v1`:

- `email.EmailReceived.v1` {message_id, thread_id, from_address, from_name?, mailbox_address?,
  subject?, body_text?, content_type?, attachments?, internet_message_id?, sent_at?, queue_id?,
  priority?, required_skills?, language?, customer_profile_id?}: the first email of a thread
  (or a reply to a closed contact) creates an EMAIL interaction holding the message, enqueued
  in `queue_id` when given; a reply appends the message to its thread's interaction. A
  repeated `internet_message_id` appends nothing.

`cc.profiles.events.v1`:

- `profiles.ProfileErased.v1` {erasure_id, erased_profile_ids}: the data keys of every
  interaction of those profiles are destroyed (their personal fields read as erased).

`required_skills` items are `{"skill": ..., "min_proficiency": ...}`; attachments are
`{"uri": ..., "attachment_id"?, "file_name"?, "content_type"?, "size_bytes"?}`.

Exactly once: the consumers run through `subscribe_projection` (event ids recorded as applied
in the transaction of the reaction's own writes) and the reactions append with the request
id `event:<event id>` (see application/process_manager.py). A stale event is logged and
dropped there; an event that does not parse goes to the DLQ.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contactcenter.contracts.topics import topic_for
from contactcenter.eventstore import PgConnection
from contactcenter.interactions.adapters.email_texts import GrpcEmailTexts
from contactcenter.interactions.application.privacy import Privacy
from contactcenter.interactions.application.process_manager import (
    Cause,
    InboundEmail,
    ProcessManager,
)
from contactcenter.interactions.domain import (
    AttachmentRef,
    OfferWithdrawalReason,
    SkillRequirement,
)
from contactcenter.messaging.cloudevents import EventEnvelope
from contactcenter.privacy import ERASED, is_sealed

_log = logging.getLogger(__name__)

ROUTING_TOPIC: Final = topic_for("routing").name
EMAIL_TOPIC: Final = topic_for("email").name

OFFER_ISSUED: Final = "routing.OfferIssued.v1"
OFFER_ACCEPTED: Final = "routing.OfferAccepted.v1"
OFFER_REJECTED: Final = "routing.OfferRejected.v1"
OFFER_TIMED_OUT: Final = "routing.OfferTimedOut.v1"
OFFER_CANCELLED: Final = "routing.OfferCancelled.v1"
CONTACT_ASSIGNED: Final = "routing.ContactAssigned.v1"
CONTACT_OVERFLOWED: Final = "routing.ContactOverflowed.v1"
EMAIL_RECEIVED: Final = "email.EmailReceived.v1"


class _Inbound(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    correlation_id: UUID | None = None


class _RoutingEvent(_Inbound):
    interaction_id: str = Field(min_length=1)


class OfferIssued(_RoutingEvent):
    offer_id: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)
    queue_id: str | None = None
    expires_at: AwareDatetime | None = None


class OfferAccepted(_RoutingEvent):
    offer_id: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)


class OfferEnded(_RoutingEvent):
    """Rejected, expired or cancelled (the wire name says which)."""

    offer_id: str = Field(min_length=1)


class ContactAssigned(_RoutingEvent):
    agent_id: str = Field(min_length=1)
    offer_id: str | None = None


class _Skill(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    skill: str
    min_proficiency: int = 0


class ContactOverflowed(_RoutingEvent):
    to_queue_id: str = Field(min_length=1)
    from_queue_id: str | None = None
    priority: int | None = None
    required_skills: tuple[_Skill, ...] = ()


class _Attachment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    uri: str
    attachment_id: str | None = None
    file_name: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None


class EmailReceived(_Inbound):
    message_id: str = Field(min_length=1)
    thread_id: str = Field(min_length=1)
    from_address: str = Field(min_length=1)
    from_name: str | None = None
    mailbox_address: str | None = None
    subject: str | None = None
    body_text: str = ""
    content_type: str | None = None
    attachments: tuple[_Attachment, ...] = ()
    internet_message_id: str | None = None
    sent_at: AwareDatetime | None = None
    queue_id: str | None = None
    priority: int = 0
    required_skills: tuple[_Skill, ...] = ()
    language: str | None = None
    customer_profile_id: str | None = None


def _skills(skills: Sequence[_Skill]) -> tuple[SkillRequirement, ...]:
    return tuple(SkillRequirement(skill=s.skill, min_proficiency=s.min_proficiency) for s in skills)


def _cause(envelope: EventEnvelope, event: _Inbound) -> Cause:
    return Cause(
        tenant_id=envelope.tenant_id,
        event_id=envelope.id,
        event_type=envelope.type,
        correlation_id=event.correlation_id,
    )


_WITHDRAWALS: Final[Mapping[str, OfferWithdrawalReason]] = {
    OFFER_REJECTED: OfferWithdrawalReason.REJECTED,
    OFFER_TIMED_OUT: OfferWithdrawalReason.TIMED_OUT,
    OFFER_CANCELLED: OfferWithdrawalReason.CANCELLED,
}


class RoutingReactions:
    """The process manager's consumer of `cc.routing.events.v1` (a servicekit projection)."""

    name = "interactions.routing-reactions"
    topics: Sequence[str] = (ROUTING_TOPIC,)

    def __init__(self, process_manager: ProcessManager) -> None:
        self._pm = process_manager
        self._handlers: dict[str, Callable[[EventEnvelope], Awaitable[Any]]] = {
            OFFER_ISSUED: self._offer_created,
            OFFER_ACCEPTED: self._offer_accepted,
            OFFER_REJECTED: self._offer_ended,
            OFFER_TIMED_OUT: self._offer_ended,
            OFFER_CANCELLED: self._offer_ended,
            CONTACT_ASSIGNED: self._agent_assigned,
            CONTACT_OVERFLOWED: self._overflowed,
        }

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        handler = self._handlers.get(envelope.type)
        if handler is not None:
            await handler(envelope)

    async def _offer_created(self, envelope: EventEnvelope) -> None:
        e = OfferIssued.model_validate(envelope.data)
        await self._pm.offer_created(
            _cause(envelope, e),
            e.interaction_id,
            offer_id=e.offer_id,
            agent_id=e.agent_id,
            queue_id=e.queue_id,
            expires_at=e.expires_at,
        )

    async def _offer_accepted(self, envelope: EventEnvelope) -> None:
        e = OfferAccepted.model_validate(envelope.data)
        await self._pm.offer_accepted(
            _cause(envelope, e), e.interaction_id, offer_id=e.offer_id, agent_id=e.agent_id
        )

    async def _offer_ended(self, envelope: EventEnvelope) -> None:
        e = OfferEnded.model_validate(envelope.data)
        await self._pm.offer_withdrawn(
            _cause(envelope, e),
            e.interaction_id,
            offer_id=e.offer_id,
            reason=_WITHDRAWALS[envelope.type],
        )

    async def _agent_assigned(self, envelope: EventEnvelope) -> None:
        e = ContactAssigned.model_validate(envelope.data)
        await self._pm.agent_assigned(
            _cause(envelope, e), e.interaction_id, agent_id=e.agent_id, offer_id=e.offer_id
        )

    async def _overflowed(self, envelope: EventEnvelope) -> None:
        e = ContactOverflowed.model_validate(envelope.data)
        await self._pm.overflowed(
            _cause(envelope, e),
            e.interaction_id,
            to_queue_id=e.to_queue_id,
            priority=e.priority,
            required_skills=_skills(e.required_skills),
        )


class EmailReactions:
    """The process manager's consumer of `cc.email.events.v1`: keeps `email_threads` (thread
    -> interaction) in the transaction that records the event as applied."""

    name = "interactions.email-reactions"
    topics: Sequence[str] = (EMAIL_TOPIC,)

    def __init__(
        self, process_manager: ProcessManager, schema: str, texts: GrpcEmailTexts | None = None
    ) -> None:
        self._pm = process_manager
        #: Where sealed emails are read (None: their sealed fields read as erased).
        self._texts = texts
        table = '"' + schema.replace('"', '""') + '".email_threads'
        self._sql_lookup = (
            f"select interaction_id from {table} where tenant_id = $1 and thread_id = $2"
        )
        self._sql_save = (
            f"insert into {table} (tenant_id, thread_id, interaction_id) values ($1, $2, $3) "
            "on conflict (tenant_id, thread_id) do update "
            "set interaction_id = excluded.interaction_id, updated_at = now()"
        )

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        if envelope.type != EMAIL_RECEIVED:
            return
        e = EmailReceived.model_validate(envelope.data)
        tenant_id = envelope.tenant_id
        if any(is_sealed(v) for v in (e.from_address, e.from_name, e.subject, e.body_text)):
            e = await self._opened(tenant_id, e)
        current: str | None = await conn.fetchval(self._sql_lookup, tenant_id, e.thread_id)
        email = InboundEmail(
            message_id=e.message_id,
            thread_id=e.thread_id,
            from_address=e.from_address,
            from_name=e.from_name,
            mailbox_address=e.mailbox_address,
            subject=e.subject,
            body=e.body_text,
            content_type=e.content_type,
            attachments=tuple(
                AttachmentRef(
                    uri=a.uri,
                    attachment_id=a.attachment_id,
                    file_name=a.file_name,
                    content_type=a.content_type,
                    size_bytes=a.size_bytes,
                )
                for a in e.attachments
            ),
            internet_message_id=e.internet_message_id,
            sent_at=e.sent_at,
            queue_id=e.queue_id,
            priority=e.priority,
            required_skills=_skills(e.required_skills),
            language=e.language,
            customer_profile_id=e.customer_profile_id,
        )
        interaction_id = await self._pm.email_received(_cause(envelope, e), email, current)
        if interaction_id != current:
            await conn.execute(self._sql_save, tenant_id, e.thread_id, interaction_id)

    async def _opened(self, tenant_id: str, e: EmailReceived) -> EmailReceived:
        """The email with the sealed fields read from the email service (`ERASED` where it
        has no text any more: the customer was erased meanwhile)."""
        text = await self._texts.text(tenant_id, e.message_id) if self._texts else None
        if text is None:
            return e.model_copy(
                update={
                    "from_address": ERASED,
                    "from_name": ERASED if e.from_name else None,
                    "subject": ERASED if e.subject else None,
                    "body_text": ERASED,
                    "attachments": tuple(
                        a.model_copy(update={"file_name": ERASED}) if a.file_name else a
                        for a in e.attachments
                    ),
                }
            )
        return e.model_copy(
            update={
                "from_address": text.from_address,
                "from_name": text.from_name,
                "subject": text.subject,
                "body_text": text.body_text,
                "attachments": tuple(
                    a.model_copy(update={"file_name": text.file_names.get(a.attachment_id or "")})
                    for a in e.attachments
                ),
            }
        )


# --- cc.profiles.events.v1 -----------------------------------------------------------------------

PROFILES_TOPIC: Final = topic_for("profiles").name
PROFILE_ERASED: Final = "profiles.ProfileErased.v1"


class ProfileErased(_Inbound):
    """`profiles.ProfileErased.v1` {erasure_id, erased_profile_ids}: right to be forgotten."""

    erasure_id: str
    erased_profile_ids: tuple[str, ...] = Field(min_length=1)


class ProfileErasures:
    """Consumer of `cc.profiles.events.v1`: on `ProfileErased`, destroys the data keys of every
    interaction of the erased profiles (in the transaction that records the event as applied),
    so their messages, notes, transcripts and addresses read as erased in the event store, the
    list read model (which holds the same ciphertext) and the published events."""

    name = "interactions.profile-erasures"
    topics: Sequence[str] = (PROFILES_TOPIC,)

    def __init__(self, privacy: Privacy) -> None:
        self._privacy = privacy

    async def apply(self, conn: PgConnection, envelope: EventEnvelope) -> None:
        if envelope.type != PROFILE_ERASED:
            return
        e = ProfileErased.model_validate(envelope.data)
        keys = self._privacy.keys
        shredded = await keys.shred_owned(conn, envelope.tenant_id, e.erased_profile_ids)
        self._privacy.forget(envelope.tenant_id, shredded)
        _log.info("erasure %s: keys of %d interactions destroyed", e.erasure_id, len(shredded))
