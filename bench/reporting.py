"""Reporting benchmark: (a) freshness - events at 1,000/s into Kafka, time until WatchWallboard
pushes the change (p50/p95/p99); (b) rebuild speed over 1,000,000 events.

Starts PostgreSQL, the broker and the reporting service through the launcher's infra code
(or uses KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL), stops what it started. Goals: push p95 at
most 200 ms; rebuild at least 20,000 events/s. Last line:
{"bench": "reporting", "push_p50_ms": ..., "push_p95_ms": ..., "push_p99_ms": ...,
 "rebuild_events_per_s": ...}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from aiokafka import AIOKafkaProducer
from benchkit import admin_sql, say

from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.infra import LocalInfra
from contactcenter.infra.health import wait_serving
from contactcenter.infra.paths import project_root
from contactcenter.infra.postgres import database_url_for
from contactcenter.infra.services import RunningService, discover_services, start_service
from contactcenter.messaging.cloudevents import EventEnvelope, encode
from contactcenter.reporting.projections.rebuild import rebuild
from contactcenter.reporting.v1 import reporting_pb2 as pb
from contactcenter.reporting.v1 import reporting_pb2_grpc as pb_grpc


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _record(tenant: str, event_type: str, data: dict[str, Any]) -> tuple[uuid.UUID, Any]:
    context = event_type.split(".", 1)[0]
    envelope = EventEnvelope(
        id=uuid.uuid4(),
        type=event_type,
        source=f"/contactcenter/{context}",
        subject=f"{context}/{tenant}/bench",
        time=datetime.now(UTC),
        tenant_id=tenant,
        data=data,
    )
    return envelope.id, (f"cc.{context}.events.v1", encode(envelope))


async def freshness(address: str, bootstrap: str, rate: int, seconds: float) -> list[float]:
    tenant = "bench-freshness"
    sent: dict[str, float] = {}
    latencies: list[float] = []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.ReportingServiceStub(channel)
        md = metadata_for(issue_token(tenant, [Role.SUPERVISOR], "bench"))
        stream = stub.WatchWallboard(pb.WatchWallboardRequest(include_agents=True), metadata=md)
        await stream.read()  # the snapshot
        done = asyncio.Event()

        async def receive() -> None:
            while True:
                update = await stream.read()
                if update is grpc.aio.EOF:
                    return
                at = time.perf_counter()
                t0 = sent.pop(update.last_event_id, None)
                if t0 is not None:
                    latencies.append((at - t0) * 1000)
                if done.is_set() and not sent:
                    return

        receiver = asyncio.create_task(receive())
        waiting: list[str] = []
        n = 0
        start = time.perf_counter()
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        while (elapsed := time.perf_counter() - start) < seconds:
            for _ in range(per_tick):
                n += 1
                if n % 10 == 0:
                    data = {
                        "agent_id": f"a{n % 50}",
                        "state": random.choice(["available", "busy", "wrap_up", "away"]),
                        "load": 0,
                        "capacity": 1,
                    }
                    eid, (topic, rec) = _record(tenant, "routing.AgentStateChanged.v1", data)
                elif waiting and n % 2 == 0:
                    iid = waiting.pop(0)
                    data = {"interaction_id": iid, "queue_wait_ms": 1000}
                    eid, (topic, rec) = _record(
                        tenant, "interactions.InteractionAbandoned.v1", data
                    )
                else:
                    iid = f"c{n}"
                    waiting.append(iid)
                    data = {"interaction_id": iid, "queue_id": f"q{n % 20}", "channel": "voice"}
                    eid, (topic, rec) = _record(tenant, "interactions.InteractionQueued.v1", data)
                sent[str(eid)] = time.perf_counter()
                await producer.send(topic, value=rec.value, key=rec.key, headers=rec.headers)
            await asyncio.sleep(max(0.0, start + (n / rate) - time.perf_counter()))
            if int(elapsed) != int(time.perf_counter() - start):
                say(f"  {n} events sent, {len(latencies)} pushes matched")
        done.set()
        await producer.flush()
        # The pushes of the last events; the rest were coalesced into later pushes.
        await asyncio.sleep(2.0)
        receiver.cancel()
        stream.cancel()
    await producer.stop()
    say(
        f"sent {n} events in {seconds:.0f} s ({n / seconds:,.0f}/s); "
        f"{len(latencies)} pushes matched"
    )
    return latencies


async def rebuild_speed(database_url: str, events: int) -> float:
    say(f"writing {events:,} events into the inbox ...")
    tenants = [f"bench-t{i}" for i in range(10)]
    rows: list[tuple[Any, ...]] = []
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    t0 = int(time.time() * 1000) - 86_400_000
    n = 0
    contact = 0
    try:
        async with pool.acquire() as conn:
            while n < events:
                tenant = tenants[contact % len(tenants)]
                iid = f"i{contact}"
                at = t0 + contact * 400
                agent = f"a{contact % 200}"
                q = f"q{contact % 30}"
                chain = [
                    (
                        "interactions.InteractionQueued.v1",
                        {"interaction_id": iid, "queue_id": q, "channel": "voice"},
                        at,
                    ),
                ]
                if contact % 7 == 0:
                    chain.append(
                        (
                            "interactions.InteractionAbandoned.v1",
                            {"interaction_id": iid, "queue_wait_ms": 9000},
                            at + 9000,
                        )
                    )
                else:
                    chain += [
                        (
                            "routing.AgentStateChanged.v1",
                            {"agent_id": agent, "state": "busy", "load": 1, "capacity": 1},
                            at + 15000,
                        ),
                        (
                            "interactions.InteractionConnected.v1",
                            {"interaction_id": iid, "agent_id": agent, "queue_wait_ms": 15000},
                            at + 15000,
                        ),
                        (
                            "interactions.InteractionEnded.v1",
                            {
                                "interaction_id": iid,
                                "agent_id": agent,
                                "agent_talk_ms": 200000,
                                "agent_hold_ms": 10000,
                            },
                            at + 225000,
                        ),
                        (
                            "interactions.WrapUpEnded.v1",
                            {"interaction_id": iid, "agent_id": agent, "wrap_up_ms": 30000},
                            at + 255000,
                        ),
                        (
                            "interactions.InteractionCompleted.v1",
                            {"interaction_id": iid, "wrap_up_ms": 30000},
                            at + 255000,
                        ),
                    ]
                for event_type, data, when in chain:
                    rows.append((uuid.uuid4(), tenant, event_type, when, json.dumps(data)))
                    n += 1
                contact += 1
                if len(rows) >= 100_000 or n >= events:
                    await conn.copy_records_to_table(
                        "inbox",
                        schema_name="reporting",
                        records=rows,
                        columns=["event_id", "tenant_id", "type", "at_ms", "data"],
                    )
                    rows = []
        total = await pool.fetchval("select count(*) from reporting.inbox")
        say(f"rebuilding from {total:,} events ...")
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if time.perf_counter() - last[0] > 5:
                last[0] = time.perf_counter()
                say(f"  {done:,} / {total:,}")

        result = await rebuild(pool, "reporting", progress)
        say(
            f"rebuilt {result.events:,} events in {result.seconds:.1f} s: "
            f"{result.events_per_s:,.0f} events/s"
        )
        return result.events_per_s
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="cc-bench-reporting-"))
    infra = LocalInfra(kafka_port=0, postgres_data_dir=data_dir / "postgres", fresh=True)
    service: RunningService | None = None
    database = f"bench_reporting_{uuid.uuid4().hex[:8]}"
    server_url = ""
    try:
        say("starting PostgreSQL and the broker ...")
        infra.start()
        server_url = infra.database_url
        asyncio.run(admin_sql(server_url, f'create database "{database}"'))
        database_url = database_url_for(server_url, database)
        (spec,) = [s for s in discover_services(project_root()) if s.name == "reporting"]
        service = start_service(
            spec,
            database_url=database_url,
            kafka_bootstrap=infra.kafka_bootstrap,
            log_dir=data_dir / "logs",
            extra_env={"CC_REPORTING_LOG_LEVEL": "WARNING"},
        )
        wait_serving(service, 90, threading.Event())
        say(f"reporting serving on {service.grpc_address} (pid {service.process.pid})")
        time.sleep(3)  # the consumer group settles
        latencies = asyncio.run(
            freshness(service.grpc_address, infra.kafka_bootstrap, args.rate, args.seconds)
        )
        p50, p95, p99 = (percentile(latencies, q) for q in (0.5, 0.95, 0.99))
        say(f"push latency: p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms")
        per_s = asyncio.run(rebuild_speed(database_url, args.events))
    finally:
        if service is not None:
            service.process.stop()
        if server_url and os.environ.get("DATABASE_URL"):
            asyncio.run(admin_sql(server_url, f'drop database if exists "{database}" with (force)'))
        infra.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    goal = p95 <= 200 and per_s >= 20_000
    say(f"goals (push p95 <= 200 ms, rebuild >= 20,000 events/s): {'met' if goal else 'NOT met'}")
    print(
        json.dumps(
            {
                "bench": "reporting",
                "push_p50_ms": round(p50, 1),
                "push_p95_ms": round(p95, 1),
                "push_p99_ms": round(p99, 1),
                "rebuild_events_per_s": round(per_s),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
