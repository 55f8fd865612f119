"""Benchmark: from an interaction-queued event produced on Kafka to the routing service's offer
event read by a plain Kafka consumer, beside the physical floor of that path.

    uv run --all-packages python bench/routing_e2e.py [--contacts 1000] [--rate 50]

Starts PostgreSQL (durable: fsync on) and the broker through the same launcher code as
`make run` (or uses `DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS`), then the routing service as its
own process, as `make run` starts it. Agents are logged in (one voice call each, more agents
than contacts), so every queued contact is offered at once.

Two paths, each `--contacts` messages at `--rate` per second, in alternating rounds so that
machine noise falls on both alike:
- offer: `interactions.InteractionQueued.v1` produced to `cc.interactions.events.v1` -> the
  routing service's consumer -> the engine's decision -> the durable append of the offer
  -> the outbox relay -> `cc.routing.events.v1` -> a plain consumer reading the OfferIssued;
- raw pipeline: the same message produced to a topic -> a plain consumer that republishes each
  record to a second topic -> a plain consumer: the same two broker hops with no work in
  between. Producers (acks=all, linger 0), consumers (fetch_max_wait_ms as the routing
  service's) and partition counts are the same as on the offer path.

Goals (issue 4): ratio_p99 = offer_p99 / raw_pipeline_p99 at most 1.5; offer p99 at most
20 ms. The last line is the JSON object `{"bench": "routing_e2e", ...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from benchkit import admin_sql, say

from contactcenter.contracts.events import utc_now
from contactcenter.contracts.topics import topic_for
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.infra import LocalInfra
from contactcenter.infra.health import wait_serving
from contactcenter.infra.paths import project_root
from contactcenter.infra.postgres import database_url_for
from contactcenter.infra.services import RunningService, discover_services, start_service
from contactcenter.messaging.admin import ensure_topics
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.messaging.ordering import STREAM_VERSION
from contactcenter.routing.config import RoutingSettings
from contactcenter.routing.v1 import routing_pb2 as pb
from contactcenter.routing.v1 import routing_pb2_grpc as pb_grpc

INTERACTIONS_TOPIC = topic_for("interactions").name
ROUTING_TOPIC = topic_for("routing").name
#: The routing service's consumer settings, used for every consumer here.
FETCH_MAX_WAIT_MS = RoutingSettings.model_fields["kafka_fetch_max_wait_ms"].default
PARTITIONS = RoutingSettings.model_fields["kafka_partitions"].default
TENANTS = 4
ROUNDS = 4


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _consumer(bootstrap: str, *topics: str, group: str | None = None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="latest",
        enable_auto_commit=group is not None,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
    )


async def _started(consumer: AIOKafkaConsumer) -> None:
    await consumer.start()
    while not consumer.assignment():  # noqa: ASYNC110 (aiokafka has no assignment event)
        await asyncio.sleep(0.01)
    for tp in consumer.assignment():
        await consumer.position(tp)


async def configure_agents(address: str, tenants: list[str], agents: int) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RoutingServiceStub(channel)
        for tenant in tenants:
            admin = metadata_for(issue_token(tenant, (Role.ADMIN,), "bench-admin"))
            queue = pb.Queue(queue_id="q", offer_timeout_s=600, wrap_up_s=0)
            await stub.UpsertQueue(
                pb.UpsertQueueRequest(request_id=str(uuid.uuid4()), queue=queue), metadata=admin
            )

            async def login(n: int, tenant: str = tenant, admin: object = admin) -> None:
                agent_id = f"a-{n}"
                agent = pb.Agent(agent_id=agent_id, queues=["q"])
                await stub.UpsertAgent(
                    pb.UpsertAgentRequest(request_id=str(uuid.uuid4()), agent=agent),
                    metadata=admin,
                )
                # Set by the administrator: no desktop, so no presence lease to keep alive.
                await stub.SetAgentState(
                    pb.SetAgentStateRequest(
                        request_id=str(uuid.uuid4()),
                        agent_id=agent_id,
                        presence=pb.PRESENCE_AVAILABLE,
                    ),
                    metadata=admin,
                )

            for start in range(0, agents, 50):
                await asyncio.gather(*(login(n) for n in range(start, min(agents, start + 50))))


class OfferPath:
    """Queued events in, OfferIssued events out (matched by interaction id)."""

    def __init__(self, bootstrap: str, tenants: list[str]) -> None:
        self._bootstrap = bootstrap
        self._tenants = tenants
        self._sent: dict[str, tuple[float, float]] = {}
        self.latencies_ms: list[float] = []
        #: Where the time goes: queued -> decided (the offer's `time`), decided -> produced by
        #: the relay (the record's timestamp), produced -> read.
        self.stages_ms: dict[str, list[float]] = {"hop1+decide": [], "append+relay": [], "hop2": []}
        self._consumer = _consumer(bootstrap, ROUTING_TOPIC)
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        self._count = 0

    async def start(self) -> None:
        await self._producer.start()
        await _started(self._consumer)
        self._receiver = asyncio.create_task(self._receive())

    async def send_one(self) -> None:
        tenant = self._tenants[self._count % len(self._tenants)]
        interaction_id = f"i-{self._count}"
        self._count += 1
        event_id = uuid.uuid4()
        record = encode(
            EventEnvelope(
                id=event_id,
                type="interactions.InteractionQueued.v1",
                source="/contactcenter/interactions",
                subject=f"interaction/{tenant}/{interaction_id}",
                time=utc_now(),
                tenant_id=tenant,
                data={
                    "event_id": str(event_id),
                    "tenant_id": tenant,
                    "interaction_id": interaction_id,
                    "queue_id": "q",
                    "channel": "voice",
                },
                # As the outbox relay stamps it: the routing service keeps each stream in order.
                extensions={STREAM_VERSION: "1"},
            )
        )
        self._sent[f"{tenant}/{interaction_id}"] = (time.perf_counter(), time.time())
        await self._producer.send(
            INTERACTIONS_TOPIC, value=record.value, key=record.key, headers=record.headers
        )

    async def _receive(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            now, wall = time.perf_counter(), time.time()
            for records in batches.values():
                for r in records:
                    headers = dict(r.headers)
                    if headers.get("ce_type") != b"routing.OfferIssued.v1":
                        continue
                    data = json.loads(r.value)
                    sent = self._sent.pop(f"{r.key.decode()}/{data['interaction_id']}", None)
                    if sent is None:
                        continue
                    self.latencies_ms.append((now - sent[0]) * 1000)
                    decided = datetime.fromisoformat(headers["ce_time"].decode()).timestamp()
                    produced = r.timestamp / 1000
                    self.stages_ms["hop1+decide"].append((decided - sent[1]) * 1000)
                    self.stages_ms["append+relay"].append((produced - decided) * 1000)
                    self.stages_ms["hop2"].append((wall - produced) * 1000)

    def outstanding(self) -> int:
        return len(self._sent)

    async def stop(self) -> None:
        self._receiver.cancel()
        await self._producer.stop()
        await self._consumer.stop()


class RawPipeline:
    """Produce -> consumer that republishes -> consumer: two bare broker hops."""

    def __init__(self, bootstrap: str, tenants: list[str]) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.topic_in = f"bench.raw.in.{suffix}"
        self.topic_out = f"bench.raw.out.{suffix}"
        self._bootstrap = bootstrap
        self._tenants = tenants
        self._sent: dict[bytes, float] = {}
        self.latencies_ms: list[float] = []
        #: Produced by the pass-through -> read (as the offer path's "hop2").
        self.hop2_ms: list[float] = []
        self._count = 0

    async def start(self) -> None:
        await ensure_topics(self._bootstrap, [self.topic_in, self.topic_out], partitions=PARTITIONS)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", linger_ms=0
        )
        self._relay_producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap, acks="all", linger_ms=0
        )
        self._pass = _consumer(self._bootstrap, self.topic_in, group=f"bench-raw-{self.topic_in}")
        self._reader = _consumer(self._bootstrap, self.topic_out)
        await self._producer.start()
        await self._relay_producer.start()
        await _started(self._pass)
        await _started(self._reader)
        self._tasks = [
            asyncio.create_task(self._pass_through()),
            asyncio.create_task(self._receive()),
        ]

    async def send_one(self) -> None:
        tenant = self._tenants[self._count % len(self._tenants)]
        message_id = f"m-{self._count}".encode()
        self._count += 1
        self._sent[message_id] = time.perf_counter()
        await self._producer.send(
            self.topic_in, value=b"{}", key=tenant.encode(), headers=[("id", message_id)]
        )

    async def _pass_through(self) -> None:
        while True:
            batches = await self._pass.getmany(timeout_ms=100)
            for records in batches.values():
                for r in records:
                    await self._relay_producer.send(
                        self.topic_out, value=r.value, key=r.key, headers=list(r.headers)
                    )

    async def _receive(self) -> None:
        while True:
            batches = await self._reader.getmany(timeout_ms=100)
            now = time.perf_counter()
            wall = time.time()
            for records in batches.values():
                for r in records:
                    sent = self._sent.pop(dict(r.headers)["id"], None)
                    if sent is not None:
                        self.latencies_ms.append((now - sent) * 1000)
                        # The same measure as the offer path's last stage, to compare.
                        self.hop2_ms.append((wall - r.timestamp / 1000) * 1000)

    def outstanding(self) -> int:
        return len(self._sent)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self._producer.stop()
        await self._relay_producer.stop()
        await self._pass.stop()
        await self._reader.stop()


async def drive(address: str, bootstrap: str, contacts: int, rate: float) -> dict[str, float]:
    tenants = [f"bench-e2e-{uuid.uuid4().hex[:6]}-{n}" for n in range(TENANTS)]
    say(f"logging in {contacts + 50} agents over {TENANTS} tenants ...")
    await configure_agents(address, tenants, contacts // TENANTS + 50)
    offer = OfferPath(bootstrap, tenants)
    raw = RawPipeline(bootstrap, tenants)
    await offer.start()
    await raw.start()
    try:
        # Warm-up: both paths, not measured.
        for path in (offer, raw):
            for _ in range(20):
                await path.send_one()
                await asyncio.sleep(1 / rate)
        await asyncio.sleep(2)
        offer.latencies_ms.clear()
        raw.latencies_ms.clear()
        raw.hop2_ms.clear()
        for stage in offer.stages_ms.values():
            stage.clear()
        per_round = max(1, (contacts - 20) // ROUNDS)
        for round_number in range(ROUNDS):
            for path in (raw, offer) if round_number % 2 else (offer, raw):
                for _ in range(per_round):
                    await path.send_one()
                    await asyncio.sleep(1 / rate)
            say(
                f"round {round_number + 1}/{ROUNDS}: offers {len(offer.latencies_ms)}, raw "
                f"{len(raw.latencies_ms)}"
            )
        deadline = time.monotonic() + 30
        while (offer.outstanding() or raw.outstanding()) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if offer.outstanding() or raw.outstanding():
            say(f"missing: {offer.outstanding()} offers, {raw.outstanding()} raw messages")
    finally:
        await offer.stop()
        await raw.stop()
    for stage, values in offer.stages_ms.items():
        if values:
            say(
                f"  offer stage {stage}: p50 {percentile(values, 0.5):.1f} ms, "
                f"p99 {percentile(values, 0.99):.1f} ms"
            )
    say(
        f"  raw stage hop2: p50 {percentile(raw.hop2_ms, 0.5):.1f} ms, "
        f"p99 {percentile(raw.hop2_ms, 0.99):.1f} ms"
    )
    figures = {
        "offer_p50_ms": round(percentile(offer.latencies_ms, 0.50), 2),
        "offer_p99_ms": round(percentile(offer.latencies_ms, 0.99), 2),
        "raw_pipeline_p50_ms": round(percentile(raw.latencies_ms, 0.50), 2),
        "raw_pipeline_p99_ms": round(percentile(raw.latencies_ms, 0.99), 2),
    }
    figures["ratio_p99"] = round(figures["offer_p99_ms"] / figures["raw_pipeline_p99_ms"], 2)
    say(
        f"offer: {len(offer.latencies_ms)} samples, p50 {figures['offer_p50_ms']} ms, "
        f"p99 {figures['offer_p99_ms']} ms; raw pipeline: {len(raw.latencies_ms)} samples, "
        f"p50 {figures['raw_pipeline_p50_ms']} ms, p99 {figures['raw_pipeline_p99_ms']} ms; "
        f"ratio p99 {figures['ratio_p99']}"
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="messages/s on each path")
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="cc-bench-routing-e2e-"))
    infra = LocalInfra(
        kafka_port=0, postgres_data_dir=data_dir / "postgres", fresh=True, durable=True
    )
    service: RunningService | None = None
    database = f"bench_routing_{uuid.uuid4().hex[:8]}"
    server_url = ""
    try:
        say("starting PostgreSQL (durable) and the broker ...")
        infra.start()
        server_url = infra.database_url
        asyncio.run(admin_sql(server_url, f'create database "{database}"'))
        (spec,) = [s for s in discover_services(project_root()) if s.name == "routing"]
        service = start_service(
            spec,
            database_url=database_url_for(server_url, database),
            kafka_bootstrap=infra.kafka_bootstrap,
            log_dir=data_dir / "logs",
            extra_env={"CC_ROUTING_LOG_LEVEL": "WARNING"},
        )
        wait_serving(service, 90, threading.Event())
        say(f"routing serving on {service.grpc_address} (pid {service.process.pid})")
        figures = asyncio.run(
            drive(service.grpc_address, infra.kafka_bootstrap, args.contacts, args.rate)
        )
    finally:
        if service is not None:
            service.process.stop()
        if server_url and os.environ.get("DATABASE_URL"):
            asyncio.run(admin_sql(server_url, f'drop database if exists "{database}" with (force)'))
        infra.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    goal = figures["ratio_p99"] <= 1.5 and figures["offer_p99_ms"] <= 20
    say(f"goal (ratio p99 <= 1.5, offer p99 <= 20 ms): {'met' if goal else 'NOT met'}")
    print(json.dumps({"bench": "routing_e2e", **figures}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
