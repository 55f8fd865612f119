"""`make run`: start the infra and every service, wait for their health, print where each
listens, and on Ctrl-C (or SIGTERM) stop everything that was started, services first.

With `--simulate`, the traffic simulator (`python -m contactcenter.simulator`, from apps/) starts
last, told where every service listens (`CC_SIM_<SERVICE>_GRPC` / `_HTTP`); its status lines are
echoed to the console."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from contactcenter.infra.errors import InfraError
from contactcenter.infra.health import wait_serving
from contactcenter.infra.paths import project_root, state_dir
from contactcenter.infra.process import ManagedProcess, hold_port
from contactcenter.infra.services import (
    HOST,
    RunningService,
    discover_services,
    reserve_port,
    start_service,
)
from contactcenter.infra.stack import LocalInfra

HEALTH_TIMEOUT_S = 90.0
SIMULATOR_MODULE = "contactcenter.simulator"


class _SignalSafeStop(threading.Event):
    """A stop flag that a signal handler may set. `threading.Event.set()` takes a lock that the
    interrupted `wait()` of the same thread may hold: setting it from a handler can deadlock
    the launcher. This one is a plain attribute, and `wait` polls it."""

    def __init__(self) -> None:
        super().__init__()
        self._stopped = False

    def set(self) -> None:
        self._stopped = True

    def is_set(self) -> bool:
        return self._stopped

    def wait(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopped:
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                break
            time.sleep(left)
        return self._stopped


def _say(message: str) -> None:
    print(message, flush=True)


def _simulator_env(running: list[RunningService]) -> dict[str, str]:
    env = dict(os.environ)
    for s in running:
        key = s.spec.name.upper().replace("-", "_")
        env[f"CC_SIM_{key}_GRPC"] = s.grpc_address
        if s.http_url:
            env[f"CC_SIM_{key}_HTTP"] = s.http_url
    return env


def start_simulator(
    running: list[RunningService], args: list[str], log_dir: Path
) -> ManagedProcess | None:
    """The traffic simulator, told where every running service listens (None: not installed)."""
    if importlib.util.find_spec(SIMULATOR_MODULE) is None:
        _say(f"no traffic simulator: {SIMULATOR_MODULE} is not installed")
        return None
    argv = [sys.executable, "-u", "-m", SIMULATOR_MODULE, *args]
    return ManagedProcess("simulator", argv, log_dir / "simulator.log", env=_simulator_env(running))


class _Echo:
    """Echoes the new lines of a log file to the console."""

    def __init__(self, path: Path, prefix: str) -> None:
        self.path, self.prefix = path, prefix
        self.offset = path.stat().st_size if path.exists() else 0  # only what this run writes

    def __call__(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for line in chunk[:end].decode(errors="replace").splitlines():
            _say(f"{self.prefix}{line}")


def _where_to_look(
    running: list[RunningService], kafka_bootstrap: str, simulator: ManagedProcess | None
) -> None:
    by_name = {s.spec.name: s for s in running}
    reporting = by_name.get("reporting")
    if reporting is not None and reporting.http_url:
        if simulator is not None:
            # The page needs a token of a tenant: the simulator knows its tenant and prints
            # the URL with a supervisor token of it ("live wallboard of tenant ...").
            _say("watch: the live wallboard; its URL with a token comes from the simulator below")
        else:
            _say(
                f"watch: live wallboard {reporting.http_url}?token=TOKEN  (a supervisor token: "
                "ccctl tenants token TENANT --role supervisor)"
            )
        _say(f"  metrics {reporting.http_url}metrics")
    else:
        _say("watch: no reporting service here (no wallboard); follow the events instead:")
    _say(f"  ccctl tail interactions --tenant sim --bootstrap {kafka_bootstrap}")
    _say("  ccctl --help     (queues, agents, explain a routing decision, interval reports)")


def run(
    *, fresh: bool = False, only: set[str] | None = None, simulate: list[str] | None = None
) -> int:
    stop = _SignalSafeStop()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    root = project_root()
    logs = state_dir() / "logs"
    specs = [s for s in discover_services(root) if only is None or s.name in only]
    running: list[RunningService] = []
    holds: list[socket.socket] = []
    simulator: ManagedProcess | None = None
    echo: _Echo | None = None
    infra = LocalInfra(fresh=fresh)
    code = 0
    try:
        _say("starting PostgreSQL and the Kafka-compatible broker ...")
        infra.start()
        assert infra.postgres is not None and infra.kafka is not None
        _say(f"  postgres  {infra.database_url}")
        _say(f"  kafka     {infra.kafka_bootstrap}")
        # Every service knows every peer's address from the start (CC_PEER_<NAME>_GRPC=
        # host:port): the gRPC ports are reserved first, then all start at once and are awaited:
        # most of a start is waiting (connections, consumer-group joins), which overlaps; a
        # service calls its peers only when it works.
        taken_ports: set[int] = set()
        grpc_ports = {spec.name: reserve_port(spec.grpc_port, taken_ports) for spec in specs}
        # Held until the services listen: the services' own connections to the broker, made
        # while they start, would otherwise take them as their local ports now and then.
        holds += [hold_port(HOST, port) for port in grpc_ports.values()]
        peers = {
            f"CC_PEER_{spec.name.upper().replace('-', '_')}_GRPC": f"{HOST}:{grpc_ports[spec.name]}"
            for spec in specs
        }
        for spec in specs:
            if stop.is_set():
                break
            service = start_service(
                spec,
                database_url=infra.database_url,
                kafka_bootstrap=infra.kafka_bootstrap,
                log_dir=logs,
                extra_env=dict(peers),
                grpc_port=grpc_ports[spec.name],
                taken_ports=taken_ports,
            )
            running.append(service)
        for service in running:
            if stop.is_set():
                break
            wait_serving(service, HEALTH_TIMEOUT_S, stop)
            line = f"  {service.spec.name:<16} grpc {service.grpc_address}"
            if service.http_url:
                line += f"   http {service.http_url}"
            _say(line)
        for hold in holds:
            hold.close()
        if not stop.is_set():
            if not specs:
                _say("no services found under services/ (only the infra runs)")
            if simulate is not None:
                log = logs / "simulator.log"
                echo = _Echo(log, "  sim | ")
                simulator = start_simulator(running, simulate, logs)
                if simulator is not None:
                    _say(f"  simulator        log {log}")
            _where_to_look(running, infra.kafka_bootstrap, simulator)
            _say(f"ready: logs in {logs}; press Ctrl-C to stop everything")
        while not stop.is_set():
            if echo is not None:
                echo()
            if simulator is not None and not simulator.alive():
                if echo is not None:
                    echo()
                _say(f"simulator exited with {simulator.popen.returncode}; services keep running")
                simulator.stop()
                simulator = None
            dead = [s for s in running if not s.process.alive()]
            if dead:
                for s in dead:
                    _say(
                        f"service {s.spec.name} exited with {s.process.popen.returncode}; "
                        f"last lines of {s.process.log_path}:\n{s.process.log_tail()}"
                    )
                code = 1
                break
            stop.wait(0.5)
    except InfraError as exc:
        _say(f"error: {exc}")
        code = 2
    finally:
        _say("stopping ...")
        for hold in holds:
            hold.close()
        if simulator is not None:
            simulator.stop()
        for service in reversed(running):
            service.process.stop()
        infra.stop()
        _say("stopped")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fresh", action="store_true", help="start with an empty database")
    parser.add_argument(
        "--only", action="append", help="start only this service (repeatable)", default=None
    )
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="start the traffic simulator once every service is serving",
    )
    parser.add_argument(
        "--sim-args",
        default="",
        help='flags for the simulator, e.g. "--agents 50 --speed 30" (see its --help)',
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    code = run(
        fresh=args.fresh,
        only=set(args.only) if args.only else None,
        simulate=shlex.split(args.sim_args) if args.simulate else None,
    )
    _say(f"ran for {time.monotonic() - started:.0f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
