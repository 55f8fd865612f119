"""HTTP: the live wallboard page, its server-sent events, and Prometheus `/metrics`.

- `GET /` the wallboard (static HTML + JS, no build step). It reads `?token=<JWT>` (a
  supervisor/admin/service token; `python -m contactcenter.reporting token <tenant>` prints a
  development one) and opens `GET /api/wallboard/events?token=...`.
- `GET /api/wallboard/events` server-sent events fed by the same change feed as
  WatchWallboard: `snapshot` first, then `update` events with the tiles that changed.
- `GET /metrics` queue gauges per tenant and queue, and the projection's lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from contactcenter.contracts.errors import Unauthenticated
from contactcenter.grpckit import Role, TokenVerifier
from contactcenter.reporting.adapters import proto
from contactcenter.reporting.application.feed import Update, WallboardFeed
from contactcenter.reporting.domain.views import queue_ids, queue_view
from contactcenter.reporting.projections.live import LiveProjection, now_ms, snapshot_of

ALLOWED = frozenset({Role.SUPERVISOR, Role.ADMIN, Role.SERVICE})
KEEPALIVE_S = 15.0


class ReportingCollector(Collector):
    def __init__(self, projection: LiveProjection, feed: WallboardFeed) -> None:
        self._projection = projection
        self._feed = feed

    def collect(self) -> Iterator[Any]:
        p, now = self._projection, now_ms()
        labels = ["tenant", "queue"]
        waiting = GaugeMetricFamily("cc_reporting_queue_waiting", "Contacts waiting", labels=labels)
        longest = GaugeMetricFamily(
            "cc_reporting_queue_longest_wait_seconds", "Longest current wait", labels=labels
        )
        sl = GaugeMetricFamily(
            "cc_reporting_queue_service_level_percent", "Service level today", labels=labels
        )
        abandon = GaugeMetricFamily(
            "cc_reporting_queue_abandon_rate_percent", "Abandon rate today", labels=labels
        )
        available = GaugeMetricFamily(
            "cc_reporting_queue_agents_available", "Agents available", labels=labels
        )
        for tenant_id, t in list(p.state.tenants.items()):
            for q in queue_ids(t):
                v = queue_view(t, q, now)
                waiting.add_metric([tenant_id, q], v.waiting)
                longest.add_metric([tenant_id, q], v.longest_wait_ms / 1000)
                today = v.totals[0]
                if today.service_level is not None:
                    sl.add_metric([tenant_id, q], today.service_level)
                abandon.add_metric([tenant_id, q], today.abandon_rate)
                available.add_metric(
                    [tenant_id, q], sum(n for a, n in v.agents.items() if a.value == "available")
                )
        yield from (waiting, longest, sl, abandon, available)
        lag = GaugeMetricFamily(
            "cc_reporting_projection_lag_seconds",
            "Wall clock minus the time of the latest event applied (when it was applied)",
        )
        lag.add_metric(
            [], max(0.0, (p.last_applied_wall_ms - p.last_event_ms) / 1000) if p.applied else 0.0
        )
        yield lag
        idle = GaugeMetricFamily(
            "cc_reporting_projection_idle_seconds", "Time since the latest event was applied"
        )
        idle.add_metric([], (now - p.last_applied_wall_ms) / 1000 if p.applied else 0.0)
        yield idle
        applied = CounterMetricFamily("cc_reporting_events_applied", "Events folded")
        applied.add_metric([], p.applied)
        yield applied
        subs = GaugeMetricFamily("cc_reporting_wallboard_subscribers", "Live subscribers")
        subs.add_metric([], self._feed.subscribers())
        yield subs


def _page() -> str:
    return (
        resources.files("contactcenter.reporting.adapters")
        .joinpath("static/wallboard.html")
        .read_text(encoding="utf-8")
    )


def _json(update: Update) -> str:
    return json.dumps(
        {
            "queues": [proto.queue_json(v) for v in update.queues.values()],
            "agents": [proto.agent_json(v) for v in update.agents.values()],
            "last_event_id": update.last_event_id,
            "now": now_ms(),
        },
        separators=(",", ":"),
    )


def create_http_app(
    projection: LiveProjection,
    feed: WallboardFeed,
    verifier: TokenVerifier,
    closing: asyncio.Event,
) -> web.Application:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReportingCollector(projection, feed))
    page = _page()

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain")

    async def events(request: web.Request) -> web.StreamResponse:
        try:
            caller = verifier.verify(request.query.get("token", ""))
        except Unauthenticated as exc:
            raise web.HTTPUnauthorized(text=str(exc)) from None
        if not ALLOWED.intersection(caller.roles):
            raise web.HTTPForbidden(text="a supervisor, admin or service token is required")
        tenant_id = caller.tenant_id
        await projection.loaded.wait()
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)

        def snapshot() -> Update:
            return snapshot_of(projection.state.tenants.get(tenant_id), now_ms())

        sub, first = feed.subscribe(tenant_id, snapshot)
        try:
            await response.write(f"event: snapshot\ndata: {_json(first)}\n\n".encode())
            updates = sub.updates().__aiter__()
            while not closing.is_set():
                try:
                    update = await asyncio.wait_for(updates.__anext__(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                except StopAsyncIteration:
                    break
                await response.write(f"event: update\ndata: {_json(update)}\n\n".encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            feed.unsubscribe(sub)
        return response

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/wallboard", index)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/wallboard/events", events)
    return app


class HttpServer:
    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        self._host, self._port = host, port
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        if server is not None and server.sockets:  # type: ignore[attr-defined]
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._runner.cleanup()
