"""`python -m contactcenter.reporting`: serve until SIGINT/SIGTERM.

python -m contactcenter.reporting asyncapi        the AsyncAPI document (checked in)
python -m contactcenter.reporting rebuild         replay every consumed event into fresh
                                                  read models and swap them in (live)
python -m contactcenter.reporting token TENANT    a development supervisor token and the
                                                  wallboard URL
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from contactcenter.reporting.config import ReportingSettings
from contactcenter.reporting.main import create_app, definition


async def run_rebuild(settings: ReportingSettings) -> int:
    """The rebuild with a rich progress bar (an operator CLI can call the same)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from contactcenter.eventstore import apply_migrations, create_pool
    from contactcenter.reporting.main import reporting_migrations
    from contactcenter.reporting.projections.rebuild import rebuild

    schema = settings.db_schema or "reporting"
    pool = await create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        await apply_migrations(pool, schema, [reporting_migrations()])
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        ) as bar:
            task = bar.add_task("replaying events", total=None)
            result = await rebuild(
                pool, schema, lambda done, total: bar.update(task, completed=done, total=total)
            )
        print(
            f"rebuilt from {result.events} events in {result.seconds:.1f} s "
            f"({result.events_per_s:,.0f} events/s); generation {result.generation} swapped in"
        )
    finally:
        await pool.close()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m contactcenter.reporting")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("asyncapi", help="print the AsyncAPI document")
    rb = sub.add_parser("rebuild", help="rebuild the read models from zero, without downtime")
    rb.add_argument("--database-url", help="default: CC_REPORTING_DATABASE_URL")
    tk = sub.add_parser("token", help="print a development supervisor token")
    tk.add_argument("tenant")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "asyncapi":
        print(definition().asyncapi())
    elif args.command == "rebuild":
        settings = ReportingSettings()
        if args.database_url:
            settings = settings.model_copy(update={"database_url": args.database_url})
        sys.exit(asyncio.run(run_rebuild(settings)))
    elif args.command == "token":
        from contactcenter.grpckit import Role, issue_token

        settings = ReportingSettings()
        token = issue_token(args.tenant, [Role.SUPERVISOR], "wallboard")
        print(token)
        print(f"http://{settings.http_host}:{settings.http_port}/?token={token}")
    else:
        create_app(ReportingSettings()).run()


if __name__ == "__main__":
    main()
