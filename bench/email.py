"""Benchmark: email messages per second from SMTP receipt to the event on Kafka, and the p99
of that latency, through the email service's full path: SMTP DATA -> raw bytes and work
queue committed (group commit) -> 250 -> parse, classify, dedupe, thread, resolve the
sender's profile (the profiles service) -> events committed -> outbox relay -> Kafka.

    uv run --all-packages python bench/email.py [--messages 6000] [--connections 16]

Starts PostgreSQL (durable: fsync on) and the broker through the same launcher code as
`make run` (or uses `DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS`), then the profiles and email
services as their own processes. Realistic sizes: 2-6 KB text mails, a tenth with a 30-200 KB
attachment, from 500 different customers. `--connections` SMTP clients deliver flat out, each
on one connection (as an MTA does); a plain Kafka consumer notes when each message's
`email.EmailReceived.v1` arrives. Latency is counted from the start of each SMTP transaction.

Goal: at least 300 messages/s on this machine.
The last line is the JSON object `{"bench": "email", "messages_per_s", "ingest_p99_ms"}`.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This script is named like the standard library's `email` package, and Python puts the
# script's directory first on sys.path: take it off before anything imports `email`.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    del sys.path[0]

import argparse
import asyncio
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import aiosmtplib
import asyncpg
import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition

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


def say(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def drive(
    grpc_address: str, smtp_port: int, bootstrap: str, messages: int, connections: int
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
    await asyncio.sleep(0.5)

    say(f"generating {messages} messages ...")
    ids = [corpus.new_message_id("bench.customer.example") for _ in range(messages)]
    raws = [corpus.realistic(n, MAILBOX, message_id=ids[n]) for n in range(messages)]
    total_bytes = sum(len(r) for r in raws)
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

    sent_at: dict[str, float] = {}
    arrived: dict[str, float] = {}
    done = asyncio.Event()

    async def consume() -> None:
        while not done.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.monotonic()
            for records in batch.values():
                for r in records:
                    if r.key != tenant.encode():
                        continue
                    envelope = decode(list(r.headers), r.value)
                    if envelope.type == "email.EmailReceived.v1":
                        arrived.setdefault(envelope.data["internet_message_id"], now)
            if len(arrived) >= messages:
                done.set()

    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(messages):
        queue.put_nowait(n)
    errors = 0

    async def client() -> None:
        nonlocal errors
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, timeout=60)
        await smtp.connect()
        try:
            while not queue.empty():
                n = queue.get_nowait()
                sent_at[ids[n]] = time.monotonic()
                try:
                    await smtp.sendmail("customer@customer.example", [MAILBOX], raws[n])
                except aiosmtplib.SMTPException as exc:
                    errors += 1
                    say(f"  send failed: {exc!r}")
        finally:
            await smtp.quit()

    consumer_task = asyncio.create_task(consume())
    say(f"sending with {connections} SMTP connections ...")
    started = time.monotonic()
    progress_at = started + 5
    clients = [asyncio.create_task(client()) for _ in range(connections)]
    while not done.is_set():
        await asyncio.sleep(0.25)
        now = time.monotonic()
        if now >= progress_at:
            say(f"  {now - started:5.1f} s: {len(sent_at)} sent, {len(arrived)} on Kafka")
            progress_at = now + 5
        if now - started > 600:
            say("  giving up after 600 s")
            break
    await asyncio.gather(*clients)
    done.set()
    await consumer_task
    await consumer.stop()
    finished = max(arrived.values()) if arrived else time.monotonic()
    accepted_done = max(sent_at.values())
    elapsed = finished - started
    latencies = [(arrived[m] - sent_at[m]) * 1000 for m in arrived if m in sent_at]
    rate = len(arrived) / elapsed
    say(
        f"{len(arrived)} of {messages} messages on Kafka in {elapsed:.1f} s "
        f"(all sent after {accepted_done - started:.1f} s; {errors} SMTP errors)"
    )
    say(f"  throughput {rate:.0f} messages/s, {total_bytes / elapsed / 1e6:.1f} MB/s")
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
            asyncio.run(_admin(server_url, f'create database "{databases[name]}"'))
            prefix = specs[name].env_prefix
            env = {f"{prefix}LOG_LEVEL": "WARNING", **peers}
            if name == "email":
                env.update(
                    {
                        f"{prefix}SMTP_PORT": str(smtp_port),
                        f"{prefix}INTERACTIONS_GRPC_ADDRESS": "",
                        f"{prefix}IMAP_ENABLED": "false",
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
            )
        )
    finally:
        for service in reversed(started):
            service.process.stop()
        if server_url and os.environ.get("DATABASE_URL"):
            for database in databases.values():
                asyncio.run(
                    _admin(server_url, f'drop database if exists "{database}" with (force)')
                )
        infra.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    goal = figures["messages_per_s"] >= 300
    say(f"goal (>= 300 messages/s): {'met' if goal else 'NOT met'} (machine shared, busy)")
    print(json.dumps({"bench": "email", **figures}), flush=True)
    return 0


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
