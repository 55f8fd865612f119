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
    """The rebuild with a rich progress bar (`ccctl rebuild` runs the same)."""
    from contactcenter.reporting.projections.rebuild import rebuild_with_progress, summary

    result = await rebuild_with_progress(settings.database_url, settings.db_schema or "reporting")
    print(summary(result))
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
        from datetime import timedelta

        from contactcenter.grpckit import Role, issue_token

        settings = ReportingSettings()
        token = issue_token(args.tenant, [Role.SUPERVISOR], "wallboard", ttl=timedelta(hours=24))
        print(token)
        print(f"http://{settings.http_host}:{settings.http_port}/?token={token}")
    else:
        create_app(ReportingSettings()).run()


if __name__ == "__main__":
    main()
