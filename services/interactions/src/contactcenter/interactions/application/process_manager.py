"""The process manager: other services' events become commands on interactions.

- routing: an offer was created, accepted, rejected, expired or cancelled; an agent was
  assigned without an offer; an interaction overflowed to another queue;
- email-ingestion: an email was received (a new thread creates an email interaction; a reply
  appends to its thread's interaction, or starts a new one when that one is closed).

Exactly once under redelivery: each event's commands are appended with the request id
`event:<event id>`, so a redelivered event appends nothing (the store recognises the request)
and the consumer also records the event ids it applied. An event that no longer fits the
interaction's state (an offer for an interaction the customer abandoned meanwhile: a race
between services, not an error) is logged and dropped: FAILED_PRECONDITION or NOT_FOUND from
the domain never sends it to the dead-letter queue.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from contactcenter.contracts.errors import FailedPrecondition, NotFound
from contactcenter.interactions.application.handlers import (
    CommandOutcome,
    Decision,
    InteractionsApplication,
)
from contactcenter.interactions.domain import (
    AppendMessage,
    Assign,
    AttachmentRef,
    Author,
    AuthorRole,
    Channel,
    Command,
    CreateInteraction,
    Enqueue,
    Interaction,
    MessageDirection,
    Offer,
    OfferWithdrawalReason,
    QueueReason,
    QueueTarget,
    SkillRequirement,
    WithdrawOffer,
)

_log = logging.getLogger(__name__)

#: Ids the process manager derives from event ids (new interactions, messages) live here.
_NAMESPACE = uuid5(NAMESPACE_URL, "https://contactcenter/interactions/process-manager")


@dataclass(frozen=True, slots=True, kw_only=True)
class Cause:
    """The event a reaction answers."""

    tenant_id: str
    event_id: UUID
    event_type: str
    correlation_id: UUID | None = None

    @property
    def request_id(self) -> str:
        return f"event:{self.event_id}"

    @property
    def fingerprint(self) -> dict[str, str]:
        return {"event_id": str(self.event_id), "event_type": self.event_type}

    def derived_id(self, purpose: str) -> str:
        """A stable id for something this event creates (the same on redelivery)."""
        return str(uuid5(_NAMESPACE, f"{self.tenant_id}/{self.event_id}/{purpose}"))


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundEmail:
    """A received email, as email-ingestion reports it."""

    #: email-ingestion's id of the message.
    message_id: str
    #: email-ingestion's thread (conversation) id.
    thread_id: str
    from_address: str
    from_name: str | None = None
    #: The mailbox address it was sent to (the interaction's entry point).
    mailbox_address: str | None = None
    subject: str | None = None
    body: str = ""
    content_type: str | None = None
    attachments: Sequence[AttachmentRef] = ()
    #: The Message-ID header: recognises the same email delivered twice.
    internet_message_id: str | None = None
    sent_at: datetime | None = None
    #: The mailbox's queue: a new email interaction is enqueued there.
    queue_id: str | None = None
    priority: int = 0
    required_skills: Sequence[SkillRequirement] = ()
    language: str | None = None
    customer_profile_id: str | None = None


class ProcessManager:
    def __init__(self, application: InteractionsApplication) -> None:
        self._app = application

    async def _react(
        self, cause: Cause, interaction_id: str, decision: Decision
    ) -> CommandOutcome | None:
        try:
            return await self._app.execute(
                cause.tenant_id,
                interaction_id,
                decision,
                request_id=cause.request_id,
                fingerprint=cause.fingerprint,
                correlation_id=cause.correlation_id,
                causation_id=cause.event_id,
            )
        except (FailedPrecondition, NotFound) as stale:
            _log.warning(
                "%s %s for interaction %r ignored: %s",
                cause.event_type,
                cause.event_id,
                interaction_id,
                stale,
                extra={"tenant_id": cause.tenant_id},
            )
            return None

    # --- routing ---------------------------------------------------------------------------------

    async def offer_created(
        self,
        cause: Cause,
        interaction_id: str,
        *,
        offer_id: str,
        agent_id: str,
        queue_id: str | None,
        expires_at: datetime | None,
    ) -> CommandOutcome | None:
        command = Offer(
            offer_id=offer_id, agent_id=agent_id, queue_id=queue_id, expires_at=expires_at
        )
        return await self._react(cause, interaction_id, command)

    async def offer_accepted(
        self, cause: Cause, interaction_id: str, *, offer_id: str, agent_id: str
    ) -> CommandOutcome | None:
        return await self._react(
            cause, interaction_id, Assign(agent_id=agent_id, offer_id=offer_id)
        )

    async def offer_withdrawn(
        self, cause: Cause, interaction_id: str, *, offer_id: str, reason: OfferWithdrawalReason
    ) -> CommandOutcome | None:
        command = WithdrawOffer(offer_id=offer_id, reason=reason)
        return await self._react(cause, interaction_id, command)

    async def agent_assigned(
        self, cause: Cause, interaction_id: str, *, agent_id: str, offer_id: str | None
    ) -> CommandOutcome | None:
        return await self._react(
            cause, interaction_id, Assign(agent_id=agent_id, offer_id=offer_id)
        )

    async def overflowed(
        self,
        cause: Cause,
        interaction_id: str,
        *,
        to_queue_id: str,
        priority: int | None,
        required_skills: Sequence[SkillRequirement],
    ) -> CommandOutcome | None:
        def overflow(state: Interaction | None) -> Command:
            return Enqueue(
                target=QueueTarget(
                    queue_id=to_queue_id,
                    priority=(state.priority if state is not None else 0)
                    if priority is None
                    else priority,
                    required_skills=tuple(required_skills),
                ),
                reason=QueueReason.OVERFLOW,
            )

        return await self._react(cause, interaction_id, overflow)

    # --- email -----------------------------------------------------------------------------------

    async def email_received(
        self, cause: Cause, email: InboundEmail, thread_interaction_id: str | None
    ) -> str:
        """Append the email to its thread's interaction (`thread_interaction_id`), or create
        one when the thread is new or its interaction is closed; returns the interaction the
        email went to (the thread's interaction from now on)."""
        message = AppendMessage(
            message_id=cause.derived_id("message"),
            author=Author(
                role=AuthorRole.CUSTOMER,
                id=email.customer_profile_id,
                display_name=email.from_name or email.from_address,
            ),
            direction=MessageDirection.INBOUND,
            body=email.body,
            content_type=email.content_type,
            subject=email.subject,
            attachments=tuple(email.attachments),
            external_message_id=email.internet_message_id or email.message_id,
            sent_at=email.sent_at,
        )
        if thread_interaction_id is not None:
            reply = await self._react(cause, thread_interaction_id, message)
            if reply is not None:
                return reply.interaction_id
            # The thread's interaction is closed (or gone): the reply starts a new contact.
        interaction_id = cause.derived_id("interaction")
        commands: list[Command] = [
            CreateInteraction(
                interaction_id=interaction_id,
                channel=Channel.EMAIL,
                customer_profile_id=email.customer_profile_id,
                customer_address=email.from_address,
                entry_point=email.mailbox_address,
                subject=email.subject,
                language=email.language,
                external_ref=email.thread_id,
            ),
            message,
        ]
        if email.queue_id:
            commands.append(
                Enqueue(
                    target=QueueTarget(
                        queue_id=email.queue_id,
                        priority=email.priority,
                        required_skills=tuple(email.required_skills),
                    )
                )
            )
        outcome = await self._app.execute(
            cause.tenant_id,
            interaction_id,
            commands,
            request_id=cause.request_id,
            fingerprint=cause.fingerprint,
            correlation_id=cause.correlation_id,
            causation_id=cause.event_id,
        )
        return outcome.interaction_id
