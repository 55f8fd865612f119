"""Checking the required fields of a request message.

proto3 has no required fields, so servers check them: a scalar is missing when it holds its
default ("" / 0 / false / the *_UNSPECIFIED enum value), a message or `optional` field when it is
not set, a repeated or map field when it is empty.

    require_fields(request, "request_id", "queue.name", "channel")
"""

from __future__ import annotations

from collections.abc import Iterable

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
