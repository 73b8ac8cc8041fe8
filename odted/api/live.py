"""`/live`: the user's manual live simulation, its orders, positions and history.

Spec: live-trading-api, api-walkthrough Part 12. Routes are thin: they decode, find the
user's simulation actor, `ask` it (mutations) or read its committed state (reads), and
encode. Every status and code below is what the spec (or DESIGN.md where it is silent)
says.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
import inspect
from typing import Annotated, Any, Awaitable, Callable
from uuid import UUID

import msgspec
from quart import Response, g, request

from odted.api.codec import decode_body, json_response, raw_json_response
from odted.api.errors import ApiError
from odted.api.routes import Api
from odted.api.services import Services
from odted.domain.ledger import Financials, HistoryRow
from odted.domain.money import dollars
from odted.domain.orders import Order, OrderRequest, ReplaceOrderRequest
from odted.domain.positions import Position
from odted.domain.transactions import Transaction
from odted.runtime.live import CancelOrder, LiveSim, PlaceOrder, ReplaceOrder, Reply, request_hash
from odted.runtime.service import LiveService

__all__ = ["register", "register_session_routes", "Interval", "LiveSimulation", "StartLive", "current_user", "simulation_view"]

_IDEMPOTENCY_KEY_MAX = 255
DESCRIPTION_MAX = 1000

Interval = Annotated[int, msgspec.Meta(ge=1, le=3600)]
"""`?interval=` of the history routes: seconds between samples."""


class StartLive(msgspec.Struct, frozen=True, kw_only=True):
    """`POST /live`: the day's starting capital (1000 to 10000000) and a description (at
    most 1000 characters)."""

    starting_capital: Decimal
    description: str | None = None


class LiveSummary(msgspec.Struct, frozen=True):
    orders: int
    pending_orders: int
    filled_orders: int
    positions: int
    transactions: int


class LiveSimulation(Financials, frozen=True, kw_only=True):
    """The live simulation object: the simulation's fields, its financials marked to the
    latest tick, and a summary."""

    id: UUID
    date: dt.date
    starting_capital: Decimal
    description: str | None
    status: str
    ended: bool
    time: dt.datetime | None
    start_time: dt.datetime
    end_time: dt.datetime
    settled_at: dt.datetime | None = None
    closing_balance: Decimal | None = None
    summary: LiveSummary


def current_user() -> UUID:
    """The authenticated user's id; operator tokens without a user cannot trade (403)."""
    principal = g.principal
    try:
        return UUID(principal.user_id)
    except (AttributeError, ValueError):
        raise ApiError(403, "forbidden", "this token does not belong to a user account") from None


def simulation_view(actor: LiveSim) -> LiveSimulation:
    sim = actor.sim
    assert sim is not None and actor.book is not None
    fin = actor.book.financials()
    orders = actor.orders.values()
    return LiveSimulation(
        **msgspec.structs.asdict(fin),
        id=sim.id,
        date=sim.date,
        starting_capital=dollars(sim.starting_capital),
        description=sim.description,
        status=sim.status,
        ended=sim.status == "settled",
        time=actor.tick.ts if actor.tick is not None else None,
        start_time=sim.start_time,
        end_time=sim.end_time,
        settled_at=sim.settled_at,
        closing_balance=None if sim.closing_balance is None else dollars(sim.closing_balance),
        summary=LiveSummary(
            orders=len(actor.orders),
            pending_orders=sum(1 for o in orders if o.is_pending),
            filled_orders=sum(1 for o in orders if o.status == "filled"),
            positions=len(actor.book.open_positions()),
            transactions=len(actor.transactions),
        ),
    )


def reply_response(reply: Reply) -> Response:
    if reply.status == 204 or not reply.body:
        return Response(b"", status=204)
    headers = {"Idempotent-Replayed": "true"} if reply.replayed else None
    return raw_json_response(reply.body, status=reply.status, headers=headers)


def idempotency_key() -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > _IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise ApiError.bad_request("invalid_idempotency_key",
                                   f"Idempotency-Key must be 1 to {_IDEMPOTENCY_KEY_MAX} printable characters")
    return key


def parse_uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise ApiError.not_found(what) from None


def finite_money(value: Decimal, field: str) -> Decimal:
    if not value.is_finite():
        raise ApiError.bad_request("invalid_input", f"{field} must be a finite decimal", field=field)
    return value


def register(api: Api, services: Services) -> None:
    live: LiveService = services.live
    tags = ("live",)

    @api.route("POST", "/live", summary="Start today's live simulation", request=StartLive,
               response=LiveSimulation, status=201, errors=(400, 403, 409), tags=tags)
    async def start_live() -> Response:
        user = current_user()
        body = await decode_body(StartLive)
        finite_money(body.starting_capital, "starting_capital")
        if body.description is not None and len(body.description) > DESCRIPTION_MAX:
            raise ApiError.bad_request("invalid_input", f"description must be at most {DESCRIPTION_MAX} characters",
                                       field="description")
        actor = await live.open_simulation(user, starting_capital=body.starting_capital,
                                           description=body.description)
        return json_response(simulation_view(actor), status=201)

    @api.route("GET", "/live", summary="Your current live simulation, or null", response=LiveSimulation | None,
               tags=tags)
    async def get_live() -> Response:
        actor = live.live_of(current_user())
        return json_response(None if actor is None else simulation_view(actor))

    @api.route("DELETE", "/live", summary="End your live simulation (deletes it with its orders)", status=204,
               errors=(404,), tags=tags)
    async def end_live() -> Response:
        await live.end_live(current_user())
        return Response(b"", status=204)

    register_session_routes(api, services, "/live", lambda: live.require_live(current_user()), tags=tags)
    if services.ws_hub is not None and services.ws_hub.channel("simulation_events") is None:
        from odted.api.sim_events import SimulationEventsChannel

        services.ws_hub.register_channel("simulation_events", SimulationEventsChannel(live))


Resolver = Callable[..., "LiveSim | Awaitable[LiveSim]"]


async def _resolve(resolve: Resolver, kwargs: dict[str, str]) -> LiveSim:
    got = resolve(**kwargs)
    if inspect.isawaitable(got):
        got = await got
    return got  # type: ignore[return-value]


def register_session_routes(api: Api, services: Services, prefix: str, resolve: Resolver, *,
                            tags: tuple[str, ...], writable: bool = True) -> None:
    """Register the order, position, transaction and history routes of one simulation
    under `prefix` (e.g. `/live`, `/accounts/<account_id>/sessions/<session_id>`).

    `resolve(**path_params)` returns the simulation's actor (or raises a 404/503); it
    must check that the simulation belongs to the requesting user. With `writable`
    false only the reads are registered (bot sessions are traded by their bot).
    """
    live: LiveService = services.live
    path = prefix.replace("<", "{").replace(">", "}")

    def params(kwargs: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in kwargs.items() if k != "order_id"}

    if writable:
        async def place(kwargs: dict[str, str], dry_run: bool) -> Response:
            key = None if dry_run else idempotency_key()
            actor = await _resolve(resolve, params(kwargs))  # a missing simulation is 404 whatever the body
            body = await decode_body(OrderRequest)
            rhash = request_hash("POST", f"{path}/orders", body) if key is not None else ""
            return reply_response(await live.ask(actor, PlaceOrder(body, key, rhash, dry_run=dry_run)))

        @api.route("POST", f"{prefix}/orders", summary="Place an order (Idempotency-Key header recommended)",
                   request=OrderRequest, response=Order, status=201, errors=(400, 404, 409), tags=tags)
        async def place_order(**kwargs: str) -> Response:
            return await place(kwargs, dry_run=False)

        @api.route("POST", f"{prefix}/orders/dry-run", summary="Validate and preview an order without persisting it",
                   request=OrderRequest, response=Order, errors=(400, 404), tags=tags)
        async def dry_run(**kwargs: str) -> Response:
            return await place(kwargs, dry_run=True)

        @api.route("PUT", f"{prefix}/orders", summary="Atomically cancel and replace a pending limit order",
                   request=ReplaceOrderRequest, response=Order, errors=(400, 404, 409), tags=tags)
        async def replace_order(**kwargs: str) -> Response:
            key = idempotency_key()
            actor = await _resolve(resolve, params(kwargs))
            body = await decode_body(ReplaceOrderRequest)
            rhash = request_hash("PUT", f"{path}/orders", body) if key is not None else ""
            return reply_response(await live.ask(actor, ReplaceOrder(body, key, rhash)))

        @api.route("DELETE", f"{prefix}/orders/<order_id>", summary="Cancel a pending order", status=204,
                   errors=(404, 409), tags=tags)
        async def cancel_order(order_id: str, **kwargs: str) -> Response:
            oid = parse_uuid(order_id, "order")
            actor = await _resolve(resolve, params(kwargs))
            await live.ask(actor, CancelOrder(oid))
            return Response(b"", status=204)

    @api.route("GET", f"{prefix}/orders", summary="Orders of the simulation", response=list[Order],
               errors=(404,), tags=tags)
    async def list_orders(**kwargs: str) -> Response:
        actor = await _resolve(resolve, params(kwargs))
        return json_response(list(actor.orders.values()))

    @api.route("GET", f"{prefix}/orders/<order_id>", summary="One order", response=Order, errors=(404,), tags=tags)
    async def get_order(order_id: str, **kwargs: str) -> Response:
        actor = await _resolve(resolve, params(kwargs))
        order = actor.orders.get(parse_uuid(order_id, "order"))
        if order is None:
            raise ApiError.not_found("order")
        return json_response(order)

    @api.route("GET", f"{prefix}/positions", summary="Open positions marked to the latest tick",
               response=list[Position], errors=(404,), tags=tags)
    async def positions(**kwargs: str) -> Response:
        actor = await _resolve(resolve, params(kwargs))
        assert actor.book is not None
        return json_response(actor.book.positions())

    @api.route("GET", f"{prefix}/transactions", summary="Transactions through the latest processed second",
               response=list[Transaction], errors=(404,), tags=tags)
    async def transactions(**kwargs: str) -> Response:
        actor = await _resolve(resolve, params(kwargs))
        return json_response(actor.transactions)

    @api.route("GET", f"{prefix}/history", summary="Per-second P&L history", response=list[HistoryRow],
               errors=(404,), query=(("interval", Interval, "seconds between samples (default 1)"),), tags=tags)
    async def history(**kwargs: str) -> Response:
        actor = await _resolve(resolve, params(kwargs))
        until = actor.tick.ts.replace(microsecond=0) if actor.tick is not None else None
        return raw_json_response(await live.history_json(actor.id, interval=query_interval(), until=until))


def query_interval() -> int:
    raw = request.args.get("interval", "1")
    # ASCII digits only: str.isdigit() is true of "²", which int() refuses, and a 5000-digit
    # string is past int()'s limit
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= 3600:
        raise ApiError.bad_request("invalid_input", "interval must be a whole number of seconds from 1 to 3600",
                                   field="interval")
    return int(raw)
