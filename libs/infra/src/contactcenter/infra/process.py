"""Child processes that die with their launcher and stop in order."""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from contactcenter.infra.errors import InfraError

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the launcher is killed (even with SIGKILL),
    # the kernel sends the child SIGTERM, so nothing is left orphaned.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ManagedProcess:
    """A started child with its log file; `stop()` is SIGTERM, then SIGKILL after a grace."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        run_as: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                **(run_as or {}),
                # Own session: Ctrl-C reaches the launcher only, which then stops children
                # in order (services before the broker and the database).
                start_new_session=True,
                preexec_fn=_die_with_parent if os.uname().sysname == "Linux" else None,
            )
        except FileNotFoundError as exc:
            self._log.close()
            raise InfraError(f"cannot start {name}: binary not found: {argv[0]}") from exc
        except PermissionError as exc:
            self._log.close()
            raise InfraError(f"cannot start {name}: {argv[0]} is not executable ({exc})") from exc

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until true; fail with the log tail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise InfraError(
                    f"{self.name} exited with code {self.popen.returncode} before {what}; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if ready():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise InfraError(
                    f"{self.name} did not become ready ({what}) within {timeout:.0f}s; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def send_signal(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        """Stop the child's whole process group; returns its exit code."""
        if self.alive():
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()
        return self.popen.returncode


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on the port now. Servers bind with SO_REUSEADDR (Tansu,
    PostgreSQL, gRPC), so connections of a killed predecessor left in TIME_WAIT do not make
    the port busy; a listening socket still does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


#: Where `free_port` looks: below the ephemeral range, above the well-known services.
_FREE_PORTS_FROM = 10_000
#: Linux's default ephemeral range starts here (also the fallback when it cannot be read).
_EPHEMERAL_FROM = 32_768


#: Independent of the `random` module's state, which tests seed.
_pick = random.SystemRandom()
#: The ports `free_port` gave this process.
_handed_out: set[int] = set()


def _ephemeral_from() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return _EPHEMERAL_FROM


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now, for a server started a little later.

    Taken below the ephemeral range: a port from it (what binding port 0 gives) may become the
    local port of any outgoing connection meanwhile (the services' own connections to the
    broker while they start), and the server then fails to bind it.
    """
    top = _ephemeral_from()
    if top - _FREE_PORTS_FROM < 1_000:  # an unusual range: leave the choice to the kernel
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
            return port
    while True:
        candidate = _pick.randrange(_FREE_PORTS_FROM, top)
        # Callers often take several ports before any server binds one: never the same twice.
        if candidate in _handed_out:
            continue
        if port_is_free(host, candidate) and not tcp_accepts(host, candidate):
            _handed_out.add(candidate)
            return candidate


def hold_port(host: str, port: int) -> socket.socket:
    """Keep `port` from becoming the local port of an outgoing connection until the server it
    was chosen for listens (close the socket then): a bound socket, not listening, with
    SO_REUSEADDR, which the server's own bind (with SO_REUSEADDR: gRPC, Tansu, PostgreSQL)
    shares. For a preferred port in the ephemeral range (gRPC's 50051)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def tcp_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False
