"""Per-tenant intake limits (ConfigureTenant): what a tenant sets, checked, and decided as an
event. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from contactcenter.contracts.errors import FieldViolation, ValidationFailed
from contactcenter.email.domain.events import TenantLimitsSet

#: Above this a limit is refused (the SMTP listener's hard cap is a deployment setting).
MAX_LIMIT_BYTES: Final = 1024 * 1024 * 1024
MAX_ATTACHMENTS: Final = 10_000
MAX_RATE_PER_MINUTE: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """A tenant's limits; `max_inbound_per_minute` 0 means no rate limit."""

    max_message_bytes: int
    max_attachment_bytes: int
    max_attachments: int
    max_inbound_per_minute: int = 0


def check_limits(limits: TenantLimits) -> None:
    """ValidationFailed naming every bad field."""
    bad: list[FieldViolation] = []
    for name, value, top in (
        ("max_message_bytes", limits.max_message_bytes, MAX_LIMIT_BYTES),
        ("max_attachment_bytes", limits.max_attachment_bytes, MAX_LIMIT_BYTES),
        ("max_attachments", limits.max_attachments, MAX_ATTACHMENTS),
    ):
        if not 0 < value <= top:
            bad.append(FieldViolation(f"limits.{name}", f"must be between 1 and {top}"))
    if not 0 <= limits.max_inbound_per_minute <= MAX_RATE_PER_MINUTE:
        bad.append(
            FieldViolation(
                "limits.max_inbound_per_minute", f"must be between 0 and {MAX_RATE_PER_MINUTE}"
            )
        )
    if not bad and limits.max_attachment_bytes > limits.max_message_bytes:
        bad.append(
            FieldViolation(
                "limits.max_attachment_bytes", "must not be larger than max_message_bytes"
            )
        )
    if bad:
        raise ValidationFailed(bad)


def decide_limits(
    tenant_id: str, current: TenantLimits | None, wanted: TenantLimits
) -> list[TenantLimitsSet]:
    """The event that sets `wanted` (none when it is what the tenant has)."""
    check_limits(wanted)
    if current == wanted:
        return []
    return [
        TenantLimitsSet(
            tenant_id=tenant_id,
            max_message_bytes=wanted.max_message_bytes,
            max_attachment_bytes=wanted.max_attachment_bytes,
            max_attachments=wanted.max_attachments,
            max_inbound_per_minute=wanted.max_inbound_per_minute,
        )
    ]


def limits_of(event: TenantLimitsSet) -> TenantLimits:
    return TenantLimits(
        max_message_bytes=event.max_message_bytes,
        max_attachment_bytes=event.max_attachment_bytes,
        max_attachments=event.max_attachments,
        max_inbound_per_minute=event.max_inbound_per_minute,
    )
