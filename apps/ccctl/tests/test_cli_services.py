"""The real `ccctl` (a subprocess) against real services started in the test: routing and
interactions on the real PostgreSQL and broker, and a small real reporting gRPC server for the
interval CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from typer.testing import CliRunner

from contactcenter.ccctl.cli import Exit, app
from contactcenter.common.v1 import common_pb2
from contactcenter.grpckit import (
    GrpcServerSettings,
    Role,
    ServiceRegistration,
    create_server,
    issue_token,
    metadata_for,
)
from contactcenter.interactions.config import InteractionsSettings
from contactcenter.interactions.main import create_app as create_interactions
from contactcenter.interactions.v1 import interactions_pb2 as ipb
from contactcenter.interactions.v1 import interactions_pb2_grpc as ipb_grpc
from contactcenter.reporting.v1 import reporting_pb2 as rep
from contactcenter.reporting.v1 import reporting_pb2_grpc as rep_grpc
from contactcenter.routing.config import RoutingSettings
from contactcenter.routing.main import create_app as create_routing
from contactcenter.routing.v1 import routing_pb2 as rpb
from contactcenter.routing.v1 import routing_pb2_grpc as rpb_grpc
from contactcenter.testing.services import service_test_settings, serving, temporary_database

if TYPE_CHECKING:
    from contactcenter.testing.fixtures import TestInfra

runner = CliRunner()


@dataclass
class Result:
    code: int
    out: str
    err: str


async def ccctl(*args: str) -> Result:
    """The CLI in-process (typer's runner, in a thread: the services run on this loop)."""
    result = await asyncio.to_thread(runner.invoke, app, list(args), env={"COLUMNS": "200"})
    return Result(result.exit_code, result.stdout, result.stderr)


async def ccctl_process(*args: str, limit_s: float = 60) -> Result:
    """The installed console script as a shell runs it, for its exit code and streams."""
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("ccctl")),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


@dataclass
class Services:
    routing: str
    interactions: str
    kafka: str


@pytest.fixture
async def services(infra: TestInfra) -> AsyncIterator[Services]:
    async with (
        temporary_database(infra.database_url, "test_ccctl_routing") as routing_url,
        temporary_database(infra.database_url, "test_ccctl_interactions") as interactions_url,
    ):
        routing = create_routing(
            RoutingSettings(**service_test_settings(routing_url, infra.kafka_bootstrap))
        )
        interactions = create_interactions(
            InteractionsSettings(**service_test_settings(interactions_url, infra.kafka_bootstrap))
        )
        async with serving(routing), serving(interactions):
            assert routing.grpc is not None and interactions.grpc is not None
            yield Services(routing.grpc.address, interactions.grpc.address, infra.kafka_bootstrap)


async def test_operating_queues_agents_contacts_events_and_decisions(
    services: Services, tenant_id: str
) -> None:
    base = [
        "--tenant",
        tenant_id,
        "--routing",
        services.routing,
        "--interactions",
        services.interactions,
        "--bootstrap",
        services.kafka,
    ]
    r = await ccctl(
        *base, "queues", "upsert", "sales", "--channel", "voice", "--skill", "billing:2"
    )
    assert r.code == 0, r.err
    assert "queue sales saved" in r.out
    r = await ccctl(
        *base, "agents", "upsert", "a-1", "--queue", "sales", "--skill", "billing:4",
        "--language", "en", "--time-zone", "Europe/Berlin",
    )  # fmt: skip
    assert r.code == 0, r.err
    r = await ccctl(*base, "agents", "state", "a-1", "available")
    assert (r.code, "agent a-1 is available" in r.out) == (0, True), r.err

    # Errors as scripts see them.
    r = await ccctl_process(*base, "queues", "show", "nosuch")
    assert r.code == Exit.NOT_FOUND, r
    assert "NOT_FOUND" in r.err
    r = await ccctl(*base, "--role", "agent", "queues", "upsert", "sales")
    assert r.code == Exit.NOT_ALLOWED, r
    r = await ccctl(*base, "agents", "upsert", "a-2", "--time-zone", "Mars/Olympus")
    assert r.code == Exit.BAD_INPUT, r
    assert "time_zone" in r.err  # the field the service named
    r = await ccctl(*base, "agents", "state", "nobody", "away")
    assert r.code == Exit.NOT_FOUND, r
    r = await ccctl(*base, "explain", "no-such-offer")
    assert r.code == Exit.NOT_FOUND, r

    # A contact: interactions queues it, routing offers it to a-1 (over Kafka both ways).
    agent_md = metadata_for(issue_token(tenant_id, (Role.AGENT,), "a-1"))
    gateway_md = metadata_for(issue_token(tenant_id, (Role.SERVICE,), "gateway"))
    async with (
        grpc.aio.insecure_channel(services.routing) as rch,
        grpc.aio.insecure_channel(services.interactions) as ich,
    ):
        stream = rpb_grpc.RoutingServiceStub(rch).AgentStream(
            rpb.AgentStreamRequest(), metadata=agent_md
        )
        created = await ipb_grpc.InteractionsServiceStub(ich).CreateInteraction(
            ipb.CreateInteractionRequest(
                request_id=str(uuid.uuid4()),
                channel=common_pb2.CHANNEL_VOICE,
                customer_address="+41445551234",
                queue=ipb.QueueTarget(
                    queue_id="sales",
                    required_skills=[ipb.SkillRequirement(skill="billing", min_proficiency=1)],
                ),
            ),
            metadata=gateway_md,
        )
        try:
            offer = (await asyncio.wait_for(stream.read(), 60)).offer  # type: ignore[union-attr]
        finally:
            stream.cancel()
    interaction_id = created.result.interaction_id
    assert offer.interaction_id == interaction_id

    r = await ccctl(*base, "explain", offer.offer_id)
    assert r.code == 0, r.err
    assert f"interaction {interaction_id} in queue sales" in r.out
    assert "-> agent a-1" in r.out and "candidates" in r.out

    r = await ccctl(*base, "queues", "show", "sales")
    assert r.code == 0, r.err
    assert "queue sales" in r.out

    r = await ccctl(*base, "contacts", "list", "--queue", "sales")
    assert r.code == 0, r.err
    assert interaction_id in r.out

    # The event streams, one readable line per event, this tenant only.
    r = await ccctl(
        *base, "tail", "interactions", "--from-beginning", "--count", "2", "--idle-timeout", "20"
    )
    assert r.code == 0, r.err
    lines = r.out.strip().splitlines()
    assert len(lines) == 2, r.out
    assert all(f" {tenant_id} " in line for line in lines)
    assert "InteractionCreated" in lines[0] and f"interaction_id={interaction_id}" in lines[0]
    r = await ccctl(
        *base, "tail", "routing", "--from-beginning", "--count", "200", "--idle-timeout", "3"
    )
    assert r.code == Exit.NOT_FOUND, r  # fewer events than asked for before the quiet time
    assert f"offer_id={offer.offer_id}" in r.out


class _Reporting(rep_grpc.ReportingServiceServicer):
    """A small real reporting server: two pages of interval records for the caller's tenant."""

    def __init__(self) -> None:
        self.requests: list[rep.IntervalHistoryRequest] = []

    async def IntervalHistory(
        self, request: rep.IntervalHistoryRequest, context: Any
    ) -> rep.IntervalHistoryResponse:
        self.requests.append(request)
        start = request.range.start_time.ToDatetime(tzinfo=UTC)
        page = int(request.page.page_token or "0")
        records = []
        for i in range(2):
            at = start + timedelta(minutes=request.interval_minutes * (page * 2 + i))
            record = rep.IntervalRecord(
                queue_id="sales",
                channel=common_pb2.CHANNEL_VOICE,
                interval_minutes=request.interval_minutes,
                offered=10 + i,
                answered=8,
                abandoned=2,
                handled=7,
                handle_time_ms_total=2_100_000,
                service_level_threshold_s=20,
            )
            record.interval_start.FromDatetime(at)
            records.append(record)
        return rep.IntervalHistoryResponse(
            records=records,
            page=common_pb2.PageResponse(next_page_token="1" if page == 0 else ""),
        )


async def test_interval_history_exports_every_page_as_csv(tmp_path: Path) -> None:
    servicer = _Reporting()
    server = create_server(
        GrpcServerSettings(),
        [
            ServiceRegistration(
                descriptor=rep.DESCRIPTOR.services_by_name["ReportingService"],
                servicer=servicer,
                add_to_server=rep_grpc.add_ReportingServiceServicer_to_server,
            )
        ],
    )
    await server.start()
    await server.health.mark_ready("database")
    try:
        target = tmp_path / "intervals.csv"
        r = await ccctl_process(
            "--tenant", "acme", "--reporting", server.address, "report", "intervals",
            "--from", "2026-03-02T08:00:00Z", "--to", "2026-03-02T10:00:00Z",
            "--interval", "30", "--queue", "sales", "-o", str(target),
        )  # fmt: skip
        assert r.code == 0, r.err
        assert "4 interval rows written" in r.err
        rows = list(csv.DictReader(io.StringIO(target.read_text())))
        assert len(rows) == 4
        assert rows[0]["queue_id"] == "sales" and rows[0]["channel"] == "voice"
        assert rows[0]["interval_start"] == "2026-03-02T08:00:00Z"
        assert rows[3]["interval_start"] == "2026-03-02T09:30:00Z"
        assert rows[1]["offered"] == "11" and rows[0]["handle_time_ms_total"] == "2100000"
        first = servicer.requests[0]
        assert list(first.queue_ids) == ["sales"] and first.interval_minutes == 30
        assert first.range.start_time.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 2, 8, tzinfo=UTC)
        assert [q.page.page_token for q in servicer.requests] == ["", "1"]

        # To stdout as well; a bad token is exit 6.
        r = await ccctl("--reporting", server.address, "report", "intervals", "--from", "-1h")
        assert r.code == 0 and r.out.startswith("queue_id,channel,interval_start"), r.err
        r = await ccctl(
            "--reporting", server.address, "--token", "not-a-jwt", "report", "intervals"
        )
        assert r.code == Exit.NOT_ALLOWED, r
    finally:
        await server.stop(0)
