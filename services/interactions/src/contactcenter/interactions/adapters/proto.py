"""Domain values <-> protobuf messages of `contactcenter.interactions.v1`.

Enums map by name: the domain's `InteractionState.ON_HOLD` is the proto's
`INTERACTION_STATE_ON_HOLD`. Times are Timestamps, `*_ms` durations are Durations.
Events map generically: every domain field lands in the proto field of the same name, with
`*_ms` -> Duration field without the suffix, `*_at` -> Timestamp `*_time` and a few explicit
renames; content events (message, note, transcript, satisfaction) nest their message.
A domain field with no proto field is a programming error (tests map every event type).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from contactcenter.common.v1 import common_pb2
from contactcenter.interactions.domain import (
    AttachmentRef,
    Author,
    AuthorRole,
    Channel,
    Direction,
    EndedBy,
    Interaction,
    InteractionEvent,
    InteractionState,
    MessageDirection,
    OfferWithdrawalReason,
    ProfileLinkReason,
    QueueReason,
    SkillRequirement,
    TransferMode,
)
from contactcenter.interactions.domain import events as ev
from contactcenter.interactions.v1 import interactions_pb2 as pb

E = TypeVar("E", bound=StrEnum)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


class EnumMap(Generic[E]):
    """A domain StrEnum <-> a proto enum whose values are `<ENUM_NAME>_<MEMBER>`."""

    def __init__(self, domain: type[E], descriptor: EnumDescriptor) -> None:
        prefix = _upper_snake(descriptor.name) + "_"
        self.domain = domain
        self.descriptor = descriptor
        self._to: dict[E, int] = {}
        self._from: dict[int, E] = {}
        for member in domain:
            number = descriptor.values_by_name[prefix + member.name].number
            self._to[member] = number
            self._from[number] = member

    def to_proto(self, value: E | None) -> Any:
        """The enum number (typed Any: each generated enum has its own ValueType)."""
        return 0 if value is None else self._to[value]

    def from_proto(self, number: int) -> E | None:
        """None for UNSPECIFIED and for numbers this server does not know."""
        return self._from.get(number)

    def known(self, number: int) -> bool:
        return number == 0 or number in self._from


CHANNEL = EnumMap(Channel, common_pb2.DESCRIPTOR.enum_types_by_name["Channel"])
STATE = EnumMap(InteractionState, pb.DESCRIPTOR.enum_types_by_name["InteractionState"])
DIRECTION = EnumMap(Direction, pb.DESCRIPTOR.enum_types_by_name["InteractionDirection"])
QUEUE_REASON = EnumMap(QueueReason, pb.DESCRIPTOR.enum_types_by_name["QueueReason"])
TRANSFER_MODE = EnumMap(TransferMode, pb.DESCRIPTOR.enum_types_by_name["TransferMode"])
ENDED_BY = EnumMap(EndedBy, pb.DESCRIPTOR.enum_types_by_name["EndedBy"])
AUTHOR_ROLE = EnumMap(AuthorRole, pb.DESCRIPTOR.enum_types_by_name["AuthorRole"])
MESSAGE_DIRECTION = EnumMap(MessageDirection, pb.DESCRIPTOR.enum_types_by_name["MessageDirection"])
WITHDRAWAL_REASON = EnumMap(
    OfferWithdrawalReason, pb.DESCRIPTOR.enum_types_by_name["OfferWithdrawalReason"]
)
PROFILE_LINK_REASON = EnumMap(
    ProfileLinkReason, pb.DESCRIPTOR.enum_types_by_name["ProfileLinkReason"]
)
_ENUMS: Final[Mapping[type[StrEnum], EnumMap[Any]]] = {
    m.domain: m
    for m in (
        CHANNEL,
        STATE,
        DIRECTION,
        QUEUE_REASON,
        TRANSFER_MODE,
        ENDED_BY,
        AUTHOR_ROLE,
        MESSAGE_DIRECTION,
        WITHDRAWAL_REASON,
        PROFILE_LINK_REASON,
    )
}


# --- scalars -------------------------------------------------------------------------------------


def timestamp(moment: datetime) -> Timestamp:
    micros = (moment - _EPOCH) // _MICROSECOND
    seconds, rest = divmod(micros, 1_000_000)
    return Timestamp(seconds=seconds, nanos=rest * 1000)


def from_timestamp(value: Timestamp) -> datetime:
    return _EPOCH + timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)


def to_micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def duration_ms(milliseconds: int) -> Duration:
    seconds, rest = divmod(milliseconds, 1000)
    return Duration(seconds=seconds, nanos=rest * 1_000_000)


def duration(value: timedelta) -> Duration:
    return duration_ms(value // timedelta(milliseconds=1))


def to_ms(value: Duration) -> int:
    return value.seconds * 1000 + value.nanos // 1_000_000


def skills_to_proto(skills: Sequence[SkillRequirement]) -> list[pb.SkillRequirement]:
    return [pb.SkillRequirement(skill=s.skill, min_proficiency=s.min_proficiency) for s in skills]


def skills_from_proto(skills: Sequence[pb.SkillRequirement]) -> tuple[SkillRequirement, ...]:
    return tuple(SkillRequirement(skill=s.skill, min_proficiency=s.min_proficiency) for s in skills)


def attachment_from_proto(a: pb.AttachmentRef) -> AttachmentRef:
    return AttachmentRef(
        uri=a.uri,
        attachment_id=a.attachment_id or None,
        file_name=a.file_name or None,
        content_type=a.content_type or None,
        size_bytes=a.size_bytes if a.size_bytes else None,
    )


def _attachment(a: AttachmentRef) -> pb.AttachmentRef:
    return pb.AttachmentRef(
        attachment_id=a.attachment_id or "",
        uri=a.uri,
        file_name=a.file_name or "",
        content_type=a.content_type or "",
        size_bytes=a.size_bytes or 0,
    )


def _author(a: Author) -> pb.Author:
    return pb.Author(
        role=AUTHOR_ROLE.to_proto(a.role), id=a.id or "", display_name=a.display_name or ""
    )


# --- content -------------------------------------------------------------------------------------


def message(m: ev.MessageAppended) -> pb.Message:
    out = pb.Message(
        message_id=m.message_id,
        author=_author(m.author),
        direction=MESSAGE_DIRECTION.to_proto(m.direction),
        body=m.body,
        content_type=m.content_type,
        subject=m.subject or "",
        attachments=[_attachment(a) for a in m.attachments],
        external_message_id=m.external_message_id or "",
        create_time=timestamp(m.occurred_at),
    )
    if m.sent_at is not None:
        out.sent_at.CopyFrom(timestamp(m.sent_at))
    return out


def note(n: ev.NoteAdded) -> pb.Note:
    return pb.Note(
        note_id=n.note_id, author_id=n.author_id, text=n.text, create_time=timestamp(n.occurred_at)
    )


def transcript_segment(t: ev.TranscriptAppended) -> pb.TranscriptSegment:
    return pb.TranscriptSegment(
        segment_id=t.segment_id,
        speaker_role=AUTHOR_ROLE.to_proto(t.speaker_role),
        speaker_id=t.speaker_id or "",
        text=t.text,
        start_offset=duration_ms(t.start_offset_ms),
        end_offset=duration_ms(t.end_offset_ms),
        confidence=t.confidence or 0.0,
        language=t.language or "",
        create_time=timestamp(t.occurred_at),
    )


def satisfaction(s: ev.SatisfactionRecorded) -> pb.Satisfaction:
    return pb.Satisfaction(
        score=s.score,
        scale=s.scale,
        comment=s.comment or "",
        survey_id=s.survey_id or "",
        record_time=timestamp(s.occurred_at),
    )


# --- the interaction -----------------------------------------------------------------------------

_MOMENTS: Final = (
    ("created_at", "create_time"),
    ("first_enqueued_at", "enqueue_time"),
    ("offered_at", "offer_time"),
    ("answered_at", "answer_time"),
    ("ended_at", "end_time"),
    ("wrap_up_ended_at", "wrap_up_end_time"),
    ("completed_at", "complete_time"),
    ("abandoned_at", "abandon_time"),
    ("failed_at", "fail_time"),
    ("updated_at", "update_time"),
    ("queue_entered_at", "queue_entry_time"),
)


def interaction(state: Interaction, *, now: datetime, full: bool) -> pb.Interaction:
    """The client view; durations of an open state run up to `now`. `full`: with content."""
    out = pb.Interaction(
        interaction_id=state.interaction_id,
        channel=CHANNEL.to_proto(state.channel),
        direction=DIRECTION.to_proto(state.direction),
        state=STATE.to_proto(state.state),
        version=state.version,
        customer_profile_id=state.customer_profile_id or "",
        customer_address=state.customer_address or "",
        entry_point=state.entry_point or "",
        subject=state.subject or "",
        external_ref=state.external_ref or "",
        queue_id=state.queue_id or "",
        priority=state.priority,
        required_skills=skills_to_proto(state.required_skills),
        language=state.language or "",
        intent=state.intent or "",
        attributes=dict(state.attributes),
        target_agent_id=state.target_agent_id or "",
        offered_agent_id=state.offered_agent_id or "",
        agent_id=state.agent_id or "",
        participant_agent_ids=list(state.participants),
        offer_count=state.offer_count,
        transfer_count=state.transfer_count,
        talk_duration=duration(state.talk_duration(now)),
        hold_duration=duration(state.hold_duration(now)),
        wrap_up_duration=duration(state.wrap_up_duration(now)),
        wait_duration=duration(state.wait_duration(now)),
        hold_count=state.hold_count,
        ended_by=ENDED_BY.to_proto(state.ended_by),
        end_reason=state.end_reason or "",
        disposition_codes=list(state.disposition_codes),
        completion_notes=state.completion_notes or "",
        abandon_reason=state.abandon_reason or "",
        failure_code=state.failure_code or "",
        failure_detail=state.failure_detail or "",
        repeat_of_interaction_id=(
            state.repeat.repeat_of_interaction_id if state.repeat is not None else ""
        ),
    )
    for source, target in _MOMENTS:
        moment = getattr(state, source)
        if moment is not None:
            getattr(out, target).CopyFrom(timestamp(moment))
    if state.satisfaction is not None:
        out.satisfaction.CopyFrom(satisfaction(state.satisfaction))
    if full:
        out.messages.extend(message(m) for m in state.messages)
        out.notes.extend(note(n) for n in state.notes)
        out.transcript.extend(transcript_segment(t) for t in state.transcript)
    return out


def command_result(interaction_id: str, state: InteractionState, version: int) -> pb.CommandResult:
    return pb.CommandResult(
        interaction_id=interaction_id, state=STATE.to_proto(state), version=version
    )


# --- events --------------------------------------------------------------------------------------

#: Domain event class -> the `payload` oneof field of pb.InteractionEvent.
PAYLOAD_FIELDS: Final[Mapping[type[InteractionEvent], str]] = {
    ev.InteractionCreated: "created",
    ev.InteractionQueued: "queued",
    ev.InteractionOffered: "offered",
    ev.InteractionOfferWithdrawn: "offer_withdrawn",
    ev.InteractionAssigned: "assigned",
    ev.InteractionConnected: "connected",
    ev.InteractionHeld: "held",
    ev.InteractionResumed: "resumed",
    ev.InteractionTransferred: "transferred",
    ev.InteractionConferenced: "conferenced",
    ev.InteractionParticipantLeft: "participant_left",
    ev.InteractionEnded: "ended",
    ev.WrapUpEnded: "wrap_up_ended",
    ev.InteractionCompleted: "completed",
    ev.InteractionAbandoned: "abandoned",
    ev.InteractionFailed: "failed",
    ev.MessageAppended: "message_appended",
    ev.NoteAdded: "note_added",
    ev.TranscriptAppended: "transcript_appended",
    ev.SatisfactionRecorded: "satisfaction_recorded",
    ev.InteractionMarkedRepeat: "marked_repeat",
    ev.InteractionProfileLinked: "profile_linked",
}

_ENVELOPE_FIELDS: Final = frozenset(
    {"event_id", "tenant_id", "occurred_at", "correlation_id", "causation_id", "interaction_id"}
)
#: (event class, domain field) -> proto field, where the generic rules do not apply.
_RENAMES: Final[Mapping[tuple[type[InteractionEvent], str], str]] = {
    (ev.InteractionAbandoned, "waited_ms"): "total_wait",
    (ev.InteractionOffered, "expires_at"): "expire_time",
    (ev.InteractionQueued, "first_enqueued_at"): "first_enqueue_time",
    (ev.InteractionMarkedRepeat, "previous_created_at"): "previous_create_time",
}
#: Content events: one nested message built by a function.
_NESTED: Final[Mapping[type[InteractionEvent], tuple[str, Any]]] = {
    ev.MessageAppended: ("message", message),
    ev.NoteAdded: ("note", note),
    ev.TranscriptAppended: ("segment", transcript_segment),
    ev.SatisfactionRecorded: ("satisfaction", satisfaction),
}


def _target_name(event_type: type[InteractionEvent], name: str) -> str:
    renamed = _RENAMES.get((event_type, name))
    if renamed is not None:
        return renamed
    if name.endswith("_ms"):
        return name.removesuffix("_ms")
    if name.endswith("_at"):
        return name.removesuffix("_at") + "_time"
    return name


def _set_field(target: Message, field: FieldDescriptor, value: Any) -> None:
    if value is None:
        return
    name = field.name
    if field.message_type is not None and field.message_type.full_name.endswith("Entry"):
        getattr(target, name).update(value)  # a map
    elif field.message_type is not None and field.message_type.name == "Duration":
        getattr(target, name).CopyFrom(duration_ms(value))
    elif field.message_type is not None and field.message_type.name == "Timestamp":
        getattr(target, name).CopyFrom(timestamp(value))
    elif field.message_type is not None and field.message_type.name == "SkillRequirement":
        getattr(target, name).extend(skills_to_proto(value))
    elif field.enum_type is not None:
        setattr(target, name, _ENUMS[type(value)].to_proto(value))
    elif field.is_repeated:
        getattr(target, name).extend(value)
    else:
        setattr(target, name, value)


def event_payload(event: InteractionEvent) -> tuple[str, Message]:
    """The oneof field name and the payload message of one domain event."""
    event_type = type(event)
    field_name = PAYLOAD_FIELDS[event_type]
    payload_type = pb.InteractionEvent.DESCRIPTOR.fields_by_name[field_name].message_type
    assert payload_type is not None
    payload: Message = getattr(pb, payload_type.name)()
    nested = _NESTED.get(event_type)
    if nested is not None:
        name, build = nested
        getattr(payload, name).CopyFrom(build(event))
        return field_name, payload
    fields = payload_type.fields_by_name
    for name in event_type.model_fields:
        if name in _ENVELOPE_FIELDS:
            continue
        target = fields.get(_target_name(event_type, name))
        if target is None:
            raise LookupError(f"{event_type.__name__}.{name} has no field in {payload_type.name}")
        _set_field(payload, target, getattr(event, name))
    return field_name, payload


def interaction_event(
    event: InteractionEvent, *, version: int, state: InteractionState
) -> pb.InteractionEvent:
    out = pb.InteractionEvent(
        event_id=str(event.event_id),
        event_type=event.event_type,
        interaction_id=event.interaction_id,
        version=version,
        occur_time=timestamp(event.occurred_at),
        correlation_id=str(event.correlation_id),
        causation_id=str(event.causation_id) if event.causation_id is not None else "",
        state=STATE.to_proto(state),
    )
    name, payload = event_payload(event)
    getattr(out, name).CopyFrom(payload)
    return out
