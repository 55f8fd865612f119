"""The reporting service's own events (its configuration), `reporting.<EventName>.v1`.

Published on `cc.reporting.events.v1` by the outbox relay and folded by the reporting
projection itself like every other stream, so a rebuild replays configuration in order too.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from contactcenter.contracts.events import DomainEvent, event
from contactcenter.reporting.domain.values import ServiceLevelVariant

CONTEXT = "reporting"
STREAM_CATEGORY = "reporting_config"


class ReportingEvent(DomainEvent):
    """Base of every reporting event (not itself registered)."""


@event
class TenantReportingConfigured(ReportingEvent):
    """The tenant's time zone (IANA name): aligns intervals and "today"."""

    event_type: ClassVar[str] = "reporting.TenantReportingConfigured.v1"

    time_zone: str = Field(min_length=1)


@event
class QueueReportingConfigured(ReportingEvent):
    """How a queue's service level is reported. The threshold and target here apply only
    while routing has not configured the queue (routing's QueueConfigured wins)."""

    event_type: ClassVar[str] = "reporting.QueueReportingConfigured.v1"

    queue_id: str = Field(min_length=1)
    service_level_variant: ServiceLevelVariant
    short_abandon_threshold_s: int = Field(ge=0)
    service_level_threshold_s: int = Field(ge=1)
    service_level_target_percent: int = Field(ge=1, le=100)


EVENT_TYPES: tuple[type[ReportingEvent], ...] = (
    TenantReportingConfigured,
    QueueReportingConfigured,
)
