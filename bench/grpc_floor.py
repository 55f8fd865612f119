"""Benchmark: the floor of a unary gRPC call on this machine, with no work behind it.

    uv run --all-packages python bench/grpc_floor.py [--clients 50] [--rate 2000] [--workers 1]

The profiles service's `ResolveIdentity` (issue 7) and the interactions service's commands
(issue 5) have throughput and latency goals for 50 concurrent gRPC clients on this machine,
whose cores the clients share with the service. This measures what gRPC (grpcio's asyncio
server and client, on uvloop as the services run) costs by itself: a server whose
`ResolveIdentity` returns a fixed answer at once (the real protobuf messages, serialised both
ways), in its own process(es), and the same clients as bench/profiles.py (50 coroutines over 5
channels, requests built before the clock runs). Two phases, as bench/profiles.py:
1. flat out: each client sends its next call when the last is answered -> calls/s;
2. paced: the clients together send `--rate` calls/s, latency counted from when each call was
   due -> p50, p99.
Each phase prints the CPU per call of the server and of the clients. A service's own work can
only add to these: if the floor already misses a goal here, no service code meets it.

The last line is `{"bench": "grpc_floor", "calls_per_s", "paced_rate", "p50_ms", "p99_ms",
"server_cpu_ms", "client_cpu_ms"}` (the CPU per call of the flat-out phase).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sys
import time
from typing import Any

import grpc
from benchkit import CallPacer, CpuMeter, percentile, say

from contactcenter.infra.process import free_port
from contactcenter.profiles.v1 import profiles_pb2 as pb
from contactcenter.profiles.v1 import profiles_pb2_grpc as pb_grpc
from contactcenter.servicekit.app import run_on_uvloop

SECONDS = 10.0
WARMUP_S = 2.0


class FixedAnswers(pb_grpc.ProfilesServiceServicer):  # type: ignore[misc]
    """`ResolveIdentity` answered at once, always with the same profile."""

    def __init__(self) -> None:
        self._answer = pb.ResolveIdentityResponse(
            profile_id="00000000-0000-4000-8000-000000000000",
            identity=pb.Identity(kind=pb.IDENTITY_KIND_EMAIL, value="someone@example.com"),
        )

    async def ResolveIdentity(
        self, request: pb.ResolveIdentityRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResolveIdentityResponse:
        return self._answer


def serve(port: int) -> None:
    async def main() -> None:
        # SO_REUSEPORT: several server processes share the port (as a service's workers do).
        server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
        pb_grpc.add_ProfilesServiceServicer_to_server(FixedAnswers(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    run_on_uvloop(main())


async def run_clients(
    address: str, clients: int, pace_s: float | None, meter: CpuMeter
) -> tuple[list[tuple[float, float]], float, float, dict[str, float]]:
    """The clients of bench/profiles.py (see there), against the fixed answers."""
    channels = [
        grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(max(1, clients // 10))
    ]
    calls = [pb_grpc.ProfilesServiceStub(c).ResolveIdentity for c in channels]
    requests = [
        pb.ResolveIdentityRequest(
            request_id=f"r-{n}",
            identity=pb.Identity(kind=pb.IDENTITY_KIND_EMAIL, value=f"CUSTOMER{n}@EXAMPLE.COM"),
        )
        for n in range(10_000)
    ]
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    since, until = started + WARMUP_S, started + WARMUP_S + SECONDS

    async def client(i: int) -> None:
        call = calls[i % len(calls)]
        rng = random.Random(i)
        pacer = CallPacer(pace_s, time.monotonic() + rng.random() * (pace_s or 0.0))
        while True:
            t0 = await pacer.start()
            if t0 >= until:
                return
            await call(requests[rng.randrange(len(requests))], timeout=10)
            samples.append((t0, time.monotonic() - t0))

    before = meter.sample()
    try:
        await asyncio.gather(*(client(i) for i in range(clients)))
    finally:
        used = CpuMeter.used(before, meter.sample())
        for channel in channels:
            await channel.close()
    say(CpuMeter.line(used, len(samples), time.monotonic() - started, "call"))
    answered = max(1, len(samples))
    server = sum(v for k, v in used.items() if k.startswith("server"))
    return (
        samples,
        since,
        until,
        {"server": server / answered, "clients": used["clients"] / answered},
    )


def figures(samples: list[tuple[float, float]], since: float, until: float) -> dict[str, float]:
    window = sorted(seconds * 1000 for t0, seconds in samples if since <= t0 < until)
    return {
        "rate": len(window) / (until - since),
        "p50": percentile(window, 0.5),
        "p99": percentile(window, 0.99),
    }


async def drive(address: str, clients: int, rate: float, meter: CpuMeter) -> dict[str, Any]:
    async with grpc.aio.insecure_channel(address) as channel:
        await asyncio.wait_for(channel.channel_ready(), 60)
    await asyncio.sleep(1)  # the other server processes, if any
    say(f"1. flat out: {clients} clients ({WARMUP_S:.0f} s warm-up + {SECONDS:.0f} s) ...")
    samples, since, until, cpu = await run_clients(address, clients, None, meter)
    flat = figures(samples, since, until)
    say(f"   {flat['rate']:,.0f} calls/s; p50 {flat['p50']:.2f} ms, p99 {flat['p99']:.2f} ms")
    say(f"2. paced: {clients} clients together sending {rate:,.0f} calls/s ...")
    samples, since, until, _ = await run_clients(address, clients, clients / rate, meter)
    paced = figures(samples, since, until)
    say(f"   {paced['rate']:,.0f} calls/s; p50 {paced['p50']:.2f} ms, p99 {paced['p99']:.2f} ms")
    return {
        "calls_per_s": round(flat["rate"], 1),
        "paced_rate": round(paced["rate"], 1),
        "p50_ms": round(paced["p50"], 2),
        "p99_ms": round(paced["p99"], 2),
        "server_cpu_ms": round(cpu["server"] * 1000, 3),
        "client_cpu_ms": round(cpu["clients"] * 1000, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rate", type=float, default=2000.0, help="calls/s of the paced phase")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    args = parser.parse_args(argv)

    port = free_port("127.0.0.1")
    context = multiprocessing.get_context("spawn")
    servers = [
        context.Process(target=serve, args=(port,), daemon=True) for _ in range(args.workers)
    ]
    for server in servers:
        server.start()
    try:
        groups: dict[str, int | None] = {f"server {n}": s.pid for n, s in enumerate(servers)}
        meter = CpuMeter({**groups, "clients": os.getpid()})
        result = run_on_uvloop(drive(f"127.0.0.1:{port}", args.clients, args.rate, meter))
    finally:
        for server in servers:
            server.terminate()
    print(json.dumps({"bench": "grpc_floor", **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
