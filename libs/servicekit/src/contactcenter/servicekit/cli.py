"""The command line every service's `python -m contactcenter.<service>` has."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


def service_main(
    name: str,
    serve: Callable[[], None],
    asyncapi: Callable[[], str],
    argv: Sequence[str] | None = None,
) -> None:
    """No argument: `serve()` until SIGINT/SIGTERM. `asyncapi`: print the service's AsyncAPI
    document (checked in as services/<name>/asyncapi.json, compared by a test)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["asyncapi"]:
        print(asyncapi())
        return
    if args:
        sys.exit(f"usage: python -m contactcenter.{name} [asyncapi]")
    serve()
