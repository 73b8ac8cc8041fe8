"""The route table: every route registers here with its wire types, so `/openapi.yaml`
is generated from the same Structs that decode requests and encode responses.

Route modules call `api.route(...)` as a decorator:

    @api.route("GET", "/health", response=Health, auth=False, summary="Liveness")
    async def health() -> Response: ...

`cost` is what a request takes from its rate-limit bucket (`odted.api.ratelimit`): the
user's for a route that takes a token, else the client address's. It defaults to 1 for
routes that take a token and to 0 (free: health, metrics, the OpenAPI document) for
those that do not; a public route that must be limited per address, or a heavier read,
says so: `@api.route("GET", "/market-data/strikes/<day>", ..., cost=5)`.

Every route declares the statuses it answers: `status` (and `other_statuses` answered
with the same response type) and `errors`. The document adds those every route can
answer: 400 (a query parameter the route does not take), 503, 401 with a token required,
429 with a cost, and 413 and 415 (too large; not JSON) with a request body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import msgspec
from quart import Quart

__all__ = ["Api", "RouteInfo", "openapi_document", "to_yaml"]

Handler = Callable[..., Awaitable[Any]]

_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str  # Quart rule syntax: /live/orders/<order_id>
    summary: str
    request: Any = None
    response: Any = None
    status: int = 200
    other_statuses: tuple[int, ...] = ()  # other success statuses, with the same response type
    auth: bool = True  # a token is required
    auth_optional: bool = False  # a token is read when present
    errors: tuple[int, ...] = ()
    query: tuple[tuple[str, Any, str], ...] = ()  # (name, type, description)
    content_type: str = "application/json"
    tags: tuple[str, ...] = ()
    cost: int = 1  # rate-limit credits a request takes; 0: free


@dataclass
class Api:
    """Registers handlers on the Quart app and remembers them for the OpenAPI document."""

    app: Quart
    routes: list[RouteInfo] = field(default_factory=list)

    def route(self, method: str, path: str, *, summary: str, request: Any = None, response: Any = None,
              status: int = 200, other_statuses: tuple[int, ...] = (), auth: bool = True,
              auth_optional: bool = False, errors: tuple[int, ...] = (),
              query: tuple[tuple[str, Any, str], ...] = (), content_type: str = "application/json",
              tags: tuple[str, ...] = (), cost: int | None = None) -> Callable[[Handler], Handler]:
        if cost is None:
            cost = 1 if auth or auth_optional else 0
        info = RouteInfo(method.upper(), path, summary, request=request, response=response, status=status,
                         other_statuses=other_statuses, auth=auth, auth_optional=auth_optional, errors=errors,
                         query=query, content_type=content_type, tags=tags, cost=cost)

        def register(fn: Handler) -> Handler:
            self.routes.append(info)
            endpoint = f"{method.lower()}:{path}"
            self.app.add_url_rule(path, endpoint, fn, methods=[info.method])
            fn.__odted_route__ = info  # type: ignore[attr-defined]
            return fn

        return register


_STATUS_TEXT = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Validation error",
    401: "Missing or invalid auth", 403: "Forbidden", 404: "Not found (or not yours)",
    409: "State conflict", 413: "Body too large", 415: "The body is not JSON", 422: "Outside trading hours",
    429: "Rate limited",
    503: "Briefly unavailable; nothing changed; safe to retry",
}


def openapi_document(routes: list[RouteInfo], *, version: str) -> dict[str, Any]:
    """An OpenAPI 3.1 document for `routes`."""
    types = set()
    for r in routes:
        for t in (r.request, r.response):
            if t is not None:
                types.add(t)
    ordered = sorted(types, key=repr)
    schemas, components = msgspec.json.schema_components(ordered, ref_template="#/components/schemas/{name}")
    by_type = dict(zip(ordered, schemas))

    paths: dict[str, dict[str, Any]] = {}
    for r in sorted(routes, key=lambda r: (r.path, r.method)):
        oa_path = _PARAM.sub(lambda m: "{" + m.group(2) + "}", r.path)
        op: dict[str, Any] = {"summary": r.summary, "operationId": _operation_id(r)}
        if r.tags:
            op["tags"] = list(r.tags)
        params = [
            {"name": m.group(2), "in": "path", "required": True, "schema": {"type": "string"}}
            for m in _PARAM.finditer(r.path)
        ]
        for name, tp, desc in r.query:
            schema = msgspec.json.schema(tp)
            params.append({"name": name, "in": "query", "required": False, "description": desc, "schema": schema})
        if params:
            op["parameters"] = params
        if r.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": by_type[r.request]}},
            }
        responses: dict[str, Any] = {}
        for status in (r.status, *r.other_statuses):
            ok: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "OK")}
            if r.response is not None:
                ok["content"] = {r.content_type: {"schema": by_type[r.response]}}
            responses[str(status)] = ok
        errors = set(r.errors) | {400, 503}  # 400: a query parameter the route does not take, at least
        if r.request is not None:
            errors |= {413, 415}
        if r.auth:
            errors |= {401}
        if r.cost > 0:
            errors |= {429}
            op["x-rate-limit-cost"] = r.cost
        for code in sorted(errors):
            responses[str(code)] = {
                "description": _STATUS_TEXT.get(code, "Error"),
                "content": {
                    "text/plain": {"schema": {"type": "string", "description": "<code>: <message>"}},
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}},
                },
            }
        op["responses"] = responses
        if r.auth:
            op["security"] = [{"token": []}]
        elif r.auth_optional:
            op["security"] = [{"token": []}, {}]
        paths.setdefault(oa_path, {})[r.method.lower()] = op

    components["Error"] = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "details": {"type": "object"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "odted",
            "version": version,
            "description": "Live paper trading and strategy bots for 0DTE SPX index options.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "Authorization",
                          "description": "The bare session token (a `Bearer ` prefix is accepted too)."},
            },
        },
    }


def _operation_id(r: RouteInfo) -> str:
    words = re.sub(r"<(?:\w+:)?(\w+)>", r"by_\1", r.path).strip("/").replace("-", "_").replace("/", "_")
    return f"{r.method.lower()}_{words or 'root'}"


def to_yaml(obj: Any, indent: int = 0) -> str:
    """Emit YAML for JSON-like data (dicts, lists, strings, numbers, booleans, None)."""
    return "".join(_yaml_lines(obj, indent)) + ("" if isinstance(obj, (dict, list)) and obj else "\n")


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return msgspec.json.encode(str(v)).decode()  # a JSON string is a valid YAML scalar


def _yaml_lines(obj: Any, indent: int):
    pad = "  " * indent
    if isinstance(obj, dict):
        if not obj:
            yield "{}"
            return
        for k, v in obj.items():
            key = _scalar(str(k))
            if isinstance(v, (dict, list)) and v:
                yield f"{pad}{key}:\n"
                yield from _yaml_lines(v, indent + 1)
            else:
                yield f"{pad}{key}: {_scalar(v) if not isinstance(v, (dict, list)) else ('{}' if isinstance(v, dict) else '[]')}\n"
    elif isinstance(obj, list):
        if not obj:
            yield "[]"
            return
        for v in obj:
            if isinstance(v, (dict, list)) and v:
                inner = "".join(_yaml_lines(v, indent + 1))
                yield f"{pad}- {inner.lstrip()}"
            else:
                yield f"{pad}- {_scalar(v) if not isinstance(v, (dict, list)) else ('{}' if isinstance(v, dict) else '[]')}\n"
    else:
        yield _scalar(obj)
