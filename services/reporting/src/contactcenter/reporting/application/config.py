"""Reporting's own configuration commands: validated, appended to its event store (one
stream per tenant setting / queue), idempotent by request id."""

from __future__ import annotations

from contactcenter.contracts.errors import ValidationFailed
from contactcenter.contracts.streams import stream_id
from contactcenter.eventstore import ANY, PostgresEventStore
from contactcenter.reporting.domain.events import (
    STREAM_CATEGORY,
    QueueReportingConfigured,
    TenantReportingConfigured,
)
from contactcenter.reporting.domain.intervals import is_valid_zone
from contactcenter.reporting.domain.values import (
    DEFAULT_SHORT_ABANDON_S,
    DEFAULT_SL_TARGET_PERCENT,
    DEFAULT_SL_THRESHOLD_S,
    ServiceLevelVariant,
)


class ReportingConfig:
    def __init__(self, store: PostgresEventStore) -> None:
        self._store = store

    async def configure_tenant(self, tenant_id: str, request_id: str, time_zone: str) -> int:
        violations = []
        if not request_id:
            violations.append(("request_id", "is required"))
        if not time_zone or not is_valid_zone(time_zone):
            violations.append(("time_zone", f"unknown IANA time zone {time_zone!r}"))
        if violations:
            raise ValidationFailed(violations)
        e = TenantReportingConfigured(tenant_id=tenant_id, time_zone=time_zone)
        result = await self._store.append(
            stream_id(STREAM_CATEGORY, tenant_id, "tenant"),
            [e],
            expected_version=ANY,
            request_id=request_id,
            command={"rpc": "ConfigureTenantReporting", "time_zone": time_zone},
        )
        return result.last_version

    async def configure_queue(
        self,
        tenant_id: str,
        request_id: str,
        queue_id: str,
        variant: ServiceLevelVariant | None,
        short_abandon_threshold_s: int,
        threshold_s: int,
        target_percent: int,
    ) -> int:
        violations = []
        if not request_id:
            violations.append(("request_id", "is required"))
        if not queue_id or "/" in queue_id:
            violations.append(("queue_id", "is required"))
        if variant is None:
            violations.append(("service_level_variant", "is required"))
        if short_abandon_threshold_s < 0:
            violations.append(("short_abandon_threshold_s", "must not be negative"))
        if threshold_s < 0:
            violations.append(("service_level_threshold_s", "must not be negative"))
        if not 0 <= target_percent <= 100:
            violations.append(("service_level_target_percent", "must be within 0..100"))
        if violations or variant is None:
            raise ValidationFailed(violations)
        e = QueueReportingConfigured(
            tenant_id=tenant_id,
            queue_id=queue_id,
            service_level_variant=variant,
            short_abandon_threshold_s=short_abandon_threshold_s or DEFAULT_SHORT_ABANDON_S,
            service_level_threshold_s=threshold_s or DEFAULT_SL_THRESHOLD_S,
            service_level_target_percent=target_percent or DEFAULT_SL_TARGET_PERCENT,
        )
        result = await self._store.append(
            stream_id(STREAM_CATEGORY, tenant_id, f"queue-{queue_id}"),
            [e],
            expected_version=ANY,
            request_id=request_id,
            command={
                "rpc": "ConfigureQueueReporting",
                **e.model_dump(
                    mode="json",
                    include={
                        "queue_id",
                        "service_level_variant",
                        "short_abandon_threshold_s",
                        "service_level_threshold_s",
                        "service_level_target_percent",
                    },
                ),
            },
        )
        return result.last_version
