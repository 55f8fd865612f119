"""`make run` as a user meets it: the infra and every service come up healthy, the traffic
simulator makes real contacts that agents answer, the wallboard URL printed on the console
shows them counted, and Ctrl-C (or a killed launcher) leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psutil
import pytest

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("DATABASE_URL") or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")),
    reason="checks the processes the launcher starts itself",
)


def _start_launcher(
    state: Path, *args: str, printed: list[str] | None = None
) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    env = {**os.environ, "CC_STATE_DIR": str(state)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "contactcenter.infra.launcher", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 240  # start-up on a loaded 2-core machine
    lines = printed if printed is not None else []
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


def _printed_wallboard_url(lines: list[str], tenant: str, within_s: float = 30) -> str:
    """The wallboard URL the console shows (the simulator prints it once it started)."""
    deadline = time.monotonic() + within_s
    pattern = re.compile(rf"live wallboard of tenant {re.escape(tenant)}: (http\S+)")
    while time.monotonic() < deadline:
        for line in list(lines):
            if match := pattern.search(line):
                return match.group(1)
        time.sleep(0.5)
    raise AssertionError(f"no wallboard URL printed; console:\n{''.join(lines)}")


def _wallboard_counts(url: str, within_s: float) -> dict[str, dict[str, Any]]:
    """Follow the wallboard's server-sent events (as its page does) until today's tiles show
    offered and answered contacts, or the time is up; the latest tile of each queue."""
    parts = urlsplit(url)
    feed = urlunsplit((parts.scheme, parts.netloc, "/api/wallboard/events", parts.query, ""))
    queues: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + within_s
    with urllib.request.urlopen(feed, timeout=20) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                for q in json.loads(line[6:])["queues"]:
                    queues[q["queue_id"]] = q
                tiles = queues.values()
                if sum(q["offered"] for q in tiles) and sum(q["answered"] for q in tiles):
                    break
            if time.monotonic() > deadline:
                break
    return queues


def test_the_simulator_makes_contacts_that_agents_answer(tmp_path: Path) -> None:
    import grpc

    from contactcenter.grpckit import Role, issue_token, metadata_for
    from contactcenter.interactions.v1 import interactions_pb2 as ipb
    from contactcenter.interactions.v1 import interactions_pb2_grpc as ipb_grpc
    from contactcenter.reporting.v1 import reporting_pb2 as rpb
    from contactcenter.reporting.v1 import reporting_pb2_grpc as rpb_grpc

    tenant = f"e2e-sim-{uuid.uuid4().hex[:8]}"
    sim_args = (
        f"--tenant {tenant} --agents 6 --schedule always --speed 30 --curve flat "
        "--rates voice=400,chat=200 --status-every 2"
    )
    lines: list[str] = []
    proc, children = _start_launcher(tmp_path, "--simulate", "--sim-args", sim_args, printed=lines)
    match = re.search(r"interactions\s+grpc (\S+)", "".join(lines))
    assert match is not None, "".join(lines)
    address = match.group(1)
    # Keep reading the console (the simulator's status lines) so the pipe never fills.
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
    reader.start()
    completed: list[object] = []
    try:
        md = metadata_for(issue_token(tenant, (Role.SUPERVISOR,), "e2e"))
        handled: list[ipb.Interaction] = []
        with grpc.insecure_channel(address) as channel:
            stub = ipb_grpc.InteractionsServiceStub(channel)
            deadline = time.monotonic() + 240  # a loaded machine is slow
            while time.monotonic() < deadline:
                reply = stub.ListInteractions(ipb.ListInteractionsRequest(), metadata=md)
                handled = [i for i in reply.interactions if i.agent_id and i.answer_time.seconds]
                completed = [i for i in handled if i.state == ipb.INTERACTION_STATE_COMPLETED]
                if len(handled) >= 3 and completed:
                    break
                time.sleep(1)
        assert len(handled) >= 3, f"no contacts answered by agents; console:\n{''.join(lines)}"
        assert all(i.agent_id.startswith("agent-") for i in handled)
        assert completed, "no contact went through wrap-up to COMPLETED"
        assert any(line.startswith("  sim | sim ") for line in lines), "".join(lines)

        # The live wallboard: the URL the console prints works as is, and its feed (the
        # page's server-sent events) counts the simulated contacts.
        url = _printed_wallboard_url(lines, tenant)
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200 and "EventSource" in page.read().decode()
        queues = _wallboard_counts(url, within_s=60)
        offered = sum(q["offered"] for q in queues.values())
        answered = sum(q["answered"] for q in queues.values())
        assert offered > 0 and answered > 0, queues
        # Reporting's QueueStats (gRPC) with the same token says the same.
        token = parse_qs(urlsplit(url).query)["token"][0]
        match = re.search(r"reporting\s+grpc (\S+)", "".join(lines))
        assert match is not None, "".join(lines)
        with grpc.insecure_channel(match.group(1)) as channel:
            stats = rpb_grpc.ReportingServiceStub(channel).QueueStats(
                rpb.QueueStatsRequest(), metadata=metadata_for(token), timeout=10
            )
        today = [q.totals[0] for q in stats.queues]
        assert sum(t.offered for t in today) > 0 and sum(t.answered for t in today) > 0, stats
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        reader.join(10)
    assert proc.returncode == 0, "".join(lines)
    assert "stopped" in "".join(lines)
    alive = _all_gone(children, timeout=10)
    assert alive == [], f"orphans left running: {alive}"
