"""The reporting adapter's paging, token and errors, against a small gRPC server serving the
contract (`proto/contactcenter/reporting/v1/reporting.proto`) with pages of 3; the adapter
against the real reporting service is test_reporting_service.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
import pytest_asyncio

from contactcenter.common.v1 import common_pb2
from contactcenter.contracts.errors import FailedPrecondition
from contactcenter.grpckit import DEV_ONLY_SIGNING_KEY, TokenVerifier
from contactcenter.grpckit.settings import AuthSettings
from contactcenter.reporting.v1 import reporting_pb2 as pb
from contactcenter.reporting.v1 import reporting_pb2_grpc as pb_grpc
from contactcenter.wfm.adapters.reporting import ReportingIntervalHistory

START = datetime(2026, 3, 2, tzinfo=UTC)


class FakeReporting(pb_grpc.ReportingServiceServicer):  # type: ignore[misc]
    """Serves 10 records per queue, 3 a page; answers only a valid token's tenant."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, pb.IntervalHistoryRequest]] = []
        self.verifier = TokenVerifier(AuthSettings())

    async def IntervalHistory(self, request: pb.IntervalHistoryRequest, context: Any) -> Any:
        md = dict(context.invocation_metadata())
        caller = self.verifier.verify(md["authorization"].removeprefix("Bearer "))
        self.requests.append((caller.tenant_id, request))
        records = [
            pb.IntervalRecord(
                queue_id=q,
                channel=common_pb2.CHANNEL_CHAT,
                interval_minutes=request.interval_minutes,
                offered=10 + i,
                handled=9 + i,
                handle_time_ms_total=(9 + i) * 240_000,
            )
            for q in request.queue_ids
            for i in range(10)
        ]
        for i, r in enumerate(records):
            r.interval_start.FromDatetime(START + timedelta(minutes=30 * (i % 10)))
        offset = int(request.page.page_token or 0)
        page = records[offset : offset + request.page.page_size]
        more = offset + len(page) < len(records)
        return pb.IntervalHistoryResponse(
            records=page,
            page=common_pb2.PageResponse(next_page_token=str(offset + len(page)) if more else ""),
        )


@pytest_asyncio.fixture
async def reporting() -> AsyncIterator[tuple[FakeReporting, str]]:
    server = grpc.aio.server()
    fake = FakeReporting()
    pb_grpc.add_ReportingServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield fake, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_reads_every_page_as_plain_records(
    reporting: tuple[FakeReporting, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, address = reporting
    monkeypatch.setattr("contactcenter.wfm.adapters.reporting.PAGE_SIZE", 3)
    async with grpc.aio.insecure_channel(address) as channel:
        adapter = ReportingIntervalHistory(channel, DEV_ONLY_SIGNING_KEY)
        records = await adapter.history(
            "t1", ["sales", "support"], START, START + timedelta(days=1), 30
        )
    assert len(records) == 20
    assert len(fake.requests) == 7  # 20 records, 3 a page
    assert {tenant for tenant, _ in fake.requests} == {"t1"}
    first = records[0]
    assert (first.queue_id, first.channel, first.interval_start) == ("sales", "chat", START)
    assert (first.offered, first.handled, first.handle_time_ms_total) == (10, 9, 9 * 240_000)
    request = fake.requests[0][1]
    assert request.range.start_time.ToDatetime(tzinfo=UTC) == START
    assert request.interval_minutes == 30


async def test_an_unreachable_reporting_service_is_a_typed_error() -> None:
    async with grpc.aio.insecure_channel("127.0.0.1:1") as channel:
        adapter = ReportingIntervalHistory(channel, DEV_ONLY_SIGNING_KEY, timeout_s=2)
        with pytest.raises(FailedPrecondition, match="UNAVAILABLE"):
            await adapter.history("t1", ["sales"], START, START + timedelta(days=1), 30)
