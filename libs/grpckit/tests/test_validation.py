"""require_fields: which proto3 fields count as missing."""

from __future__ import annotations

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.errors import FieldViolation, ValidationFailed
from contactcenter.grpckit import missing_fields, require_fields
from contactcenter.platform.v1 import platform_pb2


def test_scalars_at_their_default_are_missing() -> None:
    assert missing_fields(common_pb2.PageRequest(), ["page_size", "page_token"]) == [
        FieldViolation("page_size", "is required"),
        FieldViolation("page_token", "is required"),
    ]
    assert missing_fields(common_pb2.PageRequest(page_size=10, page_token="t"), ["page_size"]) == []


def test_messages_repeated_and_nested_paths() -> None:
    empty = common_pb2.TimeRange()
    # A missing parent makes the nested path missing too.
    assert [v.field for v in missing_fields(empty, ["start_time", "start_time.seconds"])] == [
        "start_time",
        "start_time.seconds",
    ]
    filled = common_pb2.TimeRange(start_time=Timestamp(seconds=5))
    assert missing_fields(filled, ["start_time", "start_time.seconds"]) == []
    assert missing_fields(filled, ["start_time.nanos"]) == [
        FieldViolation("start_time.nanos", "is required")
    ]
    assert [v.field for v in missing_fields(platform_pb2.EchoResponse(), ["roles"])] == ["roles"]
    assert missing_fields(platform_pb2.EchoResponse(roles=["agent"]), ["roles"]) == []


def test_require_fields_raises_with_every_violation() -> None:
    with pytest.raises(ValidationFailed) as error:
        require_fields(platform_pb2.EchoRequest(message="x"), "request_id", "message")
    assert error.value.field_violations == [FieldViolation("request_id", "is required")]


def test_a_typo_in_a_field_path_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no field"):
        require_fields(platform_pb2.EchoRequest(), "request_idd")
    with pytest.raises(ValueError, match="not a singular message field"):
        require_fields(platform_pb2.EchoRequest(request_id="r"), "request_id.x")


def test_validation_failed_needs_a_violation() -> None:
    with pytest.raises(ValueError):
        ValidationFailed([])


def test_timestamps_and_durations_protobuf_cannot_convert_are_named() -> None:
    from google.protobuf.duration_pb2 import Duration

    from contactcenter.grpckit import invalid_fields, require_valid_fields
    from contactcenter.interactions.v1 import interactions_pb2

    good = common_pb2.TimeRange(start_time=Timestamp(seconds=0), end_time=Timestamp(seconds=5))
    assert invalid_fields(good) == []
    assert invalid_fields(platform_pb2.EchoRequest(message="no time fields")) == []
    bad = common_pb2.TimeRange(
        start_time=Timestamp(seconds=1, nanos=-1), end_time=Timestamp(seconds=2**62)
    )
    assert [v.field for v in invalid_fields(bad)] == ["start_time", "end_time"]
    nested = interactions_pb2.ListInteractionsRequest(
        create_time=common_pb2.TimeRange(start_time=Timestamp(nanos=10**9))
    )
    assert [v.field for v in invalid_fields(nested)] == ["create_time.start_time"]
    transcript = interactions_pb2.AppendTranscriptRequest(
        start_offset=Duration(seconds=1, nanos=-5), end_offset=Duration(seconds=-1, nanos=-5)
    )
    assert [v.field for v in invalid_fields(transcript)] == ["start_offset"]
    repeated = interactions_pb2.Interaction(
        messages=[interactions_pb2.Message(), interactions_pb2.Message(sent_at=Timestamp(nanos=-1))]
    )
    assert [v.field for v in invalid_fields(repeated)] == ["messages[1].sent_at"]
    with pytest.raises(ValidationFailed) as error:
        require_valid_fields(bad)
    assert [v.field for v in error.value.field_violations] == ["start_time", "end_time"]
    # Everything invalid_fields accepts, protobuf converts.
    for stamp in (Timestamp(seconds=-62_135_596_800), Timestamp(seconds=253_402_300_799, nanos=1)):
        stamp.ToDatetime()


def test_strings_with_nul_characters_are_named_wherever_they_are() -> None:
    from contactcenter.grpckit import invalid_fields
    from contactcenter.interactions.v1 import interactions_pb2

    request = interactions_pb2.CreateInteractionRequest(
        request_id="a\x00b",
        attributes={"k\x00": "v", "ok": "v\x00"},
        queue=interactions_pb2.QueueTarget(
            required_skills=[interactions_pb2.SkillRequirement(skill="\x00")]
        ),
    )
    assert sorted(v.field for v in invalid_fields(request)) == [
        "attributes['k\\x00']",
        "attributes['ok']",
        "queue.required_skills[0].skill",
        "request_id",
    ]
    assert invalid_fields(interactions_pb2.CreateInteractionRequest(subject="ünïcödé 💥")) == []
