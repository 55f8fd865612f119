"""The container's entry point: run the service named in service.json (written at build time
by image.py) as `python -m <module>`.

In a container the gRPC server listens on every interface (the service's own default is the
loopback) and on the service's well-known port; the environment may override both.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

MANIFEST = Path(os.environ.get("CC_SERVICE_MANIFEST", Path(__file__).with_name("service.json")))


def main() -> None:
    spec = json.loads(MANIFEST.read_text())
    prefix = spec["env_prefix"]
    os.environ.setdefault(f"{prefix}GRPC_HOST", "0.0.0.0")
    os.environ.setdefault(f"{prefix}GRPC_PORT", str(spec["grpc_port"]))
    if spec.get("http_port"):
        os.environ.setdefault(f"{prefix}HTTP_PORT", str(spec["http_port"]))
    sys.argv = [spec["module"], *sys.argv[1:]]
    runpy.run_module(spec["module"], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
