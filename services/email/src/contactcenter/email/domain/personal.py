"""The customer's personal data in the email service's events, and how it is sealed.

Stored and published sealed with the message's data key (`contactcenter.privacy`): senders,
names, recipients, subjects, bodies and attachment file names. The text is served by
`GetMessage` (from the `messages` read model, purged on erasure); subscribers with access
(the interactions service) read it there. Erasing the customer destroys the keys of their
messages: the published events then hold nothing readable.

Pure: a `Transform` (seal one value) is given; no keys or I/O here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contactcenter.contracts.events import DomainEvent
from contactcenter.email.domain.events import (
    AttachmentRef,
    AutoReplyReceived,
    BounceReceived,
    EmailReceived,
    OwnMailReturned,
    ReplyQueued,
)

#: Seals one value (None stays None).
Transform = Callable[[str | None], str | None]


def _attachments(attachments: tuple[AttachmentRef, ...], f: Transform) -> tuple[AttachmentRef, ...]:
    return tuple(
        a.model_copy(update={"file_name": f(a.file_name)}) if a.file_name else a
        for a in attachments
    )


def _text(f: Transform, value: str) -> str:
    return (f(value) or "") if value else value


def seal_personal(event: DomainEvent, f: Transform) -> DomainEvent:
    """`event` with its personal fields transformed by `f` (others as they are)."""
    update: dict[str, Any]
    match event:
        case EmailReceived():
            update = {
                "from_address": _text(f, event.from_address),
                "from_name": f(event.from_name),
                "subject": f(event.subject),
                "body_text": _text(f, event.body_text),
                "attachments": _attachments(event.attachments, f),
                "to_addresses": tuple(_text(f, a) for a in event.to_addresses),
            }
        case AutoReplyReceived() | OwnMailReturned():
            update = {"from_address": _text(f, event.from_address)}
            if isinstance(event, AutoReplyReceived):
                update["subject"] = f(event.subject)
        case BounceReceived():
            update = {
                "from_address": _text(f, event.from_address),
                "subject": f(event.subject),
                "failed_recipients": tuple(_text(f, a) for a in event.failed_recipients),
            }
        case ReplyQueued():
            update = {
                "to_address": _text(f, event.to_address),
                "subject": _text(f, event.subject),
                "body_text": _text(f, event.body_text),
                "body_html": f(event.body_html),
            }
        case _:
            return event
    return event.model_copy(update=update)
