"""The Helm chart, offline: Helm's own lint (strict) and render (the helm-python-sdk wheel,
Helm's Go SDK), every object validated against the Kubernetes JSON schemas
(kubernetes-validate, strict), and checked against the services' tables and settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from contactcenter.infra.services import ServiceSpec

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "contact-center"
VALUE_SETS = sorted((CHART / "ci").glob("*-values.yaml"))
#: The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas.
KUBE_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]
WARNING = 2  # Helm's lint severities: 1 info, 2 warning, 3 error
RELEASE = "cc"


def load_values(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return values


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(str(CHART)) as chart:
        manifests = chart.render(values, name=RELEASE, namespace="contact-center")
    objects = []
    for template, text in manifests.items():
        if template.endswith("NOTES.txt"):
            continue
        objects += [o for o in yaml.safe_load_all(text) if o]
    return objects


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.fixture(scope="module", params=VALUE_SETS, ids=lambda p: p.stem)
def value_set(request: pytest.FixtureRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    values = load_values(request.param)
    return values, render(values)


@pytest.fixture(scope="module")
def minimal() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    values = load_values(CHART / "ci" / "minimal-values.yaml")
    return values, render(values)


@pytest.mark.parametrize("path", VALUE_SETS, ids=lambda p: p.stem)
def test_lint_is_clean_in_strict_mode(path: Path) -> None:
    report = helm.lint(str(CHART), load_values(path), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= WARNING] == []


def test_every_object_is_valid_kubernetes(
    value_set: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, objects = value_set
    assert objects
    for version in KUBE_VERSIONS:
        for obj in objects:
            if obj["apiVersion"].startswith("monitoring.coreos.com/"):
                continue  # a CRD: not in the Kubernetes schemas (checked below)
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in getattr(exc, "absolute_path", []))
                what = getattr(exc, "message", str(exc)[:500])
                pytest.fail(
                    f"{obj['kind']} {obj['metadata']['name']} (Kubernetes {version}): "
                    f"{what} at {where or '/'}"
                )


def test_service_monitors_scrape_a_declared_port(
    value_set: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, objects = value_set
    monitors = of_kind(objects, "ServiceMonitor")
    if not values.get("serviceMonitor", {}).get("enabled"):
        assert monitors == {}
        return
    services = of_kind(objects, "Service")
    for name, monitor in monitors.items():
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        ports = {p["name"] for p in services[name]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports and endpoint["path"].startswith("/")
        assert monitor["spec"]["selector"]["matchLabels"] == (services[name]["spec"]["selector"])


def test_every_service_has_a_values_entry(spec: ServiceSpec) -> None:
    defaults = load_values(CHART / "values.yaml")
    entry = defaults["services"].get(spec.name)
    assert entry is not None, (
        f"deploy/helm/contact-center/values.yaml has no services.{spec.name} entry"
    )
    assert entry.get("enabled", defaults["serviceDefaults"]["enabled"]), (
        f"services.{spec.name} is disabled in values.yaml: enable it now that it is here"
    )
    assert entry["grpcPort"] == spec.grpc_port
    assert entry.get("httpPort") == spec.http_port


def test_values_entries_are_services_of_the_repository(kit: ModuleType) -> None:
    defaults = load_values(CHART / "values.yaml")
    known = {s.name for s in kit.SERVICES}
    for name, entry in defaults["services"].items():
        if name not in known:
            assert entry.get("enabled") is False, (
                f"services.{name} is enabled but services/ has no such service"
            )


def _env(container: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, str]:
    """The container's environment, with secretKeyRefs resolved from the rendered Secrets."""
    secrets = of_kind(objects, "Secret")
    env = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]["secretKeyRef"]
        data = secrets[ref["name"]]["stringData"]
        if ref["key"] in data:
            env[var["name"]] = data[ref["key"]]
        else:
            assert ref.get("optional"), f"{var['name']}: {ref['name']} has no {ref['key']}"
    return env


def test_every_service_is_deployed_hardened_and_probed(
    kit: ModuleType,
    spec: ServiceSpec,
    value_set: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    values, objects = value_set
    name = f"{RELEASE}-{spec.name}"
    deployment = of_kind(objects, "Deployment").get(name)
    assert deployment is not None, f"no Deployment {name}"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert container["resources"]["requests"] and container["resources"]["limits"]

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == spec.grpc_port
    if spec.http_port:
        assert ports["http"] == spec.http_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == spec.grpc_port, probe

    service = of_kind(objects, "Service")[name]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["grpc"] == spec.grpc_port
    autoscaled = name in of_kind(objects, "HorizontalPodAutoscaler")
    assert autoscaled == ("replicas" not in deployment["spec"])
    if values.get("serviceDefaults", {}).get("autoscaling", {}).get("enabled"):
        hpa = of_kind(objects, "HorizontalPodAutoscaler")[name]
        assert hpa["spec"]["scaleTargetRef"]["name"] == name
        assert name in of_kind(objects, "PodDisruptionBudget")
    if values.get("networkPolicy", {}).get("enabled", True):
        policy = of_kind(objects, "NetworkPolicy")[name]
        assert policy["spec"]["podSelector"]["matchLabels"] == service["spec"]["selector"]


def test_every_service_gets_exactly_its_settings(
    kit: ModuleType,
    spec: ServiceSpec,
    minimal: tuple[dict[str, Any], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values, objects = minimal
    (container,) = of_kind(objects, "Deployment")[f"{RELEASE}-{spec.name}"]["spec"]["template"][
        "spec"
    ]["containers"]
    names = [v["name"] for v in container["env"]]
    assert kit.unknown_variables(spec, names) == [], "not read by the service's settings"
    from_secrets = {v["name"] for v in container["env"] if "valueFrom" in v}
    missing = [n for n in kit.secret_settings(spec) if n not in from_secrets]
    assert missing == [], f"secret settings not taken from a Secret: {missing}"
    assert f"{spec.env_prefix}DATABASE_URL" in from_secrets

    settings = kit.load_settings(spec, _env(container, objects), monkeypatch)
    assert settings.database_url == values["database"]["url"]
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.grpc_host == "0.0.0.0"
    assert settings.grpc_port == spec.grpc_port
    assert settings.auth.signing_key is not None
    assert settings.auth.signing_key.get_secret_value() == values["auth"]["signingKey"]
    assert not settings.auth.uses_dev_key


def test_rotation_keys_reach_the_services(kit: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    values = load_values(CHART / "ci" / "all-services-values.yaml")
    objects = render(values)
    spec = kit.SERVICES[0]
    (container,) = of_kind(objects, "Deployment")[f"{RELEASE}-{spec.name}"]["spec"]["template"][
        "spec"
    ]["containers"]
    settings = kit.load_settings(spec, _env(container, objects), monkeypatch)
    assert {k: v.get_secret_value() for k, v in settings.auth.signing_keys.items()} == (
        values["auth"]["signingKeys"]
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"database": {"url": ""}}, "database.url (or database.existingSecret) is required"),
        ({"auth": {"signingKey": ""}}, "auth.signingKey (or auth.existingSecret) is required"),
        ({"auth": {"signingKey": "short"}}, "auth.signingKey needs at least 32 bytes"),
        ({"serviceKeys": {"PROFILES_MASTER_KEY": ""}}, "serviceKeys.PROFILES_MASTER_KEY"),
    ],
    ids=["database", "signing-key", "short-key", "service-key"],
)
def test_missing_secrets_are_refused_by_name(change: dict[str, Any], message: str) -> None:
    values = load_values(CHART / "ci" / "minimal-values.yaml")
    for key, value in change.items():
        values[key] = {**values.get(key, {}), **value}
    with pytest.raises(helm.HelmError, match=re.escape(message)):
        render(values)


def test_default_values_need_the_database_and_keys() -> None:
    with pytest.raises(helm.HelmError, match=r"database\.url"):
        render({})


def test_notes_name_every_enabled_service(minimal: tuple[dict[str, Any], Any]) -> None:
    values, _ = minimal
    with helm.Chart.load(str(CHART)) as chart:
        notes = next(
            text
            for template, text in chart.render(values, name=RELEASE).items()
            if template.endswith("NOTES.txt")
        )
    assert json.dumps(notes)  # text, rendered without error
    for name in ("routing", "interactions", "profiles"):
        assert f"{RELEASE}-{name}:" in notes
