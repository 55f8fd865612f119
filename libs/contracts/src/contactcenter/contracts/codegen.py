"""Generate the Python gRPC stubs from `proto/` (the one command behind `make proto`).

    python -m contactcenter.contracts.codegen          # regenerate the checked-in code
    python -m contactcenter.contracts.codegen --check  # exit 1 if the checked-in code is stale

Every `.proto` under `proto/` is compiled with the pinned grpcio-tools (protoc plus the
well-known types it bundles) and mypy-protobuf into `libs/contracts/src/contactcenter/`, so
`proto/contactcenter/common/v1/common.proto` becomes `contactcenter.common.v1.common_pb2`.

`contactcenter` and `contactcenter.<service>` are implicit namespace packages shared with the
service distributions, so only the versioned directories (`.../v1/`) get an `__init__.py` (and a
`py.typed` marker, so type checkers use the generated stubs).

Code is always generated into a temporary directory first; writing then only touches files whose
content changed and removes generated files whose `.proto` is gone, so the output is
deterministic and a rerun on an unchanged tree changes nothing.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.resources
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# libs/contracts/src/contactcenter/contracts/codegen.py -> the repository root.
DEFAULT_ROOT = Path(__file__).resolve().parents[5]
PROTO_DIR = "proto"
OUT_DIR = "libs/contracts/src"

# What the generators produce; only files matching these are ever overwritten or deleted.
_GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")
_PACKAGE_FILES = ("__init__.py", "py.typed")
_VERSION_DIR = re.compile(r"^v[0-9]+((alpha|beta)[0-9]*)?$")


class CodegenError(RuntimeError):
    """protoc failed, or the repository does not look like expected."""


@dataclass(frozen=True)
class Drift:
    """How the checked-in generated code differs from freshly generated code (relative paths)."""

    stale: tuple[str, ...]
    missing: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not (self.stale or self.missing or self.extra)

    def describe(self) -> str:
        lines = [f"  stale:   {p}" for p in self.stale]
        lines += [f"  missing: {p}" for p in self.missing]
        lines += [f"  extra:   {p}" for p in self.extra]
        return "\n".join(lines)


def proto_files(root: Path) -> list[Path]:
    """Every .proto under proto/, relative to proto/, in a stable order."""
    proto_root = root / PROTO_DIR
    if not proto_root.is_dir():
        raise CodegenError(f"no {PROTO_DIR}/ directory under {root}")
    return sorted(p.relative_to(proto_root) for p in proto_root.rglob("*.proto"))


def _plugin(name: str) -> str:
    # The plugins are console scripts installed next to the interpreter (the venv's bin/);
    # passing their path explicitly keeps codegen independent of PATH.
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise CodegenError(f"{name} not found; is mypy-protobuf installed in this environment?")
    return found


def generate(root: Path, out: Path) -> None:
    """Compile every .proto under root/proto into out (which must exist)."""
    protos = proto_files(root)
    if not protos:
        raise CodegenError(f"no .proto files under {root / PROTO_DIR}")
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={root / PROTO_DIR}",
        f"--proto_path={well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(p.as_posix() for p in protos),
    ]
    result = subprocess.run(command, cwd=root / PROTO_DIR, capture_output=True, text=True)
    if result.returncode != 0:
        raise CodegenError(f"protoc failed ({result.returncode}):\n{result.stderr}")
    # Packages only at the versioned level; everything above stays a namespace package.
    for proto in protos:
        package_dir = out / proto.parent
        if not _VERSION_DIR.match(package_dir.name):
            raise CodegenError(
                f"{proto}: protos must live in a versioned directory such as .../v1/"
            )
        (package_dir / "__init__.py").touch()
        # PEP 561 marker: type checkers use the mypy-protobuf stubs of these packages.
        (package_dir / "py.typed").touch()


def _is_generated(relative: Path) -> bool:
    if relative.name.endswith(_GENERATED_SUFFIXES):
        return True
    return relative.name in _PACKAGE_FILES and bool(_VERSION_DIR.match(relative.parent.name))


def _generated_files(directory: Path) -> set[Path]:
    if not directory.is_dir():
        return set()
    return {
        p.relative_to(directory)
        for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and _is_generated(p.relative_to(directory))
    }


def compare(fresh: Path, current: Path) -> Drift:
    """Compare freshly generated code with the checked-in tree."""
    fresh_files = _generated_files(fresh)
    current_files = _generated_files(current)
    missing = sorted(fresh_files - current_files)
    extra = sorted(current_files - fresh_files)
    stale = sorted(
        p
        for p in fresh_files & current_files
        if not filecmp.cmp(fresh / p, current / p, shallow=False)
    )
    return Drift(
        stale=tuple(p.as_posix() for p in stale),
        missing=tuple(p.as_posix() for p in missing),
        extra=tuple(p.as_posix() for p in extra),
    )


def check(root: Path = DEFAULT_ROOT) -> Drift:
    """Regenerate into a temporary directory and report how the checked-in code differs."""
    with tempfile.TemporaryDirectory(prefix="cc-codegen-") as tmp:
        generate(root, Path(tmp))
        return compare(Path(tmp), root / OUT_DIR)


def write(root: Path = DEFAULT_ROOT) -> Drift:
    """Regenerate the checked-in code; returns what changed."""
    out = root / OUT_DIR
    with tempfile.TemporaryDirectory(prefix="cc-codegen-") as tmp:
        fresh = Path(tmp)
        generate(root, fresh)
        drift = compare(fresh, out)
        for relative in (*drift.stale, *drift.missing):
            target = out / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(fresh / relative, target)
        for relative in drift.extra:
            (out / relative).unlink()
            _remove_empty_parents(out, (out / relative).parent)
    return drift


def _remove_empty_parents(out: Path, directory: Path) -> None:
    # Directories left behind by a deleted .proto; never the output root itself.
    while directory != out and directory.is_dir():
        if any(p.name != "__pycache__" for p in directory.iterdir()):
            return
        shutil.rmtree(directory)
        directory = directory.parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contactcenter.contracts.codegen",
        description="Generate the Python gRPC stubs from proto/.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write; exit 1 if the checked-in generated code is stale",
    )
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="repository root (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        drift = check(root) if args.check else write(root)
    except CodegenError as error:
        print(f"codegen: {error}", file=sys.stderr)
        return 2
    if args.check:
        if drift.clean:
            print("codegen: generated code is up to date")
            return 0
        print(
            "codegen: generated code is stale; run `python -m contactcenter.contracts.codegen`:\n"
            + drift.describe(),
            file=sys.stderr,
        )
        return 1
    if drift.clean:
        print("codegen: generated code was already up to date")
    else:
        print("codegen: updated\n" + drift.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
