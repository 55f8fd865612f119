"""Sequences that look like repeats: what changes nothing, and what is still refused.

Retries with the same request_id are caught before the domain (by the event store); these are
the repeats that arrive as *different* requests: a routing event and a gateway call racing, a
redelivered email, a re-sent transcript segment or survey answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contactcenter.contracts.errors import FailedPrecondition, IllegalTransition
from contactcenter.interactions.domain import (
    AppendMessage,
    AppendTranscript,
    Assign,
    AttachmentRef,
    Author,
    AuthorRole,
    Channel,
    Connect,
    Enqueue,
    Hold,
    InteractionState,
    LinkProfile,
    MarkRepeat,
    MessageDirection,
    Offer,
    OfferWithdrawalReason,
    ProfileLinkReason,
    QueueTarget,
    RecordSatisfaction,
    Resume,
    SkillRequirement,
    WithdrawOffer,
)

S = InteractionState


def email(external_id: str, message_id: str = "m-1", body: str = "Where is my refund?") -> Any:
    return AppendMessage(
        message_id=message_id,
        author=Author(role=AuthorRole.CUSTOMER, id="p-1"),
        direction=MessageDirection.INBOUND,
        body=body,
        subject="Refund",
        attachments=(AttachmentRef(uri="email://abc/2", file_name="invoice.pdf", size_bytes=1234),),
        external_message_id=external_id,
    )


def test_the_same_offer_twice_changes_nothing(reach: Any) -> None:
    story = reach(S.OFFERED)
    assert story.when(Offer(offer_id="o-1", agent_id="a-1")) == []


def test_the_assignment_arriving_after_the_gateways_connect_changes_nothing(reach: Any) -> None:
    """The gateway's Connect beats routing's OfferAccepted through Kafka."""
    story = reach(S.OFFERED)
    story.when(Connect(agent_id="a-1"), after=2)
    version = story.interaction.version
    assert story.when(Assign(agent_id="a-1", offer_id="o-1"), after=1) == []
    assert story.when(Assign(agent_id="a-1"), after=1) == []
    story.when(Hold())
    assert story.when(Assign(agent_id="a-1", offer_id="o-1")) == []
    assert story.interaction.version == version + 1


def test_a_late_withdrawal_of_a_superseded_offer_changes_nothing(reach: Any) -> None:
    story = reach(S.OFFERED)
    story.when(WithdrawOffer(offer_id="o-1", reason=OfferWithdrawalReason.REJECTED), after=3)
    story.when(Offer(offer_id="o-2", agent_id="a-2"), after=3)
    # o-1 again (redelivered): o-2 stays offered
    assert story.when(WithdrawOffer(offer_id="o-1", reason=OfferWithdrawalReason.REJECTED)) == []
    assert story.interaction.offer_id == "o-2"


def test_withdrawing_the_accepted_offer_is_refused(reach: Any) -> None:
    story = reach(S.CONNECTED)
    with pytest.raises(FailedPrecondition, match="was accepted") as error:
        story.when(WithdrawOffer(offer_id="o-1", reason=OfferWithdrawalReason.CANCELLED))
    assert error.value.current_state == "connected"


def test_an_identical_enqueue_changes_nothing(reach: Any) -> None:
    story = reach(S.QUEUED)
    same = QueueTarget(
        queue_id="q-support",
        priority=10,
        required_skills=(SkillRequirement(skill="billing", min_proficiency=3),),
        attributes={"ivr_path": "1-2"},
    )
    assert story.when(Enqueue(target=same), after=5) == []
    # a different priority is a change
    changed = QueueTarget(queue_id="q-support", priority=11)
    assert len(story.when(Enqueue(target=changed), after=5)) == 1


def test_hold_twice_is_illegal_not_silent(reach: Any) -> None:
    story = reach(S.CONNECTED)
    story.when(Hold())
    with pytest.raises(IllegalTransition, match="it is on_hold"):
        story.when(Hold())
    story.when(Resume())
    with pytest.raises(IllegalTransition, match="it is connected"):
        story.when(Resume())


def test_a_redelivered_email_is_recognised_by_its_message_id(reach: Any) -> None:
    story = reach(S.QUEUED, Channel.EMAIL)
    first = story.when(email("<a1@mail.example>"))
    assert len(first) == 1
    assert story.when(email("<a1@mail.example>", message_id="m-2")) == []
    assert story.when(email("<a2@mail.example>", message_id="m-2"))
    assert [m.message_id for m in story.interaction.messages] == ["m-1", "m-2"]
    assert story.interaction.messages[0].attachments[0].file_name == "invoice.pdf"


def test_a_redelivered_email_after_completion_is_still_a_no_op(reach: Any) -> None:
    story = reach(S.CONNECTED, Channel.EMAIL)
    story.when(email("<a1@mail.example>"))
    from contactcenter.interactions.domain import Complete, End, EndedBy

    story.when(End(ended_by=EndedBy.AGENT), after=60)
    story.when(Complete(), after=10)
    assert story.when(email("<a1@mail.example>", message_id="m-9")) == []
    # a new message on a completed interaction is refused (the process manager then creates a
    # new interaction for the thread)
    with pytest.raises(IllegalTransition, match="it is completed"):
        story.when(email("<a2@mail.example>", message_id="m-9"))


def test_a_resent_transcript_segment_changes_nothing(reach: Any) -> None:
    story = reach(S.CONNECTED)
    segment = AppendTranscript(
        segment_id="seg-1", speaker_role=AuthorRole.AGENT, speaker_id="a-1", text="Hello"
    )
    assert len(story.when(segment)) == 1
    assert story.when(segment) == []
    assert len(story.interaction.transcript) == 1


@pytest.mark.parametrize("channel", [Channel.CHAT, Channel.EMAIL, Channel.SMS, Channel.SOCIAL])
def test_transcripts_are_for_speech(channel: Channel, reach: Any) -> None:
    story = reach(S.CONNECTED, channel)
    with pytest.raises(FailedPrecondition, match="has no transcript"):
        story.when(AppendTranscript(segment_id="s", speaker_role=AuthorRole.BOT, text="hi"))


def test_the_same_survey_answer_again_changes_nothing_a_different_one_is_refused(
    reach: Any,
) -> None:
    story = reach(S.COMPLETED)
    answer = RecordSatisfaction(score=5, comment="great", survey_id="sv-1")
    event = story.when(answer)[0]
    assert (event.score, event.scale) == (5, 5)
    assert story.when(answer) == []
    assert story.when(RecordSatisfaction(score=5, scale=5, comment="great", survey_id="sv-1")) == []
    with pytest.raises(FailedPrecondition, match="already recorded"):
        story.when(RecordSatisfaction(score=1, comment="changed my mind", survey_id="sv-1"))
    assert story.interaction.satisfaction is not None
    assert story.interaction.satisfaction.score == 5


def test_marking_a_repeat_twice(reach: Any) -> None:
    story = reach(S.QUEUED)
    earlier = datetime(2026, 2, 27, 15, 30, tzinfo=UTC)
    mark = MarkRepeat(repeat_of_interaction_id="i-0", previous_created_at=earlier, window_days=7)
    event = story.when(mark)[0]
    assert event.previous_created_at == earlier
    assert story.when(mark) == []
    with pytest.raises(FailedPrecondition, match="already marked a repeat of 'i-0'"):
        story.when(
            MarkRepeat(repeat_of_interaction_id="i-00", previous_created_at=earlier, window_days=7)
        )
    assert story.interaction.repeat is not None


def test_a_repeat_cannot_repeat_itself_or_the_future(reach: Any) -> None:
    story = reach(S.QUEUED)
    with pytest.raises(Exception, match="repeat_of_interaction_id: an interaction cannot"):
        story.when(
            MarkRepeat(repeat_of_interaction_id="i-1", previous_created_at=story.T0, window_days=7)
        )
    with pytest.raises(Exception, match="previous_created_at: must not be after"):
        story.when(
            MarkRepeat(
                repeat_of_interaction_id="i-0",
                previous_created_at=story.T0 + timedelta(milliseconds=1),
                window_days=7,
            )
        )


def test_linking_the_same_profile_again_changes_nothing(reach: Any) -> None:
    story = reach(S.CONNECTED)
    assert story.when(LinkProfile(profile_id="p-1")) == []  # created with p-1
    merged = story.when(LinkProfile(profile_id="p-9", reason=ProfileLinkReason.MERGED))[0]
    assert (merged.previous_profile_id, merged.profile_id) == ("p-1", "p-9")
    assert story.interaction.customer_profile_id == "p-9"
