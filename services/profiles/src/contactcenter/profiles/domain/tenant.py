"""A tenant's profile settings: default phone region, attribute schema, unmerge window."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from contactcenter.contracts.errors import ValidationFailed
from contactcenter.contracts.events import DomainEvent
from contactcenter.profiles.domain.events import TenantConfigured
from contactcenter.profiles.domain.identities import check_region
from contactcenter.profiles.domain.values import AttributeDefinition, AttributeSchema, AttributeType

DEFAULT_UNMERGE_WINDOW_DAYS: Final = 30
MAX_UNMERGE_WINDOW_DAYS: Final = 365


@dataclass(frozen=True)
class TenantSettings:
    default_region: str | None = None
    schema: AttributeSchema = field(default_factory=AttributeSchema)
    unmerge_window_days: int = DEFAULT_UNMERGE_WINDOW_DAYS
    version: int = 0


def fold_settings(events: Iterable[DomainEvent]) -> TenantSettings:
    settings = TenantSettings()
    for e in events:
        if isinstance(e, TenantConfigured):
            settings = TenantSettings(
                default_region=e.default_region,
                schema=AttributeSchema(attributes=e.attributes),
                unmerge_window_days=e.unmerge_window_days,
                version=settings.version + 1,
            )
    return settings


def decide_configure(
    tenant_id: str,
    default_region: str | None,
    attributes: Sequence[AttributeDefinition],
    unmerge_window_days: int | None,
    now: datetime,
) -> list[DomainEvent]:
    region = check_region("default_region", default_region) if default_region else None
    names = [a.name for a in attributes]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationFailed([("attributes", f"defined twice: {', '.join(duplicates)}")])
    for n, a in enumerate(attributes):
        if a.type is AttributeType.ENUM and not a.allowed_values:
            raise ValidationFailed([(f"attributes[{n}].allowed_values", "an enum needs values")])
    window = unmerge_window_days or DEFAULT_UNMERGE_WINDOW_DAYS
    if not 1 <= window <= MAX_UNMERGE_WINDOW_DAYS:
        raise ValidationFailed(
            [("unmerge_window_days", f"must be 1..{MAX_UNMERGE_WINDOW_DAYS} days")]
        )
    return [
        TenantConfigured(
            tenant_id=tenant_id,
            occurred_at=now,
            default_region=region,
            attributes=tuple(attributes),
            unmerge_window_days=window,
        )
    ]
