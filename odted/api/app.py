"""The Quart app: `create_app(services)` builds it; the daemon serves it with hypercorn.

Middleware here, once for every route: the request id (`X-Request-ID`, echoed when the
client sent one, else generated; it appears in the log lines of the request), auth for
routes that require it, rate limits (`odted.api.ratelimit`, by each route's `cost`), the error shapes of DESIGN.md, and request metrics. A handler
raises `ApiError` to refuse; `DatabaseUnavailable` becomes `503 database_unavailable`;
anything else is a bug: logged with its traceback, answered `500 internal_error`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import trio

from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from odted.api.errors import ApiError, render_error
from odted.api.routes import Api, RouteInfo
from odted.api.services import Services
from odted.logs import request_id
from odted.runtime.errors import Refusal
from odted.store.db import DatabaseUnavailable

__all__ = ["create_app"]

log = logging.getLogger("odted.api")
access = logging.getLogger("odted.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_BODY_WAIT_SECONDS = 5.0  # how long an early answer waits for the rest of its request's body
_FINISH_SECONDS = 10.0  # how long the end of a response may take to send, shielded

_HTTP_CODES = {
    404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type",
    400: "invalid_input",
}


def create_app(services: Services) -> QuartTrio:
    app = QuartTrio("odted")
    app.config["MAX_CONTENT_LENGTH"] = services.config.server.max_body_bytes
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.asgi_app = _whole_requests(app.asgi_app, services.config.server.max_body_bytes)  # type: ignore[method-assign]
    api = Api(app)
    app.extensions["odted"] = services
    app.extensions["odted.api"] = api
    by_endpoint: dict[str, RouteInfo] = {}

    requests_total = services.metrics.counter("odted_http_requests_total", "HTTP requests by route and status")
    latency = services.metrics.histogram("odted_http_request_seconds", "HTTP request latency by route")

    @app.before_request
    async def _begin() -> None:
        rid = request.headers.get("X-Request-ID", "")
        if not _REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex
        g.request_id = rid
        g.token_reset = request_id.set(rid)
        g.t0 = time.perf_counter()
        g.principal = None
        if not by_endpoint:
            for r in api.routes:
                by_endpoint[f"{r.method.lower()}:{r.path}"] = r
        info = by_endpoint.get(request.endpoint or "")
        g.route = info
        if info is not None and (info.auth or info.auth_optional):
            token = _token_from(request.headers.get("Authorization", ""))
            principal = await services.auth.authenticate(token) if token else None
            if principal is None and info.auth:
                services.ratelimits.charge(None, request.remote_addr, 1)  # guessing tokens is not free
                raise ApiError(401, "unauthorized", "a valid token is required in the Authorization header")
            g.principal = principal
        if info is not None:
            services.ratelimits.charge(g.principal, request.remote_addr, info.cost)
            _refuse_unknown_query(info)

    @app.after_request
    async def _finish(response: Response) -> Response:
        rid = getattr(g, "request_id", None)
        if rid:
            response.headers["X-Request-ID"] = rid
        info = getattr(g, "route", None)
        route = info.path if info is not None else "unmatched"
        requests_total.inc(route=route, method=request.method, status=str(response.status_code))
        t0 = getattr(g, "t0", None)
        if t0 is not None:
            elapsed = time.perf_counter() - t0
            latency.observe(elapsed, route=route)
            if access.isEnabledFor(logging.DEBUG):
                access.debug("%s %s %d %.1fms", request.method, request.path, response.status_code,
                             elapsed * 1000, extra={"request_id": rid})
        return response

    @app.teardown_request
    async def _teardown(exc: BaseException | None) -> None:
        tok = getattr(g, "token_reset", None)
        if tok is not None:
            try:
                request_id.reset(tok)
            except ValueError:
                pass

    def _error_response(err: ApiError) -> Response:
        body, ctype = render_error(err, request.headers.get("Accept"))
        return Response(body, status=err.status, content_type=ctype, headers=err.headers)

    @app.errorhandler(ApiError)
    async def _api_error(err: ApiError) -> Response:
        return _error_response(err)

    @app.errorhandler(Refusal)
    async def _refused(err: Refusal) -> Response:
        headers = {"Retry-After": "1"} if err.status == 503 else None
        return _error_response(ApiError(err.status, err.code, err.message, err.details, headers))

    @app.errorhandler(DatabaseUnavailable)
    async def _db_down(err: DatabaseUnavailable) -> Response:
        log.warning("database unavailable: %s", err)
        return _error_response(ApiError.unavailable("database_unavailable", "the database is briefly unavailable; nothing changed, retry"))

    @app.errorhandler(HTTPException)
    async def _http_error(err: HTTPException) -> Response:
        status = err.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = {
            404: "no such route",
            405: f"{request.method} is not allowed on {request.path}",
            413: f"the body is larger than {services.config.server.max_body_bytes} bytes",
        }.get(status, err.description or err.name)
        return _error_response(ApiError(status, code, message))

    @app.errorhandler(Exception)
    async def _bug(err: Exception) -> Response:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return _error_response(ApiError(500, "internal_error", "an internal error occurred; it has been logged"))

    from odted.api import auth, market_data, system, user, ws

    system.register(api, services)
    auth.register(api, services)
    user.register(api, services)
    market_data.register(api, services)
    ws.register(app, services)
    if services.live is not None:
        from odted.api import accounts, bot_sessions, bots, live, strategies

        live.register(api, services)
        accounts.register(api, services)
        strategies.register(api, services)
        bots.register(api, services)
        bot_sessions.register(api, services)
    return app


def _refuse_unknown_query(info: RouteInfo) -> None:
    """400 for a query parameter the route does not take: a misspelt `?flaten=true`
    must not be carried out as if it had not been sent."""
    known = {name for name, _, _ in info.query}
    unknown = [name for name in request.args if name not in known]
    if unknown:
        takes = f"it takes {', '.join(sorted(known))}" if known else "it takes none"
        raise ApiError(400, "invalid_input", f"unknown query parameter {unknown[0][:100]!r} ({takes})",
                       {"field": unknown[0][:100]})


def _whole_requests(asgi_app: Any, max_body_bytes: int) -> Any:
    """Answer an HTTP request only once its body is in, and finish every answer uncancelled.

    hypercorn keeps a connection for the next request only when the request was read to
    its end before the response ended; otherwise it closes the connection. A response
    that does not need the body (a 401, 404, 405 answered before reading it) would then
    cost the client its connection, and one that reuses it at once sees it closed under
    its next request. So the response waits (a few seconds at most) for the rest of the
    body, unless the body is over the size limit (a 413: the connection is closed).

    The last part of every response is sent shielded from cancellation: hypercorn closes
    the connection from within that send when it must, while quart-trio cancels the
    request's tasks as soon as the server reports the request over. Unshielded, the
    cancellation lands inside the close: the socket stays open, takes no other request,
    and the client's next request on it hangs. (hypercorn shields its socket writes.)
    """

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await asgi_app(scope, receive, send)
        body_read = trio.Event()  # or past the limit, or the client gone: no use waiting
        received = 0
        declared = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), b"")
        if declared.isdigit() and (len(declared) > 18 or int(declared) > max_body_bytes):
            body_read.set()

        async def receive_watched() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if not message.get("more_body", False) or received > max_body_bytes:
                    body_read.set()
            else:
                body_read.set()
            return message

        async def send_after_body(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and not body_read.is_set():
                with trio.move_on_after(_BODY_WAIT_SECONDS):
                    await body_read.wait()
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.move_on_after(_FINISH_SECONDS, shield=True):
                    await send(message)
            else:
                await send(message)

        return await asgi_app(scope, receive_watched, send_after_body)

    return app


def _token_from(header: str) -> str:
    header = header.strip()
    if header[:7].lower() == "bearer ":
        header = header[7:].strip()
    return header
