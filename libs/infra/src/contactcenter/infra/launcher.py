"""`make run`: start the infra and every service, wait for their health, print where each
listens, and on Ctrl-C (or SIGTERM) stop everything that was started, services first."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from types import FrameType

from contactcenter.infra.errors import InfraError
from contactcenter.infra.health import wait_serving
from contactcenter.infra.paths import project_root, state_dir
from contactcenter.infra.services import RunningService, discover_services, start_service
from contactcenter.infra.stack import LocalInfra

HEALTH_TIMEOUT_S = 90.0


def _say(message: str) -> None:
    print(message, flush=True)


def run(*, fresh: bool = False, only: set[str] | None = None) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    root = project_root()
    logs = state_dir() / "logs"
    specs = [s for s in discover_services(root) if only is None or s.name in only]
    running: list[RunningService] = []
    infra = LocalInfra(fresh=fresh)
    code = 0
    try:
        _say("starting PostgreSQL and the Kafka-compatible broker ...")
        infra.start()
        assert infra.postgres is not None and infra.kafka is not None
        _say(f"  postgres  {infra.database_url}")
        _say(f"  kafka     {infra.kafka_bootstrap}")
        # Services started earlier are peers of later ones: CC_PEER_<NAME>_GRPC=host:port.
        peers: dict[str, str] = {}
        for spec in specs:
            if stop.is_set():
                break
            service = start_service(
                spec,
                database_url=infra.database_url,
                kafka_bootstrap=infra.kafka_bootstrap,
                log_dir=logs,
                extra_env=dict(peers),
            )
            running.append(service)
            peers[f"CC_PEER_{spec.name.upper().replace('-', '_')}_GRPC"] = service.grpc_address
            wait_serving(service, HEALTH_TIMEOUT_S, stop)
            line = f"  {spec.name:<16} grpc {service.grpc_address}"
            if service.http_url:
                line += f"   http {service.http_url}"
            _say(line)
        if not stop.is_set():
            if not specs:
                _say("no services found under services/ (only the infra runs)")
            _say(f"ready: logs in {logs}; press Ctrl-C to stop everything")
        while not stop.is_set():
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
    args = parser.parse_args(argv)
    started = time.monotonic()
    code = run(fresh=args.fresh, only=set(args.only) if args.only else None)
    _say(f"ran for {time.monotonic() - started:.0f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
