"""Value types of the profiles context: channels, consent, the tenant's attribute schema."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contactcenter.contracts.errors import FieldViolation, ValidationFailed

MAX_ATTRIBUTES: Final = 100
MAX_ATTRIBUTE_VALUE: Final = 1000
_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class Channel(StrEnum):
    VOICE = "voice"
    EMAIL = "email"
    CHAT = "chat"
    SMS = "sms"
    SOCIAL = "social"
    VIDEO = "video"


class ProfileStatus(StrEnum):
    ACTIVE = "active"
    MERGED = "merged"
    ERASED = "erased"


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Consent(_Value):
    """The customer's consent for one channel (not identifying: kept in clear)."""

    channel: Channel
    contact_allowed: bool
    marketing_allowed: bool
    updated_at: AwareDatetime | None = None


class AttributeType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    ENUM = "enum"


class AttributeDefinition(_Value):
    name: str = Field(pattern=_ATTRIBUTE_NAME.pattern)
    type: AttributeType
    allowed_values: tuple[str, ...] = ()
    max_length: int = Field(default=0, ge=0, le=MAX_ATTRIBUTE_VALUE)


class AttributeSchema(_Value):
    """A tenant's custom profile attributes. An empty schema accepts any well-named string
    attribute (a tenant that has not configured one yet is not blocked)."""

    attributes: tuple[AttributeDefinition, ...] = ()

    def definitions(self) -> dict[str, AttributeDefinition]:
        return {a.name: a for a in self.attributes}

    def check(self, values: Mapping[str, str], field: str = "attributes") -> None:
        """Raise ValidationFailed naming `attributes[<name>]` for every bad attribute; an empty
        value (a removal) is always allowed."""
        defs = self.definitions()
        bad: list[FieldViolation] = []
        for name, value in values.items():
            where = f"{field}[{name}]"
            if not _ATTRIBUTE_NAME.match(name):
                bad.append(FieldViolation(where, "names are lower_snake_case"))
                continue
            if value == "":
                continue
            if len(value) > MAX_ATTRIBUTE_VALUE:
                bad.append(FieldViolation(where, f"longer than {MAX_ATTRIBUTE_VALUE}"))
                continue
            definition = defs.get(name)
            if definition is None:
                if defs:
                    bad.append(FieldViolation(where, "not in the tenant's attribute schema"))
                continue
            problem = _type_problem(definition, value)
            if problem:
                bad.append(FieldViolation(where, problem))
        if bad:
            raise ValidationFailed(bad)


def _type_problem(definition: AttributeDefinition, value: str) -> str | None:
    t = definition.type
    if definition.max_length and len(value) > definition.max_length:
        return f"longer than {definition.max_length}"
    if t is AttributeType.INTEGER and not re.fullmatch(r"[+-]?[0-9]+", value):
        return "not an integer"
    if t is AttributeType.DECIMAL:
        try:
            if not Decimal(value).is_finite():
                return "not a finite decimal"
        except InvalidOperation:
            return "not a decimal"
    if t is AttributeType.BOOLEAN and value not in ("true", "false"):
        return "must be true or false"
    if t is AttributeType.DATE:
        try:
            date.fromisoformat(value)
        except ValueError:
            return "not an ISO date (YYYY-MM-DD)"
    if t is AttributeType.ENUM and value not in definition.allowed_values:
        return f"must be one of {', '.join(definition.allowed_values)}"
    return None
