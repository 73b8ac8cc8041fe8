"""Operational routes: liveness, readiness, status, metrics and the OpenAPI document."""

from __future__ import annotations

import os
import resource
from datetime import datetime, timezone
from typing import Any

import msgspec
import trio
from quart import Response

from odted.api.codec import decode_body, json_response
from odted.api.routes import Api, openapi_document, to_yaml
from odted.api.services import Services

__all__ = ["register", "Health", "Readiness", "Status"]


class Health(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    reasons: list[str]


class Status(msgspec.Struct, frozen=True):
    version: str
    started_at: datetime
    uptime_seconds: float
    pid: int
    rss_bytes: int
    tasks: int
    database: dict[str, Any]
    sections: dict[str, Any]


def register(api: Api, services: Services) -> None:
    openapi_cache: dict[str, bytes] = {}

    @api.route("GET", "/health", summary="Liveness: the process answers", response=Health, auth=False,
               tags=("system",))
    async def health() -> Response:
        return json_response(Health("ok"))

    @api.route("GET", "/ready", summary="Readiness: the database answers and market data is fresh",
               response=Readiness, auth=False, errors=(503,), tags=("system",))
    async def ready() -> Response:
        reasons: list[str] = []
        if not await services.db.ping():
            reasons.append("database: unreachable")
        for name, check in services.readiness.items():
            reason = await check()
            if reason:
                reasons.append(f"{name}: {reason}")
        return json_response(Readiness(not reasons, reasons), status=200 if not reasons else 503)

    @api.route("GET", "/status", summary="What the daemon is doing", response=Status, auth=False,
               tags=("system",))
    async def status() -> Response:
        now = datetime.now(timezone.utc)
        db = services.db
        stats = trio.lowlevel.current_statistics()
        return json_response(Status(
            version=services.version,
            started_at=services.started_at,
            uptime_seconds=round((now - services.started_at).total_seconds(), 3),
            pid=os.getpid(),
            rss_bytes=_rss_bytes(),
            tasks=stats.tasks_living,
            database={"healthy": db.healthy, "units_run": db.units_run, "units_failed": db.units_failed},
            sections={name: fn() for name, fn in services.status.items()},
        ))

    @api.route("GET", "/metrics", summary="Prometheus metrics", auth=False, content_type="text/plain",
               tags=("system",))
    async def metrics() -> Response:
        return Response(services.metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")

    @api.route("GET", "/openapi.yaml", summary="This API's OpenAPI document", auth=False,
               content_type="application/yaml", tags=("system",))
    async def openapi() -> Response:
        body = openapi_cache.get("yaml")
        if body is None:
            body = openapi_cache["yaml"] = to_yaml(openapi_document(api.routes, version=services.version)).encode()
        return Response(body, content_type="application/yaml; charset=utf-8")

    if services.config.server.echo_route:
        from odted.domain.orders import OrderRequest

        @api.route("POST", "/__echo", summary="Benchmark ceiling: decode an order body and encode it back",
                   request=OrderRequest, response=OrderRequest, tags=("system",))
        async def echo() -> Response:
            return json_response(await decode_body(OrderRequest))

    services.metrics.gauge("odted_process_resident_bytes", "Resident memory of the daemon", fn=_rss_bytes)
    services.metrics.gauge("odted_process_open_fds", "Open file descriptors", fn=_open_fds)
    services.metrics.gauge("odted_trio_tasks", "Living trio tasks",
                           fn=lambda: trio.lowlevel.current_statistics().tasks_living)
    services.metrics.gauge("odted_database_healthy", "1 when the last database call succeeded",
                           fn=lambda: 1.0 if services.db.healthy else 0.0)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1
