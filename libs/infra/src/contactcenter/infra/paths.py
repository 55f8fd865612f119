"""Where the project's ignored state folder is."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from contactcenter.infra.errors import InfraError

#: Below this much free space we refuse to start a server rather than let it die half-way.
MIN_FREE_BYTES = 256 * 1024 * 1024


def project_root() -> Path:
    """The uv workspace root: the nearest parent holding `uv.lock` (cwd first, then this file)."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "uv.lock").is_file() and (candidate / "libs").is_dir():
                return candidate
    return Path.cwd()


def state_dir() -> Path:
    """`CC_STATE_DIR` when set, else `<project>/.state` (git-ignored)."""
    configured = os.environ.get("CC_STATE_DIR")
    path = Path(configured) if configured else project_root() / ".state"
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_free_space(path: Path, what: str, minimum: int = MIN_FREE_BYTES) -> None:
    free = shutil.disk_usage(path).free
    if free < minimum:
        raise InfraError(
            f"cannot start {what}: only {free // (1024 * 1024)} MiB free on the disk holding "
            f"{path} (need at least {minimum // (1024 * 1024)} MiB); free some space or set "
            "CC_STATE_DIR to a folder on another disk"
        )
