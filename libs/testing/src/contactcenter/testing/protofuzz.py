"""Hypothesis strategies for protobuf requests, built from the message descriptors: random and
hostile field values (huge, empty, control and non-BMP characters, injection-looking text,
negative and extreme numbers, enum numbers no enum has, timestamps and durations out of range),
fields left unset, nested messages, repeated fields and maps."""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

MAX_DEPTH = 3
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)

HOSTILE_STRINGS = (
    "",
    " ",
    "\x00",
    "\n\r\t",
    "💥🧨",
    "\u202etxt.exe",
    "\ud7ff\ue000\U0010ffff",
    "Ω" * 300,
    "x" * 5_000,
    "y" * 100_000,
    "' OR 1=1 --",
    "%s%n%x",
    "../../../etc/passwd",
    "<script>alert(1)</script>",
    "-1",
    "0",
    "9" * 40,
    "NaN",
    "1e309",
    "2026-13-45",
    "2026-02-30",
    "9999-12-31",
    "0000-01-01",
    "25:61",
    "Europe/Nowhere",
    "UTC",
    "not an email",
    "a@b",
    "@",
    "+",
    "+999999999999999999999",
    "00000000-0000-0000-0000-000000000000",
    "null",
    "{}",
    "[]",
    "\\",
    '"',
)
_INTEGER_LIMITS = {
    FieldDescriptor.TYPE_INT32: INT32,
    FieldDescriptor.TYPE_SINT32: INT32,
    FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_INT64: INT64,
    FieldDescriptor.TYPE_SINT64: INT64,
    FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT32: UINT32,
    FieldDescriptor.TYPE_FIXED32: UINT32,
    FieldDescriptor.TYPE_UINT64: UINT64,
    FieldDescriptor.TYPE_FIXED64: UINT64,
}


def strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE_STRINGS),
        st.text(max_size=40),
        st.uuids().map(str),
        st.from_regex(r"[a-z0-9-]{1,12}", fullmatch=True),
    )


def integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [v for v in (low, high, -1, 0, 1, 2, 60, 3600, 86_400, 10**9) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high), st.integers(-1000, 1000))


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return strings()
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.one_of(
            st.binary(max_size=200),
            st.sampled_from([b"", b"\x00" * 10, b"\xff\xfe" * 1000, b"x" * 100_000]),
            strings().map(lambda s: s.encode("utf-8", "surrogatepass")),
        )
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        single = kind == FieldDescriptor.TYPE_FLOAT
        return st.one_of(
            st.floats(width=32) if single else st.floats(),  # NaN and infinities included
            st.sampled_from([0.0, -1.0, 1e-9, 3e38 if single else 1e308]),
        )
    if kind == FieldDescriptor.TYPE_ENUM:
        assert field.enum_type is not None
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), integers(*INT32))
    if kind in _INTEGER_LIMITS:
        return integers(*_INTEGER_LIMITS[kind])
    raise NotImplementedError(f"field type {kind} of {field.full_name}")


def _well_known(descriptor: Descriptor) -> st.SearchStrategy[dict[str, Any]] | None:
    if descriptor.full_name in ("google.protobuf.Timestamp", "google.protobuf.Duration"):
        seconds = st.one_of(
            st.integers(-62_135_596_800, 253_402_300_799),  # the valid range
            st.integers(*INT64),
            st.sampled_from([0, -1, 1_700_000_000, 4_102_444_800]),
        )
        nanos = st.one_of(st.integers(0, 999_999_999), st.integers(*INT32))
        return st.fixed_dictionaries({}, optional={"seconds": seconds, "nanos": nanos})
    return None


def message_fields(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """A dict of field values for `descriptor` (each field set or not), nested dicts for
    messages; turned into a message with `build`."""
    return _message_fields(descriptor.full_name, depth)


@functools.cache
def _message_fields(full_name: str, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(full_name)
    known = _well_known(descriptor)
    if known is not None:
        return known
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            value = (
                _scalar(value_field)
                if value_field.message_type is None
                else message_fields(value_field.message_type, depth + 1)
            )
            optional[field.name] = st.dictionaries(_scalar(key_field), value, max_size=4)
            continue
        if field.message_type is not None:
            if depth >= MAX_DEPTH:
                continue
            single: st.SearchStrategy[Any] = message_fields(field.message_type, depth + 1)
        elif field.name == "request_id":
            # Mostly fresh, so that retried-request deduplication hides no work.
            single = st.one_of(st.uuids().map(str), st.uuids().map(str), strings())
        else:
            single = _scalar(field)
        if field.is_repeated:
            # Many elements: one repeated (cheap to generate, as hard to serve).
            many = st.tuples(single, st.integers(20, 60)).map(lambda t: [t[0]] * t[1])
            optional[field.name] = st.one_of(st.lists(single, max_size=3), many)
        else:
            optional[field.name] = single
    return st.fixed_dictionaries({}, optional=optional)


def _fill(message: Message, values: dict[str, Any]) -> None:
    descriptor = message.DESCRIPTOR
    for name, value in values.items():
        field = descriptor.fields_by_name[name]
        target = getattr(message, name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                if value_field.message_type is None:
                    target[key] = item
                else:
                    _fill(target[key], item)
        elif field.message_type is not None:
            if field.is_repeated:
                for item in value:
                    _fill(target.add(), item)
            else:
                target.SetInParent()
                _fill(target, value)
        elif field.is_repeated:
            target.extend(value)
        else:
            setattr(message, name, value)


def build(descriptor: Descriptor, values: dict[str, Any]) -> Message:
    message = message_factory.GetMessageClass(descriptor)()
    _fill(message, values)
    return message


def requests(descriptor: Descriptor) -> st.SearchStrategy[Message]:
    """Messages of type `descriptor`."""
    return message_fields(descriptor).map(lambda values: build(descriptor, values))
