"""The command line every service's `python -m contactcenter.<service>` has."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence


def service_main(
    name: str,
    serve: Callable[[], None],
    asyncapi: Callable[[], str],
    argv: Sequence[str] | None = None,
    commands: Mapping[str, Callable[[], int]] | None = None,
) -> None:
    """No argument: `serve()` until SIGINT/SIGTERM. `asyncapi`: print the service's AsyncAPI
    document (checked in as services/<name>/asyncapi.json, compared by a test). `commands`:
    further commands of the service (name -> a function returning the exit status)."""
    args = list(sys.argv[1:] if argv is None else argv)
    extra = dict(commands or {})
    if args == ["asyncapi"]:
        print(asyncapi())
        return
    if len(args) == 1 and args[0] in extra:
        status = extra[args[0]]()
        if status:
            sys.exit(status)
        return
    if args:
        usage = " | ".join(["asyncapi", *extra])
        sys.exit(f"usage: python -m contactcenter.{name} [{usage}]")
    serve()
