"""The checked-in gRPC code matches proto/, and proto/ follows the buf STANDARD rules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contactcenter.contracts import codegen


def test_generated_code_is_not_stale() -> None:
    drift = codegen.check()
    assert drift.clean, (
        "generated code differs from proto/; run `make proto` "
        "(python -m contactcenter.contracts.codegen):\n" + drift.describe()
    )


def test_check_reports_stale_missing_and_extra_files(tmp_path: Path) -> None:
    shutil.copytree(codegen.DEFAULT_ROOT / codegen.PROTO_DIR, tmp_path / codegen.PROTO_DIR)
    assert codegen.write(tmp_path).missing  # a fresh tree: everything is missing
    assert codegen.check(tmp_path).clean

    out = tmp_path / codegen.OUT_DIR
    (out / "contactcenter/common/v1/common_pb2.py").write_text("# edited by hand\n")
    (out / "contactcenter/platform/v1/platform_pb2.pyi").unlink()
    (out / "contactcenter/gone/v1").mkdir(parents=True)
    (out / "contactcenter/gone/v1/gone_pb2.py").write_text("")
    drift = codegen.check(tmp_path)
    assert drift.stale == ("contactcenter/common/v1/common_pb2.py",)
    assert drift.missing == ("contactcenter/platform/v1/platform_pb2.pyi",)
    assert drift.extra == ("contactcenter/gone/v1/gone_pb2.py",)
    assert codegen.main(["--check", "--root", str(tmp_path)]) == 1

    codegen.write(tmp_path)
    assert codegen.check(tmp_path).clean
    assert not (out / "contactcenter/gone").exists()


def test_namespace_packages_have_no_init() -> None:
    out = codegen.DEFAULT_ROOT / codegen.OUT_DIR / "contactcenter"
    assert not (out / "__init__.py").exists()
    for proto in codegen.proto_files(codegen.DEFAULT_ROOT):
        versioned = out.parent / proto.parent
        assert (versioned / "__init__.py").is_file()
        assert not (versioned.parent / "__init__.py").exists(), versioned.parent


def test_generated_modules_import() -> None:
    from contactcenter.common.v1 import common_pb2
    from contactcenter.platform.v1 import platform_pb2_grpc

    assert common_pb2.CHANNEL_UNSPECIFIED == 0
    assert hasattr(platform_pb2_grpc, "PlatformDiagnosticsServiceServicer")


def _buf() -> str | None:
    # buf-bin installs the binary next to the interpreter (the venv's bin/).
    return shutil.which("buf", path=str(Path(sys.executable).parent)) or shutil.which("buf")


def test_buf_lint() -> None:
    buf = _buf()
    if buf is None:
        pytest.skip("the buf binary (PyPI wheel buf-bin) is not installed in this environment")
    result = subprocess.run(
        [buf, "lint"], cwd=codegen.DEFAULT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
