"""Interval history from the reporting service (`ReportingService.IntervalHistory`), as the
plain records the forecasting domain works on. Calls carry a service token of the tenant."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.errors import FailedPrecondition
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.reporting.v1 import reporting_pb2 as pb
from contactcenter.reporting.v1 import reporting_pb2_grpc as pb_grpc
from contactcenter.wfm.domain.forecast import IntervalActual

PAGE_SIZE = 5_000


def channel_name(value: int) -> str:
    name = (
        common_pb2.Channel.Name(value)
        if value in common_pb2.Channel.values()
        else "CHANNEL_UNSPECIFIED"
    )
    return name.removeprefix("CHANNEL_").lower()


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


class ReportingIntervalHistory:
    def __init__(
        self, channel: grpc.aio.Channel, signing_key: str, timeout_s: float = 30.0
    ) -> None:
        self._stub = pb_grpc.ReportingServiceStub(channel)
        self._key = signing_key
        self._timeout = timeout_s

    async def history(
        self,
        tenant_id: str,
        queue_ids: Sequence[str],
        start: datetime,
        end: datetime,
        interval_minutes: int,
    ) -> list[IntervalActual]:
        md = metadata_for(issue_token(tenant_id, [Role.SERVICE], "wfm", self._key))
        out: list[IntervalActual] = []
        token = ""
        while True:
            request = pb.IntervalHistoryRequest(
                queue_ids=list(queue_ids),
                range=common_pb2.TimeRange(start_time=_ts(start), end_time=_ts(end)),
                interval_minutes=interval_minutes,
                page=common_pb2.PageRequest(page_size=PAGE_SIZE, page_token=token),
            )
            try:
                response = await self._stub.IntervalHistory(
                    request, metadata=md, timeout=self._timeout
                )
            except grpc.aio.AioRpcError as error:
                raise FailedPrecondition(
                    f"reporting's interval history is not available: {error.code().name}"
                ) from error
            for r in response.records:
                out.append(
                    IntervalActual(
                        queue_id=r.queue_id,
                        channel=channel_name(r.channel),
                        interval_start=r.interval_start.ToDatetime(tzinfo=UTC),
                        offered=float(r.offered),
                        handled=float(r.handled),
                        handle_time_ms_total=float(r.handle_time_ms_total),
                    )
                )
            token = response.page.next_page_token
            if not token:
                return out
