"""`make run` as a user meets it: the infra and every service come up healthy, and Ctrl-C (or a
killed launcher) leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL") or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")),
    reason="checks the processes the launcher starts itself",
)


def _start_launcher(state: Path) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    env = {**os.environ, "CC_STATE_DIR": str(state)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "contactcenter.infra.launcher"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("ready:"):
            break
        if time.monotonic() > deadline:
            break
    assert any(line.startswith("ready:") for line in lines), "".join(lines)
    assert any("postgres" in line for line in lines)
    assert any("kafka" in line for line in lines)
    children = psutil.Process(proc.pid).children(recursive=True)
    names = {c.name() for c in children}
    assert any("postgres" in n for n in names), names
    assert any("tansu" in n for n in names), names
    return proc, children


def _all_gone(children: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    _gone, alive = psutil.wait_procs(children, timeout=timeout)
    return alive


def test_ctrl_c_stops_everything_it_started(tmp_path: Path) -> None:
    proc, children = _start_launcher(tmp_path)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "stopped" in out
    alive = _all_gone(children, timeout=10)
    assert alive == [], f"orphans left running: {alive}"


def test_killed_launcher_leaves_no_orphans(tmp_path: Path) -> None:
    proc, children = _start_launcher(tmp_path)
    proc.kill()  # SIGKILL: no chance to clean up; the children must notice by themselves
    proc.wait(10)
    alive = _all_gone(children, timeout=30)
    for p in alive:
        p.kill()
    assert alive == [], f"orphans left running: {alive}"
