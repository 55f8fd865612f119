"""The real `ccctl` (a subprocess) against real services started in the test: routing,
interactions and reporting on the real PostgreSQL and broker."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from contactcenter.ccctl.cli import CSV_COLUMNS, Exit, app
from contactcenter.common.v1 import common_pb2
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.infra.postgres import database_url_for
from contactcenter.interactions.config import InteractionsSettings
from contactcenter.interactions.main import create_app as create_interactions
from contactcenter.interactions.v1 import interactions_pb2 as ipb
from contactcenter.interactions.v1 import interactions_pb2_grpc as ipb_grpc
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.reporting.config import ReportingSettings
from contactcenter.reporting.main import ReportingApp
from contactcenter.reporting.main import create_app as create_reporting
from contactcenter.reporting.projections.store import dump_tables
from contactcenter.reporting.v1 import reporting_pb2 as rep
from contactcenter.reporting.v1 import reporting_pb2_grpc as rep_grpc
from contactcenter.routing.config import RoutingSettings
from contactcenter.routing.main import RoutingApp
from contactcenter.routing.main import create_app as create_routing
from contactcenter.routing.v1 import routing_pb2 as rpb
from contactcenter.routing.v1 import routing_pb2_grpc as rpb_grpc
from contactcenter.testing.services import service_test_settings, serving, temporary_database

if TYPE_CHECKING:
    from contactcenter.testing.fixtures import TestInfra

runner = CliRunner()
T = TypeVar("T")


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
    routing_app: RoutingApp


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
            yield Services(
                routing.grpc.address, interactions.grpc.address, infra.kafka_bootstrap, routing
            )


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


async def test_listing_queues_agents_skills_editing_skills_and_replaying_routing(
    services: Services, tenant_id: str
) -> None:
    base = ["--tenant", tenant_id, "--routing", services.routing]
    for args in (
        ["queue", "upsert", "sales", "--skill", "billing:2"],
        ["queue", "upsert", "support", "--channel", "chat"],
        ["agent", "upsert", "a-1", "--name", "Ann", "--queue", "sales", "--skill", "billing:4",
         "--time-zone", "Asia/Tokyo", "--language", "ja"],
        ["agent", "upsert", "a-2", "--queue", "sales", "--queue", "support",
         "--skill", "billing:1", "--skill", "english:3"],
        ["agent", "state", "a-1", "available"],
    ):  # fmt: skip
        r = await ccctl(*base, *args)
        assert r.code == 0, r.err

    async def as_json(*args: str) -> Any:
        r = await ccctl(*base, *args, "--json")
        assert r.code == 0, r.err
        return json.loads(r.out)

    # Queues and agents, as tables and as JSON, with filters.
    r = await ccctl(*base, "queue", "list")
    assert r.code == 0, r.err
    assert "sales" in r.out and "support" in r.out and "billing:2" in r.out
    assert [q["queue"]["queue_id"] for q in await as_json("queue", "list")] == ["sales", "support"]
    r = await ccctl(*base, "agents", "list")
    assert r.code == 0, r.err
    assert "a-1" in r.out and "Ann" in r.out and "available" in r.out
    available = await as_json("agent", "list", "--state", "available")
    assert [a["agent"]["agent_id"] for a in available] == ["a-1"]
    in_support = await as_json("agent", "list", "--queue", "support")
    assert [a["agent"]["agent_id"] for a in in_support] == ["a-2"]

    # Skills in use: who requires each and who has it at which level.
    in_use = {row["skill"]: row for row in await as_json("skills", "list")}
    assert in_use["billing"] == {
        "skill": "billing",
        "queues": {"sales": 2},
        "agents": {"a-1": 4, "a-2": 1},
    }
    assert in_use["english"]["queues"] == {} and in_use["english"]["agents"] == {"a-2": 3}
    r = await ccctl(*base, "skills", "list", "--skill", "billing")
    assert r.code == 0, r.err
    assert "sales:2" in r.out and "a-1:4" in r.out and "1/2" in r.out  # one agent qualifies
    r = await ccctl(*base, "skills", "list", "--skill", "karate")
    assert r.code == Exit.NOT_FOUND, r

    # An agent's skills change; the rest of its profile stays as it was.
    r = await ccctl(*base, "agent", "skills", "add", "a-1", "-s", "spanish:3", "-s", "billing:5")
    assert r.code == 0, r.err
    assert "billing:5, spanish:3" in r.out
    a1 = await as_json("agent", "show", "a-1")
    assert {s["skill"]: s["proficiency"] for s in a1["agent"]["skills"]} == {
        "billing": 5,
        "spanish": 3,
    }
    assert (a1["agent"]["name"], a1["agent"]["time_zone"], a1["agent"]["queues"]) == (
        "Ann", "Asia/Tokyo", ["sales"],
    )  # fmt: skip
    assert a1["agent"]["languages"] == ["ja"] and a1["config_version"] == "2"
    r = await ccctl(*base, "agent", "skills", "remove", "a-1", "--skill", "spanish")
    assert r.code == 0 and "billing:5" in r.out and "spanish" not in r.out, r
    r = await ccctl_process(*base, "agent", "skills", "remove", "a-1", "--skill", "spanish")
    assert r.code == Exit.NOT_FOUND and "has no skill 'spanish'" in r.err, r
    r = await ccctl(*base, "agent", "skills", "set", "a-2", "--skill", "french:2")
    assert r.code == 0, r.err
    a2 = await as_json("agent", "show", "a-2")
    assert [(s["skill"], s["proficiency"]) for s in a2["agent"]["skills"]] == [("french", 2)]
    assert a2["agent"]["queues"] == ["sales", "support"]
    r = await ccctl(*base, "agent", "skills", "set", "a-2", "--skill", "french:2")
    assert r.code == 0 and "skills unchanged" in r.out, r
    r = await ccctl(*base, "agent", "skills", "add", "nobody", "--skill", "billing:1")
    assert r.code == Exit.NOT_FOUND, r
    r = await ccctl(*base, "agent", "skills", "add", "a-1", "--skill", "bad/skill:1")
    assert r.code == Exit.BAD_INPUT and "agent.skills" in r.err, r  # the service's field

    # Another tenant sees none of it; an agent may not list.
    other = ["--tenant", f"{tenant_id}-b", "--routing", services.routing]
    for command in (["queue", "list"], ["agent", "list"], ["skills", "list"]):
        r = await ccctl(*other, *command, "--json")
        assert (r.code, json.loads(r.out)) == (0, []), r
    r = await ccctl(*base, "--role", "agent", "agent", "list")
    assert r.code == Exit.NOT_ALLOWED, r

    # Replay: routing's state rebuilt from its events is the live one, bit for bit.
    r = await ccctl_process(
        "--routing", services.routing, "replay", "routing", "--tenant", tenant_id
    )
    assert r.code == 0, r.err
    assert re.search(r"\d+ events, 0 decisions replayed; reproduced bit for bit", r.out), r.out
    replayed = await as_json("replay", "routing")
    assert replayed["reproduced"] is True
    assert replayed["live_fingerprint"] == replayed["replayed_fingerprint"]
    assert int(replayed["events"]) >= 6

    # A live state that drifted from the events (a bug) is exit 8, never a silent pass.
    def drift(engine: Any) -> None:
        engine.agents["a-2"].reason_code = "drifted"

    application = services.routing_app.application
    await application.query(tenant_id, drift)
    r = await ccctl_process(*base, "replay", "routing")
    assert r.code == Exit.DIVERGED, r
    assert "DID NOT reproduce" in r.out and "differs from the live state" in r.err


@dataclass
class Reporting:
    app: ReportingApp
    address: str
    database_url: str
    producer: AIOKafkaProducer

    async def publish(self, tenant_id: str, event_type: str, data: dict[str, Any], at: datetime):
        context = event_type.split(".", 1)[0]
        record = encode(
            EventEnvelope(
                id=uuid.uuid4(),
                type=event_type,
                source=f"/contactcenter/{context}",
                subject=f"{context}/{tenant_id}/x",
                time=at,
                tenant_id=tenant_id,
                data=data,
            )
        )
        await self.producer.send_and_wait(
            f"cc.{context}.events.v1", value=record.value, key=record.key, headers=record.headers
        )

    async def queue_stats(self, tenant_id: str) -> rep.QueueStatsResponse:
        md = metadata_for(issue_token(tenant_id, (Role.SUPERVISOR,), "test"))
        async with grpc.aio.insecure_channel(self.address) as channel:
            reply: rep.QueueStatsResponse = await rep_grpc.ReportingServiceStub(channel).QueueStats(
                rep.QueueStatsRequest(), metadata=md
            )
            return reply


@pytest.fixture
async def reporting(infra: TestInfra) -> AsyncIterator[Reporting]:
    """The real reporting service (its own consumer group: another one may share the broker)."""
    async with temporary_database(infra.database_url, "test_ccctl_reporting") as url:
        app = create_reporting(
            ReportingSettings(
                **service_test_settings(url, infra.kafka_bootstrap),
                http_port=0,
                projection_group_id=f"reporting.ccctl-test.{uuid.uuid4().hex[:8]}",
            )
        )
        async with serving(app):
            assert app.grpc is not None
            producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap)
            await producer.start()
            try:
                yield Reporting(app, app.grpc.address, url, producer)
            finally:
                await producer.stop()


async def _eventually(check: Callable[[], Awaitable[T]], within_s: float = 30.0) -> T:
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await check()
        except (AssertionError, ValueError):  # ValueError: `(one,) = items` not there yet
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_interval_csv_export_and_rebuild_against_the_reporting_service(
    reporting: Reporting, tenant_id: str, tmp_path: Path
) -> None:
    # Three voice contacts enter `sales` 20 minutes ago: one answered in 4 s, one abandoned.
    entered = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    for i in range(3):
        await reporting.publish(
            tenant_id,
            "interactions.InteractionQueued.v1",
            {"interaction_id": f"c{i}", "queue_id": "sales", "channel": "voice"},
            entered,
        )
    await reporting.publish(
        tenant_id,
        "interactions.InteractionConnected.v1",
        {"interaction_id": "c0", "agent_id": "a-1", "queue_wait_ms": 4000},
        entered + timedelta(seconds=4),
    )
    await reporting.publish(
        tenant_id,
        "interactions.InteractionAbandoned.v1",
        {"interaction_id": "c1", "queue_wait_ms": 9000},
        entered + timedelta(seconds=9),
    )

    async def counted() -> None:
        (q,) = (await reporting.queue_stats(tenant_id)).queues
        assert (q.totals[0].offered, q.totals[0].answered, q.totals[0].abandoned) == (3, 1, 1)

    await _eventually(counted)

    # The CSV export: every page (page size 1), one dense row per 15-minute bucket.
    base = ["--tenant", tenant_id, "--reporting", reporting.address]
    since = entered.replace(minute=entered.minute - entered.minute % 15) - timedelta(minutes=30)
    until = since + timedelta(minutes=90)
    target = tmp_path / "intervals.csv"

    async def exported() -> list[dict[str, str]]:
        r = await ccctl_process(
            *base, "report", "intervals", "--from", since.isoformat(), "--to", until.isoformat(),
            "--queue", "sales", "--page-size", "1", "-o", str(target),
        )  # fmt: skip
        assert r.code == 0, r.err
        rows = list(csv.DictReader(io.StringIO(target.read_text())))
        assert sum(int(row["offered"]) for row in rows) == 3, rows  # written to PostgreSQL
        assert f"{len(rows)} interval rows written" in r.err
        return rows

    rows = await _eventually(exported)
    assert len(rows) == 6  # 90 minutes of 15-minute buckets, including the empty ones
    assert {(row["queue_id"], row["channel"], row["interval_minutes"]) for row in rows} == {
        ("sales", "voice", "15")
    }
    starts = [datetime.fromisoformat(row["interval_start"]) for row in rows]
    assert starts == sorted(starts) and starts[1] - starts[0] == timedelta(minutes=15)
    (busy,) = [row for row in rows if row["offered"] != "0"]
    bucket = datetime.fromisoformat(busy["interval_start"])
    assert bucket <= entered < bucket + timedelta(minutes=15)
    assert (busy["answered"], busy["abandoned"], busy["answer_wait_ms_total"]) == ("1", "1", "4000")
    assert busy["answered_within_threshold"] == "1"

    # 30-minute intervals to stdout; another tenant sees nothing of this one's.
    r = await ccctl(*base, "report", "intervals", "--from", "-2h", "--interval", "30")
    assert r.code == 0, r.err
    lines = r.out.strip().splitlines()
    assert lines[0].startswith("queue_id,channel,interval_start")
    assert sum(int(line.split(",")[4]) for line in lines[1:]) == 3
    r = await ccctl("--tenant", f"{tenant_id}-other", "--reporting", reporting.address,
                    "report", "intervals", "--from", "-2h")  # fmt: skip
    assert r.code == 0 and r.out.strip().splitlines() == [",".join(CSV_COLUMNS)], r.out
    r = await ccctl(*base, "--token", "not-a-jwt", "report", "intervals")
    assert r.code == Exit.NOT_ALLOWED, r

    # rebuild: the same function as `python -m contactcenter.reporting rebuild`; the rebuilt
    # read models equal the live ones, and the running service swaps them in and goes on.
    pool = reporting.app.context.pool
    async with pool.acquire() as conn:
        before = await dump_tables(conn, "reporting", tenant_id)
    generation = reporting.app.projection.generation if reporting.app.projection else 0
    r = await ccctl_process("rebuild", "--database-url", reporting.database_url)
    assert r.code == 0, r.err
    match = re.search(r"rebuilt from (\d+) events .* generation (\d+) swapped in", r.out)
    assert match is not None, r.out
    assert int(match.group(1)) >= 5 and int(match.group(2)) == generation + 1
    async with pool.acquire() as conn:
        assert await dump_tables(conn, "reporting", tenant_id) == before
    await reporting.publish(
        tenant_id,
        "interactions.InteractionQueued.v1",
        {"interaction_id": "c9", "queue_id": "sales", "channel": "voice"},
        datetime.now(UTC),
    )

    async def goes_on() -> None:
        (q,) = (await reporting.queue_stats(tenant_id)).queues
        assert q.totals[0].offered == 4 and q.waiting == 2
        assert reporting.app.projection is not None
        assert reporting.app.projection.generation == generation + 1
        # The service answers from memory once it applied a batch and writes the batch just
        # after: the tables are compared below, so they must hold it too.
        async with pool.acquire() as conn:
            entities, _ = await dump_tables(conn, "reporting", tenant_id)
        assert (tenant_id, "contact", "c9") in {row[:3] for row in entities}

    await _eventually(goes_on)

    # `replay reporting` is the same rebuild, with the same progress bar.
    async with pool.acquire() as conn:
        live = await dump_tables(conn, "reporting", tenant_id)
    r = await ccctl("replay", "reporting", "--database-url", reporting.database_url)
    assert r.code == 0, r.err
    assert f"generation {generation + 2} swapped in" in r.out
    async with pool.acquire() as conn:
        assert await dump_tables(conn, "reporting", tenant_id) == live

    # A database that is not there is exit 3.
    missing = database_url_for(reporting.database_url, "no_such_database")
    r = await ccctl("rebuild", "--database-url", missing)
    assert r.code == Exit.NOT_FOUND, r
    assert "does not exist" in r.err
