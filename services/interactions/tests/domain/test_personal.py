"""Given the events of a conversation, when their personal fields are sealed, then nothing
personal is left readable in them, the fold over them still works, and opening them gives the
original back (or erased markers once the key is gone)."""

from __future__ import annotations

from datetime import UTC, datetime

from contactcenter.interactions.domain import (
    AddNote,
    AppendMessage,
    CommandContext,
    CreateInteraction,
    Interaction,
    LinkProfile,
    evolve,
)
from contactcenter.interactions.domain.personal import PersonalFields, owners_of
from contactcenter.interactions.domain.values import Author, AuthorRole, Channel, MessageDirection

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CTX = CommandContext(tenant_id="t1", now=NOW)
SECRETS = ("Ann Example", "ann@example.org", "parcel 7781", "+41445551234")


def seal(v: str | None) -> str | None:
    return None if v is None else "sealed:" + v[::-1]


def unseal(v: str | None) -> str | None:
    return None if v is None else v.removeprefix("sealed:")[::-1]


def erase(v: str | None) -> str | None:
    return None if v is None else "[erased]"


def _conversation() -> tuple[list, Interaction]:
    events = []
    state = None
    for command in (
        CreateInteraction(
            interaction_id="i-1",
            channel=Channel.CHAT,
            customer_address="ann@example.org",
            attributes={"customer_name": "Ann Example", "tier": "gold"},
        ),
        AppendMessage(
            message_id="m-1",
            author=Author(role=AuthorRole.CUSTOMER, display_name="Ann Example"),
            direction=MessageDirection.INBOUND,
            body="where is my parcel 7781? call +41445551234",
        ),
        AddNote(note_id="n-1", author_id="agent-1", text="Ann Example wants parcel 7781"),
        LinkProfile(profile_id="p-1"),
    ):
        produced, state = evolve(state, command, CTX)
        events.extend(produced)
    assert state is not None
    return events, state


def test_sealed_events_carry_nothing_personal_and_still_fold() -> None:
    events, plain = _conversation()
    fields = PersonalFields()
    sealed = [fields.event(e, seal) for e in events]
    wire = " ".join(e.model_dump_json() for e in sealed)
    assert not [s for s in SECRETS if s in wire]
    assert "gold" in wire  # routing attributes stay readable
    state = Interaction.from_events(sealed)
    assert state.version == plain.version and state.customer_profile_id == "p-1"
    opened = fields.interaction(state, unseal)
    assert opened.customer_address == "ann@example.org"
    assert opened.messages[0].body == plain.messages[0].body
    assert opened.messages[0].author.display_name == "Ann Example"
    assert opened.notes[0].text == plain.notes[0].text
    assert dict(opened.attributes) == {"customer_name": "Ann Example", "tier": "gold"}
    assert fields.event(sealed[1], unseal) == events[1]


def test_erased_fields_read_as_markers() -> None:
    events, _ = _conversation()
    fields = PersonalFields()
    state = fields.interaction(Interaction.from_events(events), erase)
    assert state.customer_address == "[erased]"
    assert state.messages[0].body == "[erased]"
    assert state.notes[0].text == "[erased]"
    assert state.attributes["customer_name"] == "[erased]" and state.attributes["tier"] == "gold"


def test_owners_are_every_profile_the_interaction_was_linked_to() -> None:
    events, state = _conversation()
    assert owners_of(None, events) == {"p-1"}
    produced, _ = evolve(state, LinkProfile(profile_id="p-2"), CTX)
    assert owners_of(state, produced) == {"p-1", "p-2"}
