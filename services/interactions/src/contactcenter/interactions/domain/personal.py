"""Personal data of the customer in the interactions context, and how it is sealed.

The personal fields of an event (message bodies and subjects, a customer author's name,
attachment file names, notes, transcripts, CSAT comments, completion notes, the customer's
contact address, the interaction's subject and its personal attributes) are stored and
published sealed with the data key of the interaction (see `contactcenter.privacy`): readers
of the event store, the read models and `cc.interactions.events.v1` see ciphertext only; the
service opens them for the API. Erasing the customer's profile destroys the key: the fields
then read as `ERASED`.

Pure: a `Transform` (seal or open one value) is given; no keys or I/O here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final

from contactcenter.interactions.domain.events import (
    InteractionCompleted,
    InteractionCreated,
    InteractionEvent,
    InteractionProfileLinked,
    InteractionQueued,
    MessageAppended,
    NoteAdded,
    SatisfactionRecorded,
    TranscriptAppended,
)
from contactcenter.interactions.domain.interaction import Interaction
from contactcenter.interactions.domain.values import AttachmentRef, Author, AuthorRole

#: Seals or opens one value (None stays None).
Transform = Callable[[str | None], str | None]

#: Attribute keys whose values are the customer's personal data (case-insensitive).
DEFAULT_PERSONAL_ATTRIBUTES: Final = frozenset(
    {
        "name",
        "customer_name",
        "first_name",
        "last_name",
        "full_name",
        "email",
        "customer_email",
        "phone",
        "customer_phone",
        "address",
        "postal_address",
        "date_of_birth",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class PersonalFields:
    """Which attributes are personal (the rest route contacts and stay readable)."""

    attributes: Collection[str] = DEFAULT_PERSONAL_ATTRIBUTES

    def _attrs(self, attributes: Mapping[str, str], f: Transform) -> dict[str, str]:
        keys = {a.lower() for a in self.attributes}
        return {k: (f(v) or "") if k.lower() in keys else v for k, v in attributes.items()}

    def _author(self, author: Author, f: Transform) -> Author:
        if author.role is not AuthorRole.CUSTOMER or author.display_name is None:
            return author
        return author.model_copy(update={"display_name": f(author.display_name)})

    def _attachments(
        self, attachments: tuple[AttachmentRef, ...], f: Transform
    ) -> tuple[AttachmentRef, ...]:
        return tuple(
            a.model_copy(update={"file_name": f(a.file_name)}) if a.file_name else a
            for a in attachments
        )

    def _message(self, e: MessageAppended, f: Transform) -> MessageAppended:
        return e.model_copy(
            update={
                "body": f(e.body) or "" if e.body else "",
                "subject": f(e.subject),
                "author": self._author(e.author, f),
                "attachments": self._attachments(e.attachments, f),
            }
        )

    def event(self, e: InteractionEvent, f: Transform) -> InteractionEvent:
        """`e` with its personal fields transformed by `f`."""
        update: dict[str, Any]
        match e:
            case InteractionCreated():
                update = {
                    "customer_address": f(e.customer_address),
                    "subject": f(e.subject),
                    "attributes": self._attrs(e.attributes, f),
                }
            case InteractionQueued():
                update = {"attributes": self._attrs(e.attributes, f)}
            case MessageAppended():
                return self._message(e, f)
            case NoteAdded() | TranscriptAppended():
                update = {"text": f(e.text) or ""}
            case SatisfactionRecorded():
                update = {"comment": f(e.comment)}
            case InteractionCompleted():
                update = {"notes": f(e.notes)}
            case _:
                return e
        return e.model_copy(update=update)

    def interaction(self, state: Interaction, f: Transform) -> Interaction:
        """The folded `state` with its personal fields transformed by `f`."""
        satisfaction = state.satisfaction
        return dataclasses.replace(
            state,
            customer_address=f(state.customer_address),
            subject=f(state.subject),
            attributes=self._attrs(state.attributes, f),
            completion_notes=f(state.completion_notes),
            satisfaction=(
                satisfaction.model_copy(update={"comment": f(satisfaction.comment)})
                if satisfaction is not None
                else None
            ),
            messages=tuple(self._message(m, f) for m in state.messages),
            notes=tuple(n.model_copy(update={"text": f(n.text) or ""}) for n in state.notes),
            transcript=tuple(
                t.model_copy(update={"text": f(t.text) or ""}) for t in state.transcript
            ),
        )


def owners_of(state: Interaction | None, events: Collection[InteractionEvent]) -> set[str]:
    """The customer profiles the interaction's data belongs to after `events`: erasing any
    of them erases it."""
    owners: set[str] = set()
    if state is not None and state.customer_profile_id:
        owners.add(state.customer_profile_id)
    for e in events:
        match e:
            case InteractionCreated() | InteractionQueued() if e.customer_profile_id:
                owners.add(e.customer_profile_id)
            case InteractionProfileLinked():
                owners.add(e.profile_id)
                if e.previous_profile_id:
                    owners.add(e.previous_profile_id)
            case _:
                pass
    return owners
