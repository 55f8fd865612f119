"""Where a service's SQL migrations are, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path


def migrations_dir(package_file: str) -> Path:
    """The `migrations` folder of the service whose package holds `package_file` (pass
    `__file__` of a module directly in `contactcenter/<service>/`): next to the package when
    installed from a wheel (hatch force-include), else `services/<service>/migrations`."""
    here = Path(package_file).resolve().parent
    for candidate in (here / "migrations", here.parents[2] / "migrations"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no migrations directory next to {here}")
