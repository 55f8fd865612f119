"""What the benchmark scripts beside this file share (they import it as `benchkit`: a script's
folder is first on sys.path). Not a benchmark itself: `make bench` skips it."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import asyncpg
import psutil

from contactcenter.servicekit.app import run_on_uvloop

_T = TypeVar("_T")


def say(message: str) -> None:
    print(message, flush=True)


async def admin_sql(server_url: str, sql: str) -> None:
    """One statement on the server's maintenance database (create or drop a bench database)."""
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def add_client_loop_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--client-loop",
        choices=("uvloop", "asyncio"),
        default="uvloop",
        help="the event loop of the bench's gRPC clients (default uvloop, as the services run: "
        "the clients share the machine's cores with the service, so their CPU is taken from it)",
    )


def client_loop_runner(name: str) -> Callable[[Coroutine[Any, Any, _T]], _T]:
    """How to run the clients' coroutine on the loop `--client-loop` names."""
    return run_on_uvloop if name == "uvloop" else asyncio.run


def percentile(sorted_values: list[float], q: float) -> float:
    """The `q` quantile (0..1) of already sorted values (nan when there are none)."""
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class CallPacer:
    """When each call of one client starts: as soon as it is asked for (flat out: the client
    sends its next call when the last is answered), or, with `pace_s`, one every `pace_s`
    seconds from `first_due`. A paced call's latency counts from when it was due, so a late
    call is not excused by the slow one before it."""

    def __init__(self, pace_s: float | None, first_due: float | None = None) -> None:
        self._pace_s = pace_s
        self._due = time.monotonic() if first_due is None else first_due

    async def start(self) -> float:
        """Wait until the next call is due; returns its start (`time.monotonic()` time)."""
        if self._pace_s is None:
            return time.monotonic()
        wait = self._due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        started = self._due
        self._due += self._pace_s
        return started


def pid_of(part: Any) -> int | None:
    """The pid of an infrastructure process a bench started (None: an external one)."""
    process = getattr(part, "process", None)
    return None if process is None else int(process.pid)


class CpuMeter:
    """CPU seconds (user + system) used by groups of processes: each group is a root process
    and its children (a service with its worker processes, PostgreSQL's postmaster and
    backends, the broker) or, for this process, itself alone (the bench's own clients; its
    children are the other groups). On a shared, noisy machine the CPU per operation of each
    group is the steady figure; wall-clock throughput is only meaningful on a quiet one."""

    def __init__(self, groups: dict[str, int | None]) -> None:
        self.groups = {name: pid for name, pid in groups.items() if pid is not None}

    @staticmethod
    def _tree(pid: int) -> float:
        try:
            root = psutil.Process(pid)
            members = [root] if pid == os.getpid() else [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for member in members:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def sample(self) -> dict[str, float]:
        return {name: self._tree(pid) for name, pid in self.groups.items()}

    @staticmethod
    def used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """CPU seconds of each group between two samples."""
        return {name: after[name] - before.get(name, 0.0) for name in after}

    async def idle_share(self, seconds: float) -> dict[str, float]:
        """Each group's share of a core while nothing is asked of it (for `above_idle`)."""
        before, began = self.sample(), time.monotonic()
        await asyncio.sleep(seconds)
        elapsed = time.monotonic() - began
        share = {k: v / elapsed for k, v in self.used(before, self.sample()).items()}
        say("  idle CPU, share of a core: " + ", ".join(f"{k} {v:.0%}" for k, v in share.items()))
        return share

    @staticmethod
    def above_idle(
        used: dict[str, float], idle_share: dict[str, float], elapsed_s: float
    ) -> dict[str, float]:
        """`used` less what each group burns when nothing happens (its idle share of a core
        over `elapsed_s`): at a low rate, idle polling would otherwise swamp the figure."""
        return {
            name: max(0.0, cpu - idle_share.get(name, 0.0) * elapsed_s)
            for name, cpu in used.items()
        }

    @staticmethod
    def line(used: dict[str, float], operations: int, elapsed_s: float, unit: str) -> str:
        """`CPU per <unit> (ms) and share of a core: group x.xx (y%), ...` and the total."""
        operations = max(1, operations)
        elapsed_s = max(1e-9, elapsed_s)
        total = sum(used.values())
        return (
            f"  CPU per {unit} (ms) and share of a core: "
            + ", ".join(
                f"{name} {cpu * 1000 / operations:.2f} ({cpu / elapsed_s:.0%})"
                for name, cpu in used.items()
            )
            + f"; total {total * 1000 / operations:.2f}"
        )
