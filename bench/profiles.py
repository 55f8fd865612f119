"""Benchmark: ResolveIdentity for existing identities among 1,000,000 profiles, with 50
concurrent gRPC clients: p50/p99 latency and resolves per second.

    uv run --all-packages python bench/profiles.py [--profiles 1000000] [--clients 50]
        [--seconds 20] [--warmup 3]

Starts PostgreSQL (durable: fsync on, in a temporary data directory) and the broker through the
same launcher code as `make run`, unless `DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS` name external
ones, then the service as its own process (`python -m contactcenter.profiles`, as `make run`
starts it). The profiles are seeded straight into the service's tables with COPY and bulk SQL
(going through gRPC would only measure creation): for each one an identity index row (the
keyed hash of its email, computed exactly as the service computes it), a data key, a
ProfileCreated event and a profile_view row. Every call asks for a random existing email,
spelled in upper case so that normalisation is on the measured path, and every answer is
checked against the seeded profile id.

Goal (issue 7): p99 under 10 ms and at least 2,000 resolves/s.
The last line is `{"bench": "profiles", "profiles", "resolve_p50_ms", "resolve_p99_ms",
"resolves_per_s"}`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import psutil

import contactcenter.profiles.main as profiles_main
from contactcenter.eventstore import apply_migrations, create_pool
from contactcenter.grpckit import Role, issue_token, metadata_for
from contactcenter.infra import LocalInfra
from contactcenter.infra.health import wait_serving
from contactcenter.infra.paths import project_root
from contactcenter.infra.postgres import database_url_for
from contactcenter.infra.services import RunningService, discover_services, start_service
from contactcenter.profiles.adapters.crypto import KeyRing
from contactcenter.profiles.config import DEV_ONLY_MASTER_KEY
from contactcenter.profiles.domain import Identity, IdentityKind
from contactcenter.profiles.v1 import profiles_pb2 as pb
from contactcenter.profiles.v1 import profiles_pb2_grpc as pb_grpc
from contactcenter.servicekit import migrations_dir

SEED_CHUNK = 100_000


def say(message: str) -> None:
    print(message, flush=True)


def email_of(n: int) -> str:
    return f"customer{n}@example.com"


def profile_id_of(n: int) -> str:
    return str(uuid.UUID(int=n + 1))


async def migrate(database_url: str) -> None:
    """The service's schema, as the service would create it (so that seeding can happen
    before it starts: its outbox relay must find the seeded events already relayed)."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await apply_migrations(pool, "profiles", [migrations_dir(profiles_main.__file__)])
    finally:
        await pool.close()


async def seed(database_url: str, tenant_id: str, count: int) -> None:
    """COPY the identity index and keys, bulk-insert events and views in SQL."""
    keyring = KeyRing(base64.b64decode(DEV_ONLY_MASTER_KEY))
    refs = keyring.refs(tenant_id)
    wrapped = keyring.wrap(tenant_id, "bench", KeyRing.new_data_key())  # not opened here
    conn = await asyncpg.connect(database_url)
    try:
        started = time.monotonic()
        for lo in range(0, count, SEED_CHUNK):
            hi = min(count, lo + SEED_CHUNK)
            rows = [
                (
                    tenant_id,
                    "email",
                    refs.ref(Identity(IdentityKind.EMAIL, email_of(n))),
                    profile_id_of(n),
                    "create",
                    None,
                    True,
                )
                for n in range(lo, hi)
            ]
            await conn.copy_records_to_table(
                "identities",
                schema_name="profiles",
                records=rows,
                columns=[
                    "tenant_id",
                    "kind",
                    "ref",
                    "profile_id",
                    "origin",
                    "claimed_by_request",
                    "confirmed",
                ],
            )
            await conn.copy_records_to_table(
                "profile_keys",
                schema_name="profiles",
                records=[(tenant_id, profile_id_of(n), wrapped) for n in range(lo, hi)],
                columns=["tenant_id", "profile_id", "wrapped_key"],
            )
            say(f"  seeded {hi:,} identities and keys ({time.monotonic() - started:.1f} s)")
        # Events and views in SQL: uuid n+1 is lpad(to_hex(n+1), 32) in the uuid text form.
        pid_sql = (
            "(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-' || substr(h, 13, 4) || '-' || "
            "substr(h, 17, 4) || '-' || substr(h, 21, 12))"
        )
        source = (
            "from (select n, lpad(to_hex(n + 1), 32, '0') as h "
            "from generate_series($2::bigint, $3::bigint) as n) s"
        )
        for lo in range(0, count, SEED_CHUNK):
            hi = min(count, lo + SEED_CHUNK) - 1
            await conn.execute(
                "insert into profiles.events (stream_id, version, event_id, event_type, "
                "tenant_id, occurred_at, correlation_id, data) "
                f"select 'profile/' || $1 || '/' || {pid_sql}, 1, gen_random_uuid(), "
                "'profiles.ProfileCreated.v1', $1, now(), gen_random_uuid(), "
                f"jsonb_build_object('profile_id', {pid_sql}, 'tenant_id', $1, "
                "'sealed_details', 'v1.' || md5(h) || md5(h || 'x'), 'identities', '[]'::jsonb) "
                f"{source}",
                tenant_id,
                lo,
                hi,
            )
            await conn.execute(
                "insert into profiles.profile_view "
                "(tenant_id, profile_id, status, display_name, name_key, version) "
                f"select $1, {pid_sql}, 'active', 'Customer ' || n, 'customer ' || n, 1 {source}",
                tenant_id,
                lo,
                hi,
            )
            say(f"  seeded {hi + 1:,} events and views ({time.monotonic() - started:.1f} s)")
        # Nothing for the relay to publish: the seeded events count as already relayed.
        await conn.execute(
            "insert into profiles.consumer_positions (consumer, source, transaction_id, position) "
            "select 'outbox-relay', 'eventstore', max(transaction_id), max(position) "
            "from profiles.events on conflict (consumer, source) do update "
            "set transaction_id = excluded.transaction_id, position = excluded.position"
        )
        await conn.execute("analyze profiles.identities")
        await conn.execute("analyze profiles.redirects")
        say(f"seeded {count:,} profiles in {time.monotonic() - started:.1f} s")
    finally:
        await conn.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def drive(
    address: str,
    tenant_id: str,
    profiles: int,
    clients: int,
    seconds: float,
    warmup: float,
    service_pid: int,
) -> dict[str, Any]:
    metadata = metadata_for(issue_token(tenant_id, [Role.SERVICE], "bench-ivr"))
    channels = [grpc.aio.insecure_channel(address) for _ in range(max(1, clients // 10))]
    stubs = [pb_grpc.ProfilesServiceStub(c) for c in channels]
    samples: list[tuple[float, float]] = []
    errors: dict[str, int] = defaultdict(int)
    wrong = 0
    started = time.monotonic()
    measure_from = started + warmup
    stop_at = measure_from + seconds

    async def client(i: int) -> None:
        nonlocal wrong
        stub = stubs[i % len(stubs)]
        rng = random.Random(i)
        while time.monotonic() < stop_at:
            n = rng.randrange(profiles)
            request = pb.ResolveIdentityRequest(
                request_id=str(uuid.uuid4()),
                identity=pb.Identity(kind=pb.IDENTITY_KIND_EMAIL, value=email_of(n).upper()),
            )
            t0 = time.monotonic()
            try:
                response = await stub.ResolveIdentity(request, metadata=metadata, timeout=10)
            except grpc.aio.AioRpcError as error:
                errors[error.code().name] += 1
                continue
            samples.append((t0, time.monotonic() - t0))
            if response.profile_id != profile_id_of(n) or response.created:
                wrong += 1

    say(f"{clients} clients for {warmup:.0f} s warm-up + {seconds:.0f} s measured ...")
    process = psutil.Process(service_pid)
    cpu_before = sum(process.cpu_times()[:2])
    try:
        await asyncio.gather(*(client(i) for i in range(clients)))
    finally:
        for channel in channels:
            await channel.close()
    cpu_used = sum(process.cpu_times()[:2]) - cpu_before
    window = sorted(s[1] * 1000 for s in samples if measure_from <= s[0] < stop_at)
    rate = len(window) / seconds
    p50, p99 = percentile(window, 0.5), percentile(window, 0.99)
    say(f"resolves: {len(window):,} in {seconds:.1f} s = {rate:,.0f} resolves/s")
    say(
        f"latency ms: p50 {p50:.2f}  p90 {percentile(window, 0.9):.2f}  p99 {p99:.2f}  "
        f"max {window[-1] if window else float('nan'):.2f}"
    )
    say(
        f"service process: {cpu_used / (time.monotonic() - started):.0%} of a core, "
        f"{cpu_used * 1000 / max(1, len(samples)):.3f} ms CPU per resolve"
    )
    if errors:
        say(f"errors: {dict(errors)}")
    if wrong:
        raise RuntimeError(f"{wrong} answers named the wrong profile")
    return {
        "resolve_p50_ms": round(p50, 2),
        "resolve_p99_ms": round(p99, 2),
        "resolves_per_s": round(rate, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    args = parser.parse_args(argv)

    data_dir = Path(tempfile.mkdtemp(prefix="cc-bench-profiles-"))
    infra = LocalInfra(
        kafka_port=0,
        postgres_data_dir=data_dir / "postgres",
        fresh=True,
        durable=os.environ.get("BENCH_FSYNC", "1") == "1",
    )
    service: RunningService | None = None
    database = f"bench_profiles_{uuid.uuid4().hex[:8]}"
    server_url = ""
    tenant_id = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        say("starting PostgreSQL (durable) and the broker ...")
        infra.start()
        server_url = infra.database_url
        asyncio.run(_admin(server_url, f'create database "{database}"'))
        database_url = database_url_for(server_url, database)
        say(f"seeding {args.profiles:,} profiles ...")
        asyncio.run(migrate(database_url))
        asyncio.run(seed(database_url, tenant_id, args.profiles))
        (spec,) = [s for s in discover_services(project_root()) if s.name == "profiles"]
        service = start_service(
            spec,
            database_url=database_url,
            kafka_bootstrap=infra.kafka_bootstrap,
            log_dir=data_dir / "logs",
            extra_env={"CC_PROFILES_LOG_LEVEL": "WARNING"},
        )
        wait_serving(service, 90, threading.Event())
        say(f"profiles serving on {service.grpc_address} (pid {service.process.pid})")
        figures = asyncio.run(
            drive(
                service.grpc_address,
                tenant_id,
                args.profiles,
                args.clients,
                args.seconds,
                args.warmup,
                service.process.pid,
            )
        )
    finally:
        if service is not None:
            service.process.stop()
        if server_url and os.environ.get("DATABASE_URL"):
            asyncio.run(_admin(server_url, f'drop database if exists "{database}" with (force)'))
        infra.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    goal = figures["resolve_p99_ms"] < 10 and figures["resolves_per_s"] >= 2000
    say(f"goal (p99 < 10 ms, >= 2,000 resolves/s): {'met' if goal else 'NOT met'}")
    print(json.dumps({"bench": "profiles", "profiles": args.profiles, **figures}), flush=True)
    return 0


async def _admin(server_url: str, sql: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


if __name__ == "__main__":
    sys.exit(main())
