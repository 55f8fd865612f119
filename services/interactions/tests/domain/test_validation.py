"""Bad input is refused with ValidationFailed naming every bad field (by its request path),
before the state is even looked at."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from contactcenter.contracts.errors import ValidationFailed
from contactcenter.interactions.domain import (
    AddNote,
    AppendMessage,
    AppendTranscript,
    Assign,
    AttachmentRef,
    Author,
    AuthorRole,
    Channel,
    Command,
    CommandContext,
    Complete,
    Conference,
    CreateInteraction,
    Enqueue,
    Fail,
    InteractionState,
    LinkProfile,
    MarkRepeat,
    MessageDirection,
    Offer,
    OfferWithdrawalReason,
    QueueReason,
    QueueTarget,
    RecordSatisfaction,
    SkillRequirement,
    Transfer,
    TransferMode,
    WithdrawOffer,
    decide,
)

S = InteractionState
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def violations(state: Any, command: Command) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as error:
        decide(state, command, CommandContext(tenant_id="t-acme", now=T0))
    return {v.field: v.description for v in error.value.field_violations}


def test_create_names_every_bad_field() -> None:
    found = violations(
        None,
        CreateInteraction(
            interaction_id="i/1",
            channel=Channel.CHAT,
            customer_profile_id="p 1",
            language="english!",
            attributes={"bad key": "x", "ok": "y" * 1025},
            subject="line\x00break",
            agent_id="a-1",
            queue=QueueTarget(
                queue_id="",
                priority=101,
                required_skills=(
                    SkillRequirement(skill="billing", min_proficiency=11),
                    SkillRequirement(skill="billing"),
                ),
                language="xx_YY",
            ),
        ),
    )
    assert set(found) == {
        "interaction_id",
        "customer_profile_id",
        "language",
        "attributes['bad key']",
        "attributes['ok']",
        "subject",
        "agent_id",
        "queue.queue_id",
        "queue.priority",
        "queue.required_skills[0].min_proficiency",
        "queue.required_skills[1].skill",
        "queue.language",
    }
    assert found["queue.queue_id"] == "is required"
    assert found["agent_id"] == "cannot be combined with queue"
    assert "listed twice" in found["queue.required_skills[1].skill"]


def test_validation_comes_before_existence() -> None:
    """A bad request for an interaction that does not exist is still INVALID_ARGUMENT."""
    assert violations(None, Offer(offer_id="", agent_id="")) == {
        "offer_id": "is required",
        "agent_id": "is required",
    }


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (Enqueue(target=QueueTarget(queue_id="q", priority=-1)), {"priority"}),
        (
            Enqueue(target=QueueTarget(queue_id="q"), reason=QueueReason.TRANSFER),
            {"reason"},
        ),
        (
            Enqueue(target=QueueTarget(queue_id="q", attributes={str(i): "" for i in range(65)})),
            {"attributes"},
        ),
        (Offer(offer_id="o", agent_id="a", expires_at=datetime(2026, 1, 1)), {"expires_at"}),
        (WithdrawOffer(offer_id="", reason=OfferWithdrawalReason.REJECTED), {"offer_id"}),
        (Assign(agent_id=""), {"agent_id"}),
        (Transfer(mode=TransferMode.CONSULTED), {"to_agent_id"}),
        (
            Transfer(
                mode=TransferMode.CONSULTED,
                to_agent_id="a-2",
                priority=5,
                required_skills=(SkillRequirement(skill="x"),),
            ),
            {"priority", "required_skills"},
        ),
        (Transfer(mode=TransferMode.BLIND, priority=1000), {"priority"}),
        (
            Transfer(mode=TransferMode.BLIND, to_agent_id="a-1", agent_id="a-1"),
            {"to_agent_id"},
        ),
        (Conference(agent_id=""), {"agent_id"}),
        (
            Complete(disposition_codes=("resolved", "resolved", "bad code", "x" * 65)),
            {"disposition_codes[1]", "disposition_codes[2]", "disposition_codes[3]"},
        ),
        (Complete(disposition_codes=tuple(f"c{i}" for i in range(21))), {"disposition_codes"}),
        (Complete(notes="x" * 10_001), {"notes"}),
        (Fail(failure_code=""), {"failure_code"}),
        (AddNote(note_id="n", author_id="", text=""), {"author_id", "text"}),
        (
            AppendTranscript(
                segment_id="s",
                speaker_role=AuthorRole.CUSTOMER,
                text="hi",
                start_offset_ms=500,
                end_offset_ms=100,
                confidence=1.5,
            ),
            {"end_offset", "confidence"},
        ),
        (RecordSatisfaction(score=6), {"score"}),
        (RecordSatisfaction(score=0, scale=10), {"score"}),
        (RecordSatisfaction(score=1, scale=11), {"scale"}),
        (
            MarkRepeat(
                repeat_of_interaction_id="",
                previous_created_at=datetime(2026, 1, 1),
                window_days=0,
            ),
            {"repeat_of_interaction_id", "previous_created_at", "window_days"},
        ),
        (LinkProfile(profile_id=""), {"profile_id"}),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, set) else "",
)
def test_bad_fields_are_named(command: Command, expected: set[str], reach: Any) -> None:
    assert set(violations(reach(S.CONNECTED).state, command)) == expected


@pytest.mark.parametrize(
    ("author", "direction", "body", "attachments", "expected"),
    [
        (Author(role=AuthorRole.CUSTOMER), MessageDirection.OUTBOUND, "hi", (), {"direction"}),
        (
            Author(role=AuthorRole.AGENT, id="a-1"),
            MessageDirection.INBOUND,
            "hi",
            (),
            {"direction"},
        ),
        (Author(role=AuthorRole.AGENT), MessageDirection.OUTBOUND, "hi", (), {"author.id"}),
        (Author(role=AuthorRole.BOT), MessageDirection.OUTBOUND, "", (), {"body"}),
        (
            Author(role=AuthorRole.CUSTOMER),
            MessageDirection.INBOUND,
            "x" * 100_001,
            (),
            {"body"},
        ),
        (
            Author(role=AuthorRole.CUSTOMER),
            MessageDirection.INBOUND,
            "",
            (AttachmentRef(uri="", size_bytes=-1, content_type="pdf"),),
            {"attachments[0].uri", "attachments[0].size_bytes", "attachments[0].content_type"},
        ),
    ],
)
def test_message_fields(
    author: Author,
    direction: MessageDirection,
    body: str,
    attachments: tuple[AttachmentRef, ...],
    expected: set[str],
    reach: Any,
) -> None:
    command = AppendMessage(
        message_id="m-1", author=author, direction=direction, body=body, attachments=attachments
    )
    assert set(violations(reach(S.CONNECTED).state, command)) == expected


def test_a_system_message_may_go_either_way_and_attachments_alone_are_enough(reach: Any) -> None:
    story = reach(S.CONNECTED, Channel.EMAIL)
    for direction in MessageDirection:
        story.when(
            AppendMessage(
                message_id=f"m-{direction.value}",
                author=Author(role=AuthorRole.SYSTEM),
                direction=direction,
                attachments=(AttachmentRef(uri="email://x/1"),),
                content_type="text/html; charset=utf-8",
            )
        )
    assert len(story.interaction.messages) == 2


def test_multiline_text_is_fine_where_expected(reach: Any) -> None:
    story = reach(S.CONNECTED)
    story.when(AddNote(note_id="n-1", author_id="a-1", text="line 1\nline 2\ttabbed"))
    assert story.interaction.notes[0].text.count("\n") == 1


def test_limits_on_ids_lists_and_attribute_values(reach: Any) -> None:
    state = reach(S.CONNECTED).state
    assert set(
        violations(
            state,
            Enqueue(
                target=QueueTarget(
                    queue_id="q" * 129,
                    required_skills=tuple(SkillRequirement(skill=f"s{i}") for i in range(33)),
                    attributes={"note": "rings a bell\x07"},
                )
            ),
        )
    ) == {"queue_id", "required_skills", "attributes['note']"}
    assert set(
        violations(
            state,
            AppendMessage(
                message_id="m",
                author=Author(role=AuthorRole.SYSTEM),
                direction=MessageDirection.OUTBOUND,
                attachments=tuple(AttachmentRef(uri=f"u{i}") for i in range(51)),
            ),
        )
    ) == {"attachments"}
    assert set(
        violations(
            state,
            AppendTranscript(
                segment_id="s", speaker_role=AuthorRole.AGENT, text="x", start_offset_ms=-1
            ),
        )
    ) == {"start_offset"}


def test_attributes_are_limited_after_merging(reach: Any) -> None:
    half = {f"k{i}": "v" for i in range(40)}
    other_half = {f"j{i}": "v" for i in range(40)}
    assert set(
        violations(
            None,
            CreateInteraction(
                interaction_id="i-1",
                channel=Channel.VOICE,
                attributes=half,
                queue=QueueTarget(queue_id="q", attributes=other_half),
            ),
        )
    ) == {"queue.attributes"}
    story = reach(S.CREATED)
    story.when(Enqueue(target=QueueTarget(queue_id="q", attributes=half)))
    with pytest.raises(ValidationFailed, match="at most 64 attributes in all"):
        story.when(Enqueue(target=QueueTarget(queue_id="q", attributes=other_half)))


@pytest.mark.parametrize(
    ("limit", "command"),
    [
        (
            "MAX_MESSAGES",
            lambda i: AppendMessage(
                message_id=f"m-{i}",
                author=Author(role=AuthorRole.CUSTOMER),
                direction=MessageDirection.INBOUND,
                body="hi",
            ),
        ),
        ("MAX_NOTES", lambda i: AddNote(note_id=f"n-{i}", author_id="a-1", text="note")),
        (
            "MAX_TRANSCRIPT_SEGMENTS",
            lambda i: AppendTranscript(
                segment_id=f"s-{i}", speaker_role=AuthorRole.CUSTOMER, text="hi"
            ),
        ),
    ],
)
def test_content_is_bounded(limit: str, command: Any, reach: Any, monkeypatch: Any) -> None:
    from contactcenter.contracts.errors import FailedPrecondition
    from contactcenter.interactions.domain import decisions

    monkeypatch.setattr(decisions, limit, 3)
    story = reach(S.CONNECTED)
    for i in range(3):
        story.when(command(i))
    with pytest.raises(FailedPrecondition, match="holds at most 3"):
        story.when(command(3))
