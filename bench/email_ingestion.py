"""Benchmark: email messages per second from SMTP receipt to the event on Kafka, and the p99
of that latency, through the email service's full path: SMTP DATA -> raw bytes and work
queue committed (group commit) -> 250 -> parse, classify, dedupe, thread, resolve the
sender's profile (the profiles service) -> events committed -> outbox relay -> Kafka.

    uv run --all-packages python bench/email_ingestion.py [--messages 6000] [--connections 16]

Starts PostgreSQL (durable: fsync on) and the broker through the same launcher code as
`make run` (or uses `DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS`), then the profiles and email
services as their own processes. Realistic sizes: 2-6 KB text mails, a tenth with a 30-200 KB
attachment, from 500 different customers. `--connections` SMTP clients deliver flat out, each
on one connection (as an MTA does); a plain Kafka consumer notes when each message's
`email.EmailReceived.v1` arrives. Two phases: (1) throughput, all messages flat out ->
`messages_per_s` (first SMTP transaction to last event); (2) latency at a sustainable load, the
same clients paced to 70% of that throughput for `--latency-seconds` -> `ingest_p99_ms`, counted
from the start of each message's SMTP transaction to its event on Kafka (flat out, latency only
measures how long the queue got).

Named `email_ingestion.py`, not `email.py`: a script's folder comes first on sys.path, so an
`email.py` there would shadow the standard library's `email` package for every benchmark in it.

Each phase prints the CPU per message of each process group: the email service (with its
parse and SMTP worker processes), the profiles service, PostgreSQL, the broker, and this
bench (its SMTP clients and Kafka consumer). On a shared, noisy machine that is the steady
figure; messages per second is only meaningful on a quiet one.

Goal: at least 300 messages/s on this machine.
The last line is the JSON object `{"bench": "email", "messages_per_s", "ingest_p99_ms"}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import aiosmtplib
import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition
from benchkit import CpuMeter, admin_sql, pid_of, say

from contactcenter.email import corpus
from contactcenter.email.v1 import email_pb2 as pb
from contactcenter.email.v1 import email_pb2_grpc as pb_grpc
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.infra import LocalInfra
from contactcenter.infra.health import wait_serving
from contactcenter.infra.paths import project_root
from contactcenter.infra.postgres import database_url_for
from contactcenter.infra.services import RunningService, discover_services, start_service
from contactcenter.messaging.cloudevents import decode

TOPIC = "cc.email.events.v1"
MAILBOX = "support@bench.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Phase:
    """One round of deliveries: every message's SMTP start and its event's arrival."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.sent_at: dict[str, float] = {}
        self.errors = 0


async def deliver(
    phase: Phase,
    raws: dict[str, bytes],
    smtp_port: int,
    connections: int,
    rate: float | None,
) -> None:
    """`connections` SMTP clients, each on one connection; flat out, or paced to `rate`."""
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for n, mid in enumerate(phase.ids):
        queue.put_nowait((n, mid))
    began = time.monotonic()

    async def client() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, timeout=60)
        await smtp.connect()
        try:
            while not queue.empty():
                n, mid = queue.get_nowait()
                if rate is not None:
                    await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
                phase.sent_at[mid] = time.monotonic()
                try:
                    await smtp.sendmail("customer@customer.example", [MAILBOX], raws[mid])
                except aiosmtplib.SMTPException as exc:
                    phase.errors += 1
                    say(f"  send failed: {exc!r}")
        finally:
            await smtp.quit()

    await asyncio.gather(*(client() for _ in range(connections)))


async def drive(
    grpc_address: str,
    smtp_port: int,
    bootstrap: str,
    messages: int,
    connections: int,
    latency_s: float,
    meter: CpuMeter,
) -> dict[str, float]:
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    md = metadata_for(issue_token(tenant, [Role.ADMIN], "bench"))
    async with grpc.aio.insecure_channel(grpc_address) as channel:
        await pb_grpc.EmailServiceStub(channel).RegisterMailbox(
            pb.RegisterMailboxRequest(
                request_id=str(uuid.uuid4()),
                address=MAILBOX,
                routing=pb.MailboxRouting(queue_id="q-email"),
            ),
            metadata=md,
            timeout=10,
        )
    await asyncio.sleep(2.0)  # SMTP worker processes see the new mailbox within a second

    say(f"generating {messages} messages (+ the latency phase's) ...")
    ids = [corpus.new_message_id("bench.customer.example") for _ in range(messages)]
    raws = {mid: corpus.realistic(n, MAILBOX, message_id=mid) for n, mid in enumerate(ids)}
    total_bytes = sum(len(r) for r in raws.values())
    say(f"  {total_bytes / messages / 1024:.1f} KB on average, {total_bytes / 1e6:.1f} MB total")

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await consumer.start()
    await consumer.topics()
    parts = [TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or []]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    for tp in parts:
        await consumer.position(tp)
    arrived: dict[str, float] = {}
    closing = asyncio.Event()

    async def consume() -> None:
        while not closing.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.monotonic()
            for records in batch.values():
                for r in records:
                    if r.key != tenant.encode():
                        continue
                    envelope = decode(list(r.headers), r.value)
                    if envelope.type == "email.EmailReceived.v1":
                        arrived.setdefault(envelope.data["internet_message_id"], now)

    async def wait_all(phase: Phase, started: float) -> float:
        progress_at = started + 5
        while not all(m in arrived for m in phase.ids):
            await asyncio.sleep(0.1)
            now = time.monotonic()
            if now >= progress_at:
                got = sum(1 for m in phase.ids if m in arrived)
                say(f"  {now - started:5.1f} s: {len(phase.sent_at)} sent, {got} on Kafka")
                progress_at = now + 5
            if now - started > 600:
                say("  giving up after 600 s")
                break
        return max((arrived[m] for m in phase.ids if m in arrived), default=time.monotonic())

    consumer_task = asyncio.create_task(consume())
    idle: dict[str, float] = {}

    def cpu_report(used: dict[str, float], count: int, elapsed: float) -> None:
        say(CpuMeter.line(used, count, elapsed, "message"))
        above = CpuMeter.above_idle(used, idle, elapsed)
        say(CpuMeter.line(above, count, elapsed, "message above idle"))

    try:
        say(f"phase 1, throughput: {messages} messages flat out on {connections} connections")
        flat = Phase(ids)
        cpu_before = meter.sample()
        started = time.monotonic()
        sending = asyncio.create_task(deliver(flat, raws, smtp_port, connections, None))
        finished = await wait_all(flat, started)
        await sending
        got = sum(1 for m in ids if m in arrived)
        elapsed = finished - started
        cpu_seconds = time.monotonic() - started
        flat_cpu = CpuMeter.used(cpu_before, meter.sample())
        rate = got / elapsed
        say(
            f"  {got} of {messages} on Kafka in {elapsed:.1f} s "
            f"(all sent after {max(flat.sent_at.values()) - started:.1f} s; "
            f"{flat.errors} SMTP errors): {rate:.0f} messages/s, "
            f"{total_bytes / elapsed / 1e6:.1f} MB/s"
        )
        idle.update(await meter.idle_share(5.0))  # after phase 1: warmed up, no mail flows
        cpu_report(flat_cpu, got, cpu_seconds)

        paced_rate = max(10.0, 0.7 * rate)
        count = int(paced_rate * latency_s)
        say(f"phase 2, latency: {count} messages at {paced_rate:.0f}/s (70% of phase 1)")
        paced_ids = [corpus.new_message_id("bench.customer.example") for _ in range(count)]
        for n, mid in enumerate(paced_ids):
            raws[mid] = corpus.realistic(messages + n, MAILBOX, message_id=mid)
        paced = Phase(paced_ids)
        started = time.monotonic()
        cpu_before = meter.sample()
        sending = asyncio.create_task(deliver(paced, raws, smtp_port, connections, paced_rate))
        await wait_all(paced, started)
        await sending
        cpu_report(
            CpuMeter.used(cpu_before, meter.sample()), len(paced_ids), time.monotonic() - started
        )
    finally:
        closing.set()
        await consumer_task
        await consumer.stop()
    latencies = [(arrived[m] - paced.sent_at[m]) * 1000 for m in paced_ids if m in arrived]
    say(
        f"  SMTP receipt -> event on Kafka: p50 {percentile(latencies, 0.5):.0f} ms, "
        f"p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms"
    )
    return {
        "messages_per_s": round(rate, 1),
        "ingest_p99_ms": round(percentile(latencies, 0.99), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument(
        "--smtp-workers", type=int, default=1, help="extra SMTP intake processes of the service"
    )
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="cc-bench-email-"))
    infra = LocalInfra(
        kafka_port=0, postgres_data_dir=data_dir / "postgres", fresh=True, durable=True
    )
    started: list[RunningService] = []
    databases = {name: f"bench_{name}_{uuid.uuid4().hex[:8]}" for name in ("profiles", "email")}
    server_url = ""
    figures: dict[str, float] = {"messages_per_s": 0.0, "ingest_p99_ms": float("nan")}
    try:
        say("starting PostgreSQL (durable) and the broker ...")
        infra.start()
        server_url = infra.database_url
        specs = {s.name: s for s in discover_services(project_root())}
        smtp_port = free_port()
        peers: dict[str, str] = {}
        for name in ("profiles", "email"):
            asyncio.run(admin_sql(server_url, f'create database "{databases[name]}"'))
            prefix = specs[name].env_prefix
            env = {f"{prefix}LOG_LEVEL": "WARNING", **peers}
            if name == "email":
                env.update(
                    {
                        f"{prefix}SMTP_PORT": str(smtp_port),
                        f"{prefix}INTERACTIONS_GRPC_ADDRESS": "",
                        f"{prefix}IMAP_ENABLED": "false",
                        f"{prefix}SMTP_WORKERS": str(args.smtp_workers),
                    }
                )
            service = start_service(
                specs[name],
                database_url=database_url_for(server_url, databases[name]),
                kafka_bootstrap=infra.kafka_bootstrap,
                log_dir=data_dir / "logs",
                extra_env=env,
            )
            started.append(service)
            wait_serving(service, 90, threading.Event())
            peers[f"CC_PEER_{name.upper()}_GRPC"] = service.grpc_address
            say(f"{name} serving on {service.grpc_address} (pid {service.process.pid})")
        figures = asyncio.run(
            drive(
                started[-1].grpc_address,
                smtp_port,
                infra.kafka_bootstrap,
                args.messages,
                args.connections,
                args.latency_seconds,
                CpuMeter(
                    {
                        "email": started[-1].process.pid,
                        "profiles": started[0].process.pid,
                        "postgres": pid_of(infra.postgres),
                        "broker": pid_of(infra.kafka),
                        "bench": os.getpid(),
                    }
                ),
            )
        )
    finally:
        for service in reversed(started):
            service.process.stop()
        if server_url and os.environ.get("DATABASE_URL"):
            for database in databases.values():
                asyncio.run(
                    admin_sql(server_url, f'drop database if exists "{database}" with (force)')
                )
        infra.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    goal = figures["messages_per_s"] >= 300
    say(f"goal (>= 300 messages/s): {'met' if goal else 'NOT met'} (machine shared, busy)")
    print(json.dumps({"bench": "email", **figures}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
