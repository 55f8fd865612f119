"""Benchmark: gRPC commands per second through the interactions service's full path
(validate, decide, append to PostgreSQL, relay to Kafka) with 50 concurrent clients, and the
commands' p99 latency.

    uv run --all-packages python bench/interactions.py [--clients 50] [--seconds 20] [--workers 2]

Starts PostgreSQL (durable: fsync on, in a temporary data directory) and the broker through
the same launcher code as `make run`, unless `DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS` name
external ones, then the service as its own process (`python -m contactcenter.interactions`,
as `make run` starts it), with `--workers` processes serving its port together (the
service's `workers` setting; 2 by default: one per core of a 2-core machine). Each client
plays whole contacts, one command after the other:
create (assigned to an agent), connect, message, hold, resume, note, end, complete.

Two phases, because with 50 clients that each wait for an answer before the next command,
latency is 50 / throughput (Little's law: 50 ms on average at 1,000 commands/s), so
"1,000 commands/s" and "p99 under 20 ms" can only both hold at a given load:
1. throughput: the clients send flat out -> `commands_per_s`;
2. latency under load: the same clients pace themselves to 1,000 commands/s together (or
   75% of the measured throughput when that is lower; `--rate` sets it), latency counted
   from when each command was due -> `command_p99_ms`.
Each phase also prints the CPU per command of the service (all its workers), of the bench's
own gRPC clients, of PostgreSQL and of the broker (the machine is shared and noisy: CPU per
command is the steadier figure), after the idle CPU of each before any command.
Then it waits until the outbox relay has published every event to Kafka and counts them
there with a plain consumer: a command counts only if its events got out.

Goal (issue 5): at least 1,000 commands/s and p99 under 20 ms on this machine.
The last line is the JSON object `{"bench": "interactions", "commands_per_s", "command_p99_ms"}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition
from benchkit import (
    CallPacer,
    CpuMeter,
    add_client_loop_option,
    admin_sql,
    client_loop_runner,
    pid_of,
    say,
)

from contactcenter.common.v1 import common_pb2
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.infra import LocalInfra
from contactcenter.infra.health import wait_serving
from contactcenter.infra.paths import project_root
from contactcenter.infra.postgres import database_url_for
from contactcenter.infra.services import RunningService, discover_services, start_service
from contactcenter.interactions.v1 import interactions_pb2 as pb
from contactcenter.interactions.v1 import interactions_pb2_grpc as pb_grpc

TOPIC = "cc.interactions.events.v1"


@dataclass
class Results:
    #: (rpc, started at (monotonic), latency s) of every successful command.
    samples: list[tuple[str, float, float]] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    contacts: int = 0


async def play_contacts(
    stub: pb_grpc.InteractionsServiceStub,
    metadata: Any,
    agent: str,
    stop_at: float,
    results: Results,
    pace_s: float | None = None,
) -> None:
    """One client: whole contacts, each command awaited before the next; with `pace_s`, one
    command every `pace_s` seconds, its latency counted from when it was due (a late
    command is not excused by the one before it being slow)."""
    pacer = CallPacer(pace_s)

    async def call(rpc: str, request: Any) -> Any:
        started = await pacer.start()
        try:
            response = await getattr(stub, rpc)(request, metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            results.errors[f"{rpc}: {error.code().name}"] += 1
            return None
        results.samples.append((rpc, started, time.monotonic() - started))
        return response

    def rid() -> str:
        return str(uuid.uuid4())

    while time.monotonic() < stop_at:
        created = await call(
            "CreateInteraction",
            pb.CreateInteractionRequest(
                request_id=rid(),
                channel=common_pb2.CHANNEL_VOICE,
                customer_address="+41445550000",
                entry_point="+41800000000",
                agent_id=agent,
            ),
        )
        if created is None:
            continue
        iid = created.result.interaction_id
        steps: list[tuple[str, Any]] = [
            ("Connect", pb.ConnectRequest(request_id=rid(), interaction_id=iid)),
            (
                "AppendMessage",
                pb.AppendMessageRequest(
                    request_id=rid(),
                    interaction_id=iid,
                    author=pb.Author(role=pb.AUTHOR_ROLE_AGENT, id=agent),
                    direction=pb.MESSAGE_DIRECTION_OUTBOUND,
                    body="Thanks for calling, how can I help?",
                ),
            ),
            ("Hold", pb.HoldRequest(request_id=rid(), interaction_id=iid)),
            ("Resume", pb.ResumeRequest(request_id=rid(), interaction_id=iid)),
            (
                "AddNote",
                pb.AddNoteRequest(
                    request_id=rid(), interaction_id=iid, author_id=agent, text="billing issue"
                ),
            ),
            (
                "End",
                pb.EndRequest(request_id=rid(), interaction_id=iid, ended_by=pb.ENDED_BY_CUSTOMER),
            ),
            (
                "Complete",
                pb.CompleteRequest(
                    request_id=rid(), interaction_id=iid, disposition_codes=["resolved"]
                ),
            ),
        ]
        for rpc, request in steps:
            if await call(rpc, request) is None:
                break
        else:
            results.contacts += 1


async def count_on_kafka(bootstrap: str, tenant_id: str, expected: int, within_s: float) -> int:
    """How many records keyed by `tenant_id` a plain consumer finds on the topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    seen = 0
    key = tenant_id.encode()
    try:
        await consumer.topics()
        partitions = [TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or []]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + within_s
        while seen < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            seen += sum(1 for records in batch.values() for r in records if r.key == key)
    finally:
        await consumer.stop()
    return seen


async def wait_relayed(database_url: str, within_s: float) -> tuple[int, float]:
    """Wait until the outbox relay's checkpoint covers every stored event; returns the number
    of events and when that was (monotonic)."""
    conn = await asyncpg.connect(database_url)
    try:
        total = await conn.fetchval("select count(*) from interactions.events")
        deadline = time.monotonic() + within_s
        while True:
            behind = await conn.fetchval(
                "select count(*) from interactions.events e where (e.transaction_id, e.position) > "
                "(select coalesce(transaction_id, '0'::xid8), position "
                "from interactions.consumer_positions where consumer = 'outbox-relay')"
            )
            if behind == 0:
                return total, time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the relay is still {behind} events behind")
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def report(title: str, results: Results, since: float, until: float) -> tuple[float, float]:
    """Print the figures of the commands started in [since, until); returns (rate, p99 ms)."""
    window = [s for s in results.samples if since <= s[1] < until]
    seconds = until - since
    latencies = sorted(s[2] * 1000 for s in window)
    rate = len(window) / seconds
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    say(f"{title}: {len(window)} commands in {seconds:.1f} s = {rate:,.0f} commands/s")
    say(
        f"  latency ms: p50 {p50:.2f}  p90 {percentile(latencies, 0.90):.2f}  p99 {p99:.2f}  "
        f"max {latencies[-1] if latencies else float('nan'):.2f}"
    )
    by_rpc: dict[str, list[float]] = defaultdict(list)
    for rpc, _, latency in window:
        by_rpc[rpc].append(latency * 1000)
    for rpc, values in sorted(by_rpc.items()):
        values.sort()
        say(
            f"    {rpc:<18} n={len(values):>6}  p50 {percentile(values, 0.5):7.2f}  "
            f"p99 {percentile(values, 0.99):7.2f}  mean {statistics.fmean(values):7.2f}"
        )
    if results.errors:
        say(f"  errors: {dict(results.errors)}")
    return rate, p99


async def run_clients(
    address: str,
    metadata: Any,
    clients: int,
    warmup: float,
    seconds: float,
    pace_s: float | None,
    meter: CpuMeter,
) -> tuple[Results, float, float, float]:
    """50 clients playing contacts; returns the results, the measured window and the
    service's CPU seconds over the whole run."""
    channels = [grpc.aio.insecure_channel(address) for _ in range(max(1, clients // 10))]
    stubs = [pb_grpc.InteractionsServiceStub(c) for c in channels]
    results = Results()
    started = time.monotonic()
    since = started + warmup
    until = since + seconds
    cpu_before = meter.sample()
    try:
        await asyncio.gather(
            *(
                play_contacts(
                    stubs[i % len(stubs)],
                    metadata,
                    f"agent-{i}",
                    until,
                    results,
                    pace_s=pace_s,
                )
                for i in range(clients)
            )
        )
    finally:
        for channel in channels:
            await channel.close()
    cpu_after = meter.sample()
    elapsed = time.monotonic() - started
    commands = max(1, len(results.samples))
    used = CpuMeter.used(cpu_before, cpu_after)
    say(CpuMeter.line(used, commands, elapsed, "command"))
    return results, since, until, used["service"]


async def drive(
    address: str,
    database_url: str,
    bootstrap: str,
    clients: int,
    seconds: float,
    warmup: float,
    meter: CpuMeter,
    rate: float | None,
) -> dict[str, Any]:
    tenant_id = f"bench-{uuid.uuid4().hex[:8]}"
    metadata = metadata_for(issue_token(tenant_id, [Role.SERVICE], "bench-gateway"))
    started = time.monotonic()

    idle_before, idle_since = meter.sample(), time.monotonic()
    await asyncio.sleep(3.0)
    idle_after, idle_s = meter.sample(), time.monotonic() - idle_since
    say(
        "0. idle (no commands), share of a core: "
        + ", ".join(
            f"{name} {(idle_after[name] - idle_before[name]) / idle_s:.1%}" for name in idle_after
        )
    )
    say(f"1. throughput: {clients} clients, each sending its next command as soon as the")
    say(f"   last one is answered ({warmup:.0f} s warm-up + {seconds:.0f} s measured) ...")
    results, since, until, _ = await run_clients(
        address, metadata, clients, warmup, seconds, None, meter
    )
    capacity, closed_p99 = report("   throughput", results, since, until)

    target = rate if rate is not None else min(1000.0, 0.75 * capacity)
    say(
        f"2. latency under load: {clients} clients together sending {target:,.0f} commands/s "
        f"({'given' if rate is not None else 'the goal, or 75% of the throughput if lower'});"
    )
    say("   latency counted from when each command was due ...")
    paced, since, until, _ = await run_clients(
        address, metadata, clients, warmup, seconds, clients / target, meter
    )
    achieved, p99 = report("   under load", paced, since, until)
    finished = time.monotonic()

    events, relayed_at = await wait_relayed(database_url, within_s=120)
    say(
        f"relay: all {events} events published {max(0.0, relayed_at - finished):.2f} s after "
        f"the last command ({events / (relayed_at - started):,.0f} events/s over the run)"
    )
    on_kafka = await count_on_kafka(bootstrap, tenant_id, events, within_s=120)
    say(f"kafka: a plain consumer reads {on_kafka} of {events} events of the tenant")
    if on_kafka < events:
        raise RuntimeError(f"only {on_kafka} of {events} events reached Kafka")
    say(
        f"summary: {capacity:,.0f} commands/s with {clients} clients flat out "
        f"(p99 {closed_p99:.1f} ms there); p99 {p99:.1f} ms at {achieved:,.0f} commands/s"
    )
    return {"commands_per_s": round(capacity, 1), "command_p99_ms": round(p99, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="commands/s of the latency phase (default: 1,000, or 75%% of the throughput)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="service processes sharing the gRPC port (CC_INTERACTIONS_WORKERS; one per core)",
    )
    add_client_loop_option(parser)
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="cc-bench-interactions-"))
    infra = LocalInfra(
        kafka_port=0,
        postgres_data_dir=data_dir / "postgres",
        fresh=True,
        durable=True,
    )
    service: RunningService | None = None
    database = f"bench_interactions_{uuid.uuid4().hex[:8]}"
    server_url = ""
    try:
        say("starting PostgreSQL (durable) and the broker ...")
        infra.start()
        server_url = infra.database_url
        asyncio.run(admin_sql(server_url, f'create database "{database}"'))
        database_url = database_url_for(server_url, database)
        (spec,) = [s for s in discover_services(project_root()) if s.name == "interactions"]
        service = start_service(
            spec,
            database_url=database_url,
            kafka_bootstrap=infra.kafka_bootstrap,
            log_dir=data_dir / "logs",
            extra_env={
                "CC_INTERACTIONS_LOG_LEVEL": "WARNING",
                "CC_INTERACTIONS_WORKERS": str(args.workers),
            },
        )
        wait_serving(service, 90, threading.Event())
        say(
            f"interactions serving on {service.grpc_address} (pid {service.process.pid}, "
            f"{args.workers} worker process{'es' if args.workers > 1 else ''})"
        )
        figures = client_loop_runner(args.client_loop)(
            drive(
                service.grpc_address,
                database_url,
                infra.kafka_bootstrap,
                args.clients,
                args.seconds,
                args.warmup,
                CpuMeter(
                    {
                        "service": service.process.pid,
                        "clients": os.getpid(),
                        "postgres": pid_of(infra.postgres),
                        "broker": pid_of(infra.kafka),
                    }
                ),
                args.rate,
            )
        )
    finally:
        if service is not None:
            service.process.stop()
        if server_url and os.environ.get("DATABASE_URL"):
            asyncio.run(admin_sql(server_url, f'drop database if exists "{database}" with (force)'))
        infra.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    goal = figures["commands_per_s"] >= 1000 and figures["command_p99_ms"] < 20
    say(f"goal (>= 1,000 commands/s, p99 < 20 ms): {'met' if goal else 'NOT met'}")
    print(json.dumps({"bench": "interactions", **figures}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
