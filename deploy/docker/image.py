"""Build step of deploy/docker/Dockerfile (standard library only, runs before uv).

    python image.py services/<dir> /app/service.json

Reads the service's `[tool.contactcenter.service]` table (the same one `make run` reads),
writes what the container needs at run time (module, ports, env prefix) as JSON, and prints
the workspace package to install (`uv sync --package <it>`).
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path


def manifest(service_dir: Path) -> tuple[str, dict[str, object]]:
    pyproject = service_dir / "pyproject.toml"
    if not pyproject.is_file():
        raise SystemExit(f"{pyproject} not found: SERVICE must name a directory under services/")
    data = tomllib.loads(pyproject.read_text())
    table = data.get("tool", {}).get("contactcenter", {}).get("service")
    if not table:
        raise SystemExit(f"{pyproject} has no [tool.contactcenter.service] table")
    name = str(table["name"])
    result: dict[str, object] = {
        "name": name,
        "module": str(table["module"]),
        "grpc_port": int(table["grpc_port"]),
        "http_port": int(table["http_port"]) if "http_port" in table else None,
        "env_prefix": f"CC_{name.upper().replace('-', '_')}_",
    }
    return str(data["project"]["name"]), result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise SystemExit("usage: image.py services/<dir> <manifest.json>")
    package, result = manifest(Path(argv[0]))
    Path(argv[1]).write_text(json.dumps(result, indent=2) + "\n")
    print(package)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
