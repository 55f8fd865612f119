"""Every domain event maps to its protobuf payload with every field set, and the aggregate
survives its JSON form (the list read model) unchanged."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta
from enum import Enum
from types import NoneType, UnionType
from typing import Any, Union

import pytest

from contactcenter.interactions.adapters import proto
from contactcenter.interactions.adapters.snapshot import dump_interaction, load_interaction
from contactcenter.interactions.domain import (
    EVENT_TYPES,
    AttachmentRef,
    Author,
    AuthorRole,
    Channel,
    CommandContext,
    CreateInteraction,
    Hold,
    Interaction,
    InteractionEvent,
    InteractionState,
    QueueTarget,
    SkillRequirement,
    decide,
)
from contactcenter.interactions.domain.commands import AppendMessage, Assign, Connect

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def sample(annotation: Any, name: str) -> Any:
    """A non-default value of `annotation` (for field `name`)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not NoneType]
        return sample(inner, name)
    if origin is tuple:
        return (sample(typing.get_args(annotation)[0], name),)
    if origin is dict:
        return {"key": "value"}
    if annotation is str:
        return f"{name}-1"
    if annotation is bool:
        return True
    if annotation is int:
        return 7
    if annotation is float:
        return 0.5
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return list(annotation)[-1]
    if annotation is datetime or "Datetime" in getattr(annotation, "__name__", ""):
        return T0
    if annotation is SkillRequirement:
        return SkillRequirement(skill="billing", min_proficiency=3)
    if annotation is Author:
        return Author(role=AuthorRole.AGENT, id="a-1", display_name="Ann")
    if annotation is AttachmentRef:
        return AttachmentRef(uri="email://m/1", file_name="a.pdf", size_bytes=10)
    raise AssertionError(f"no sample for {name}: {annotation!r}")


def full_event(event_type: type[InteractionEvent]) -> InteractionEvent:
    envelope = {"tenant_id": "t-1", "interaction_id": "i-1", "occurred_at": T0}
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(event_type)
    for name in event_type.model_fields:
        if name in ("event_id", "correlation_id", "causation_id") or name in envelope:
            continue
        values[name] = sample(hints[name], name)
    if "scale" in values:
        values["scale"], values["score"] = 5, 4
    if "confidence" in values:
        values["confidence"] = 0.5
    return event_type(**envelope, **values)


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
def test_every_event_maps_with_every_field(event_type: type[InteractionEvent]) -> None:
    event = full_event(event_type)
    out = proto.interaction_event(event, version=3, state=InteractionState.QUEUED)
    assert out.event_type == event.event_type and out.version == 3
    name = out.WhichOneof("payload")
    assert name == proto.PAYLOAD_FIELDS[event_type]
    payload = getattr(out, name)
    # Every field of the domain event (all given a non-default value) is set in the payload;
    # content events nest one message.
    domain_fields = [
        n
        for n in event_type.model_fields
        if n not in ("event_id", "tenant_id", "occurred_at", "correlation_id", "causation_id")
        and n != "interaction_id"
    ]
    set_fields = [f.name for f, _ in payload.ListFields()]
    if len(set_fields) == 1 and len(domain_fields) > 1:
        nested = getattr(payload, set_fields[0])
        assert len(nested.ListFields()) >= len(domain_fields), nested
    else:
        assert len(set_fields) == len(domain_fields), (set_fields, domain_fields)


def test_durations_and_times_are_exact() -> None:
    assert proto.to_ms(proto.duration_ms(123_456)) == 123_456
    moment = T0 + timedelta(milliseconds=789)
    assert proto.from_timestamp(proto.timestamp(moment)) == moment
    assert proto.from_micros(proto.to_micros(moment)) == moment


def test_the_aggregate_survives_its_json_form() -> None:
    context = CommandContext(tenant_id="t-1", now=T0)
    history = decide(
        None,
        CreateInteraction(
            interaction_id="i-1",
            channel=Channel.VOICE,
            attributes={"a": "b"},
            queue=QueueTarget(queue_id="q", required_skills=(SkillRequirement(skill="x"),)),
        ),
        context,
    )
    for command in (
        Assign(agent_id="a-1"),
        Connect(),
        AppendMessage(
            message_id="m-1",
            author=Author(role=AuthorRole.AGENT, id="a-1"),
            direction=proto.MessageDirection.OUTBOUND,
            body="hi",
        ),
        Hold(),
    ):
        state = Interaction.from_events(history)
        context = CommandContext(tenant_id="t-1", now=state.updated_at + timedelta(seconds=5))
        history += decide(state, command, context)
    state = Interaction.from_events(history)
    assert load_interaction(dump_interaction(state, basic=False)) == state
    basic = load_interaction(dump_interaction(state))
    assert basic.messages == () and basic.version == state.version
    view = proto.interaction(basic, now=T0 + timedelta(minutes=1), full=False)
    assert view.state == proto.STATE.to_proto(InteractionState.ON_HOLD)
    assert view.talk_duration.ToMilliseconds() == 10_000  # connected at +10 s, held at +20 s
    assert view.hold_duration.ToMilliseconds() == 40_000  # up to now
