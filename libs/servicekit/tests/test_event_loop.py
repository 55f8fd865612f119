"""The services' uvloop runs without libuv's io_uring polling thread (see run_on_uvloop)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import asyncio, os
from contactcenter.servicekit.app import run_on_uvloop

async def main() -> None:
    await asyncio.sleep(0.2)
    tasks = os.listdir("/proc/self/task")
    names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in tasks]
    print(",".join(sorted(names)))

run_on_uvloop(main())
"""


def _threads(env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(",")


def test_no_io_uring_polling_thread_unless_asked_for() -> None:
    env = {k: v for k, v in os.environ.items() if k != "UV_USE_IO_URING"}
    threads = _threads(env)
    assert threads and not [t for t in threads if t.startswith("iou-sqp")], threads
