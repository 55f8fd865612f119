"""Checking the required fields of a request message.

proto3 has no required fields, so servers check them: a scalar is missing when it holds its
default ("" / 0 / false / the *_UNSPECIFIED enum value), a message or `optional` field when it is
not set, a repeated or map field when it is empty.

    require_fields(request, "request_id", "queue.name", "channel")

And of every request, before its handler runs (the server interceptor): every Timestamp and
Duration is one protobuf can convert and no string holds a NUL character
(`require_valid_fields`), so that no handler meets a ValueError from `ToDatetime()` or a
database that refuses the text, and the client learns which field is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from contactcenter.contracts.errors import FieldViolation, ValidationFailed


def _is_missing(message: Message, name: str) -> bool:
    field = message.DESCRIPTOR.fields_by_name[name]
    value = getattr(message, name)
    if field.is_repeated:
        return len(value) == 0
    if field.has_presence:
        return not message.HasField(field.name)
    return bool(value == field.default_value)


def _missing(message: Message, path: str) -> str | None:
    """Why `path` (dotted, e.g. `queue.name`) is missing, or None when it is set."""
    current = message
    parts = path.split(".")
    for depth, name in enumerate(parts):
        field = current.DESCRIPTOR.fields_by_name.get(name)
        if field is None:
            # A typo in server code, not bad input: fail loudly.
            raise ValueError(f"{current.DESCRIPTOR.full_name} has no field {name!r} ({path!r})")
        if _is_missing(current, name):
            return "is required"
        if depth < len(parts) - 1:
            if field.message_type is None or field.is_repeated:
                raise ValueError(f"{path!r}: {name!r} is not a singular message field")
            current = getattr(current, name)
    return None


def missing_fields(message: Message, paths: Iterable[str]) -> list[FieldViolation]:
    """A field violation for every path in `paths` that is not set, in the given order."""
    violations = []
    for path in paths:
        reason = _missing(message, path)
        if reason is not None:
            violations.append(FieldViolation(path, reason))
    return violations


def require_fields(message: Message, *paths: str) -> None:
    """Raise ValidationFailed (INVALID_ARGUMENT) naming every path that is not set."""
    violations = missing_fields(message, paths)
    if violations:
        raise ValidationFailed(violations)


# google.protobuf.Timestamp: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z;
# google.protobuf.Duration: +-10,000 years; nanos within one second (and of the seconds' sign).
_TIMESTAMP = "google.protobuf.Timestamp"
_DURATION = "google.protobuf.Duration"
_TIMES = (_TIMESTAMP, _DURATION)
_TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)
_DURATION_SECONDS = 315_576_000_000
_NANOS = 999_999_999
NUL = "\x00"


def _time_violation(message: Message) -> str | None:
    seconds: int = message.seconds  # type: ignore[attr-defined]
    nanos: int = message.nanos  # type: ignore[attr-defined]
    if message.DESCRIPTOR.full_name == _TIMESTAMP:
        if not _TIMESTAMP_SECONDS[0] <= seconds <= _TIMESTAMP_SECONDS[1]:
            return "is not a timestamp between the years 0001 and 9999"
        if not 0 <= nanos <= _NANOS:
            return "nanos must be within 0..999999999"
        return None
    if not -_DURATION_SECONDS <= seconds <= _DURATION_SECONDS:
        return "is not a duration within 10,000 years"
    if not -_NANOS <= nanos <= _NANOS or (seconds and nanos and (seconds > 0) != (nanos > 0)):
        return "nanos must be within one second and of the sign of seconds"
    return None


def _check_string(value: str, path: str, out: list[FieldViolation]) -> None:
    if NUL in value:
        out.append(FieldViolation(path, "must not contain NUL (U+0000) characters"))


def _check_value(
    field: FieldDescriptor, value: object, path: str, out: list[FieldViolation]
) -> None:
    if field.message_type is not None:
        _walk(value, path, out)  # type: ignore[arg-type]
    elif field.type == FieldDescriptor.TYPE_STRING:
        _check_string(value, path, out)  # type: ignore[arg-type]


def _walk(message: Message, path: str, out: list[FieldViolation]) -> None:
    if message.DESCRIPTOR.full_name in _TIMES:
        reason = _time_violation(message)
        if reason is not None:
            out.append(FieldViolation(path, reason))
        return
    for field, value in message.ListFields():
        name = f"{path}.{field.name}" if path else field.name
        sub = field.message_type
        if sub is not None and sub.GetOptions().map_entry:
            key_field, value_field = sub.fields_by_name["key"], sub.fields_by_name["value"]
            for key, item in value.items():
                if key_field.type == FieldDescriptor.TYPE_STRING:
                    _check_string(key, f"{name}[{key!r}]", out)
                _check_value(value_field, item, f"{name}[{key!r}]", out)
        elif field.is_repeated:
            for n, item in enumerate(value):
                _check_value(field, item, f"{name}[{n}]", out)
        else:
            _check_value(field, value, name, out)


def invalid_fields(message: Message) -> list[FieldViolation]:
    """A violation for every field of `message`, at any depth, that no service can take
    whatever it means: a Timestamp or Duration protobuf refuses to convert (`ToDatetime`,
    `ToTimedelta`: out of range, or nanos out of their range), and a string with a NUL
    character (PostgreSQL text cannot hold one)."""
    violations: list[FieldViolation] = []
    _walk(message, "", violations)
    return violations


def require_valid_fields(message: Message) -> None:
    """Raise ValidationFailed (INVALID_ARGUMENT) naming every field `invalid_fields` finds."""
    violations = invalid_fields(message)
    if violations:
        raise ValidationFailed(violations)
