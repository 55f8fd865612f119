"""What the deployment tests share: the services of the repository (their
[tool.contactcenter.service] tables, found as `make run` finds them) and their settings classes,
so every check is driven by the tables: a new service fails these tests by name until the
compose file and the chart know it."""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel, SecretStr

from contactcenter.infra.services import ServiceSpec, discover_services
from contactcenter.servicekit import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = discover_services(ROOT)
SHARED_DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
CHART = ROOT / "deploy" / "helm" / "contact-center"
#: Services announced in docker-compose.yml / values.yaml before their code lands.
PENDING_PROFILE = "pending"
#: Variables every service reads without its prefix (observability).
UNPREFIXED_ENV = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_INSECURE"}


def service_dir(spec: ServiceSpec) -> Path:
    for pyproject in (ROOT / "services").glob("*/pyproject.toml"):
        if f'name = "{spec.name}"' in pyproject.read_text():
            return pyproject.parent
    raise AssertionError(f"no services/*/pyproject.toml declares {spec.name}")


def tool(name: str, package: str) -> str:
    """A command-line tool that a dev-group wheel installs into the environment."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: it comes from the {package} wheel (run `make sync`)")
    return found


def settings_class(spec: ServiceSpec) -> type[ServiceSettings]:
    module = importlib.import_module(f"{spec.module}.config")
    classes = [
        c
        for _, c in inspect.getmembers(module, inspect.isclass)
        if issubclass(c, ServiceSettings)
        and c is not ServiceSettings
        and c.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"{module.__name__} should define one ServiceSettings subclass"
    return classes[0]


def _model(annotation: object) -> type[BaseModel] | None:
    for candidate in (annotation, *typing.get_args(annotation)):
        if inspect.isclass(candidate) and issubclass(candidate, BaseModel):
            return candidate
    return None


def unknown_variables(spec: ServiceSpec, names: typing.Iterable[str]) -> list[str]:
    """The variables that the service's settings class does not read (typos, stale names)."""
    cls = settings_class(spec)
    unknown = []
    for name in names:
        if name in UNPREFIXED_ENV:
            continue
        if not name.startswith(spec.env_prefix):
            unknown.append(name)
            continue
        model: type[BaseModel] | None = cls
        for part in name.removeprefix(spec.env_prefix).lower().split("__"):
            if model is None:  # inside a dict-valued setting: any key
                break
            field = model.model_fields.get(part)
            if field is None:
                unknown.append(name)
                break
            model = _model(field.annotation)
    return unknown


def secret_settings(spec: ServiceSpec) -> list[str]:
    """Top-level secret settings of a service (besides the token keys) that have a
    development default: the deployment must set each from a Secret, never leave that default
    in place. An optional secret with no default (an SMTP relay's password) is the operator's
    to give or not."""
    cls = settings_class(spec)
    return [
        f"{spec.env_prefix}{name.upper()}"
        for name, field in cls.model_fields.items()
        if SecretStr in (field.annotation, *typing.get_args(field.annotation))
        and field.default is not None
    ]


def load_settings(
    spec: ServiceSpec, env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> ServiceSettings:
    for name in list(os.environ):
        if name.startswith(spec.env_prefix):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_class(spec)()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`spec`: one run per service of the repository, named after it."""
    if "spec" in metafunc.fixturenames:
        metafunc.parametrize("spec", SERVICES, ids=[s.name for s in SERVICES])


@pytest.fixture(scope="session")
def kit() -> ModuleType:
    """These helpers (test modules cannot import a conftest under --import-mode=importlib)."""
    assert SERVICES, "no service found under services/"
    return sys.modules[__name__]
