"""The email service's events (`cc.email.events.v1`, wire names `email.<Name>.v1`).

`EmailReceived` is the contract with the interactions service (see its adapters/inbound.py):
a customer's email, new thread or reply. The others record what is not a customer's email
(auto-replies, bounces, our own mail coming back), quarantine, outbound replies and mailboxes.
Mailbox events never carry credentials.
"""

from __future__ import annotations

from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contactcenter.contracts.events import DomainEvent, event


class SkillRequirement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    skill: str = Field(min_length=1, max_length=128)
    min_proficiency: int = Field(default=0, ge=0, le=100)


class AttachmentRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    uri: str
    attachment_id: str | None = None
    file_name: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    disposition: str | None = None
    content_id: str | None = None


class Routing(BaseModel):
    """Where new email of a mailbox goes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    queue_id: str | None = None
    priority: int = 0
    required_skills: tuple[SkillRequirement, ...] = ()
    language: str | None = None


@event
class EmailReceived(DomainEvent):
    """A customer's email: the first of a thread opens a contact, a reply joins it."""

    event_type = "email.EmailReceived.v1"

    message_id: str
    thread_id: str
    from_address: str
    from_name: str | None = None
    mailbox_address: str | None = None
    subject: str | None = None
    body_text: str = ""
    content_type: str | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    internet_message_id: str | None = None
    sent_at: AwareDatetime | None = None
    queue_id: str | None = None
    priority: int = 0
    required_skills: tuple[SkillRequirement, ...] = ()
    language: str | None = None
    customer_profile_id: str | None = None
    # Beyond the contract (readers ignore unknown fields):
    new_thread: bool = True
    thread_matched_by: str | None = None
    raw_sha256: str | None = None
    #: Whether the message has an HTML part (sanitised, with the whole text: GetMessage).
    has_html: bool = False
    to_addresses: tuple[str, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    #: A reply: the thread's contact as this service last heard of it (interactions' events),
    #: and whether it is closed (then the reply opens a new contact).
    interaction_id: str | None = None
    contact_closed: bool = False


@event
class AutoReplyReceived(DomainEvent):
    """An automatic reply (RFC 3834, out-of-office, bulk): recorded, opens no contact."""

    event_type = "email.AutoReplyReceived.v1"

    message_id: str
    mailbox_address: str
    from_address: str
    subject: str | None = None
    reason: str
    internet_message_id: str | None = None
    thread_id: str | None = None
    raw_sha256: str | None = None


@event
class BounceReceived(DomainEvent):
    """A bounce or delivery status notification: recorded, opens no contact."""

    event_type = "email.BounceReceived.v1"

    message_id: str
    mailbox_address: str
    from_address: str
    subject: str | None = None
    reason: str
    original_message_id: str | None = None
    failed_recipients: tuple[str, ...] = ()
    status: str | None = None
    thread_id: str | None = None
    internet_message_id: str | None = None
    raw_sha256: str | None = None


@event
class OwnMailReturned(DomainEvent):
    """Mail we sent came back in (a loop): recorded, never answered."""

    event_type = "email.OwnMailReturned.v1"

    message_id: str
    mailbox_address: str
    from_address: str
    reason: str
    internet_message_id: str | None = None
    raw_sha256: str | None = None


@event
class EmailQuarantined(DomainEvent):
    """A message that could not be processed; its raw bytes are kept."""

    event_type = "email.EmailQuarantined.v1"

    quarantine_id: str
    mailbox_address: str
    reason: str
    detail: str = ""
    raw_sha256: str
    size_bytes: int


@event
class QuarantineReleased(DomainEvent):
    """An operator had a quarantined message processed again."""

    event_type = "email.QuarantineReleased.v1"

    quarantine_id: str
    ignore_limits: bool = False
    released_by: str


@event
class ReplyQueued(DomainEvent):
    """An agent's reply, waiting for the SMTP peer."""

    event_type = "email.ReplyQueued.v1"

    message_id: str
    thread_id: str
    interaction_id: str
    internet_message_id: str
    in_reply_to_message_id: str
    mailbox_address: str
    from_address: str
    to_address: str
    subject: str
    body_text: str
    body_html: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    agent_id: str
    agent_name: str | None = None


@event
class ReplySent(DomainEvent):
    event_type = "email.ReplySent.v1"

    message_id: str
    thread_id: str
    interaction_id: str
    internet_message_id: str
    attempts: int


@event
class ReplyFailed(DomainEvent):
    """The SMTP peer refused the reply for good, or retries were exhausted."""

    event_type = "email.ReplyFailed.v1"

    message_id: str
    thread_id: str
    interaction_id: str
    attempts: int
    error: str


@event
class MailboxRegistered(DomainEvent):
    event_type = "email.MailboxRegistered.v1"

    address: str
    display_name: str | None = None
    routing: Routing = Routing()
    imap_host: str | None = None
    imap_port: int | None = None
    imap_username: str | None = None
    imap_use_tls: bool = True
    imap_folder: str = "INBOX"


@event
class MailboxRoutingSet(DomainEvent):
    event_type = "email.MailboxRoutingSet.v1"

    address: str
    routing: Routing


@event
class TenantLimitsSet(DomainEvent):
    """A tenant's intake limits (ConfigureTenant); 0 inbound per minute: no rate limit."""

    event_type = "email.TenantLimitsSet.v1"

    max_message_bytes: int
    max_attachment_bytes: int
    max_attachments: int
    max_inbound_per_minute: int = 0


EVENT_TYPES: Final[tuple[type[DomainEvent], ...]] = (
    EmailReceived,
    AutoReplyReceived,
    BounceReceived,
    OwnMailReturned,
    EmailQuarantined,
    QuarantineReleased,
    ReplyQueued,
    ReplySent,
    ReplyFailed,
    MailboxRegistered,
    MailboxRoutingSet,
    TenantLimitsSet,
)
