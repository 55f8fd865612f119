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
