"""`python -m contactcenter.simulator`: simulated customers and agents against the running
services. `make run` starts it last, after every service is SERVING.

Where the services listen comes from flags, else from the launcher's environment
(`CC_SIM_<SERVICE>_GRPC`, `CC_SIM_<SERVICE>_HTTP`, `CC_SIM_EMAIL_SMTP`), else the well-known
local ports. Every flag also reads `CC_SIM_<FLAG>` (e.g. `CC_SIM_AGENTS=50`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contactcenter.grpckit import Role, issue_token
from contactcenter.simulator.driver import Endpoints, Simulation
from contactcenter.simulator.model import ArrivalModel, DailyCurve, Roster, SimClock, parse_rates

DEFAULT_RATES = "voice=90,chat=60,email=40,sms=20"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"CC_SIM_{name.upper().replace('-', '_')}", default)


def _say(message: str) -> None:
    print(message, flush=True)


def parse_start(value: str, site_tz: str, today: datetime) -> datetime:
    """`now`, `HH:MM` (today in the site's zone) or an ISO 8601 instant with an offset."""
    if value == "now":
        return today
    tz = ZoneInfo(site_tz)
    try:
        hh, mm = value.split(":")
        local = today.astimezone(tz).replace(hour=int(hh), minute=int(mm), second=0, microsecond=0)
        return local.astimezone(UTC)
    except ValueError:
        pass
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        raise ValueError(f"start {value!r}: give a UTC offset, HH:MM or now")
    return at.astimezone(UTC)


#: How long the wallboard URL the simulator prints keeps working.
WALLBOARD_TOKEN_TTL = timedelta(hours=24)


def wallboard_url(base: str, tenant_id: str) -> str:
    """The reporting service's wallboard page for the simulator's tenant, with a supervisor
    token of that tenant (signed with the development key, as the simulator's own calls)."""
    token = issue_token(tenant_id, [Role.SUPERVISOR], "wallboard", ttl=WALLBOARD_TOKEN_TTL)
    return f"{base.rstrip('/')}/?{urlencode({'token': token})}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m contactcenter.simulator",
        description="Simulated contact-center traffic over the real gRPC APIs.",
    )
    p.add_argument("--tenant", default=_env("tenant", "sim"), help="tenant id (default: sim)")
    p.add_argument(
        "--agents", type=int, default=int(_env("agents", "30") or 30), help="number of agents"
    )
    p.add_argument(
        "--rates",
        default=_env("rates", DEFAULT_RATES),
        help=f"peak arrivals per simulated hour per channel (default: {DEFAULT_RATES})",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=float(_env("speed", "10") or 10),
        help="simulated seconds per wall-clock second (default: 10)",
    )
    p.add_argument(
        "--start",
        default=_env("start", "09:00"),
        help="simulated start: HH:MM today in the site's zone, an ISO instant, or now",
    )
    p.add_argument(
        "--site-tz", default=_env("site_tz", "Europe/Berlin"), help="zone of the daily curve"
    )
    p.add_argument(
        "--curve", choices=("typical", "flat"), default=_env("curve", "typical"), help="daily curve"
    )
    p.add_argument(
        "--schedule",
        choices=("shifts", "always"),
        default=_env("schedule", "shifts"),
        help="agents follow their shifts (default) or are always on",
    )
    p.add_argument("--seed", type=int, default=int(_env("seed", "7") or 7))
    p.add_argument(
        "--duration", type=float, default=None, help="stop after this many wall-clock seconds"
    )
    p.add_argument("--status-every", type=float, default=10.0, help="seconds between status lines")
    p.add_argument("--interactions", default=_env("interactions_grpc", "127.0.0.1:50051"))
    p.add_argument("--routing", default=_env("routing_grpc", "127.0.0.1:50052"))
    p.add_argument(
        "--profiles",
        default=_env("profiles_grpc"),
        help="profiles gRPC address (default: none unless the launcher names it)",
    )
    p.add_argument(
        "--email",
        default=_env("email_grpc"),
        help="email gRPC address: the simulator registers its mailbox there (default: none "
        "unless the launcher names it)",
    )
    p.add_argument(
        "--smtp",
        default=_env("email_smtp", "127.0.0.1:2525"),
        help="the email service's SMTP listener; email traffic runs only while it answers",
    )
    p.add_argument("--mailbox", default=_env("mailbox", "support@sim.example.com"))
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        rates = parse_rates(args.rates)
        ZoneInfo(args.site_tz)
        start = parse_start(args.start, args.site_tz, datetime.now(UTC))
    except (ValueError, ZoneInfoNotFoundError) as exc:
        parser.error(str(exc))
    if args.agents < 0:
        parser.error("--agents must be >= 0")
    if not args.speed > 0:
        parser.error("--speed must be > 0")

    clock = SimClock(sim_start=start, wall_start=time.monotonic(), speed=args.speed)
    roster = Roster.generate(args.agents, random.Random(args.seed))
    if args.schedule == "always":
        roster = roster.always_on()
    curve = DailyCurve.typical() if args.curve == "typical" else DailyCurve.flat()
    arrivals = ArrivalModel(rates, random.Random(args.seed), curve=curve, site_tz=args.site_tz)
    sim = Simulation(
        endpoints=Endpoints(
            interactions=args.interactions,
            routing=args.routing,
            profiles=args.profiles,
            email=args.email,
            smtp=args.smtp or None,
            mailbox=args.mailbox,
        ),
        tenant_id=args.tenant,
        clock=clock,
        arrivals=arrivals,
        roster=roster,
        seed=args.seed,
        status_every_s=args.status_every,
        say=_say,
    )
    _say(
        f"simulator: starting at simulated {start:%Y-%m-%d %H:%M} UTC, x{args.speed:g} speed, "
        f"peak rates per hour {args.rates}"
    )
    if wallboard := _env("reporting_http"):
        url = wallboard_url(wallboard, args.tenant)
        _say(f"simulator: live wallboard of tenant {args.tenant}: {url}")

    async def go() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await sim.run(stop, duration_s=args.duration)
        except Exception as exc:
            _say(f"simulator: stopped by an error: {exc!r}")
            return 1
        return 0

    return asyncio.run(go())


if __name__ == "__main__":
    sys.exit(main())
