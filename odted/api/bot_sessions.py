"""`/bots/{id}/sessions`: a bot's trading days, started, stopped and read.

Spec: bots-api. Routes are thin: a bot's sessions are run by the runtime's `BotService`
(`services.bots`), which these routes call for every session command and read; the bot
itself is `odted.api.bots`.

Decisions where the spec is silent:
- A session object carries `session_id` (equal to `id`, what `POST` is read for),
  `simulation_id` (its live simulation: subscribe to it on `/__ws`), the frozen `risk`
  and `reprice`, and the P&L roll-up, null until the session finalizes.
- `POST …/cancel-all-orders` answers 202 with the session object. `DELETE
  …/sessions/{sid}` takes `?flatten=true|false` (default false) and answers 202 with
  the session, `status: "killing"`.
- The per-second history of a session is at `…/financials` (spec) and at `…/history`
  (the shared session routes'); both take `?interval=`; its orders, positions and
  transactions are the shared session routes' reads (a bot session is traded by its bot).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
from quart import Response, request

from odted.api.codec import decode_body, json_response, raw_json_response
from odted.api.errors import ApiError
from odted.api.live import Interval, current_user, parse_uuid, query_interval, register_session_routes
from odted.api.routes import Api
from odted.api.services import Services
from odted.domain.ledger import HistoryRow
from odted.domain.money import dollars
from odted.domain.reprice import RepricePolicy
from odted.domain.risk import RiskPolicy
from odted.runtime.bot import DecisionEntry
from odted.runtime.errors import Refusal
from odted.store.bot_sessions import BotSessionRow

__all__ = ["register", "BotSession", "StartSession", "SESSIONS_MAX", "bot_service", "session_view"]

SESSIONS_MAX = 90
"""The most sessions a read lists (newest first)."""

_risk_dec = msgspec.json.Decoder(RiskPolicy)
_reprice_dec = msgspec.json.Decoder(RepricePolicy)


# -- wire types ---------------------------------------------------------------------


class StartSession(msgspec.Struct, frozen=True):
    """`POST /bots/{id}/sessions` takes no body (an empty one or `{}`)."""


class BotSession(msgspec.Struct, frozen=True, kw_only=True):
    """One trading day of a bot."""

    id: UUID
    session_id: UUID
    bot_id: UUID
    simulation_id: UUID | None
    """The session's live simulation (`live_simulation_id` on `/__ws`), once registered."""
    date: dt.date
    status: str
    """scheduled, registering, waiting_for_data, running, settling, killing; completed, halted, killed, failed."""
    halt_reason: str | None
    error_count: int
    opening_balance: Decimal
    source_hash: str
    risk: RiskPolicy
    """The policy frozen at the session's start."""
    reprice: RepricePolicy
    flatten_on_kill: bool
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    final_nlv: Decimal | None
    realized_pl: Decimal | None
    total_pl: Decimal | None
    fees: Decimal | None
    max_intraday_dd: Decimal | None
    order_count: int | None
    fill_count: int | None


# -- views ----------------------------------------------------------------------------


def _money(x: Decimal | None) -> Decimal | None:
    return None if x is None else dollars(x)


def session_view(row: BotSessionRow) -> BotSession:
    return BotSession(
        id=row.id, session_id=row.id, bot_id=row.bot_id, simulation_id=row.simulation_id, date=row.date,
        status=row.status, halt_reason=row.halt_reason, error_count=row.error_count,
        opening_balance=dollars(row.opening_balance), source_hash=row.source_hash,
        risk=_risk_dec.decode(row.risk), reprice=_reprice_dec.decode(row.reprice),
        flatten_on_kill=row.flatten_on_kill, created_at=row.created_at, started_at=row.started_at,
        ended_at=row.ended_at, final_nlv=_money(row.final_nlv), realized_pl=_money(row.realized_pl),
        total_pl=_money(row.total_pl), fees=_money(row.fees), max_intraday_dd=_money(row.max_intraday_dd),
        order_count=row.order_count, fill_count=row.fill_count,
    )


def bot_service(services: Services) -> Any:
    """The runtime's `BotService` (`503 live_trading_unavailable` when bots are not
    running on this daemon)."""
    if services.bots is None:
        raise Refusal(503, "live_trading_unavailable", "bots are not running on this daemon")
    return services.bots


def _flatten() -> bool:
    raw = request.args.get("flatten", "false").strip().lower()
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0", ""):
        return False
    raise ApiError.bad_request("invalid_input", "flatten must be true or false", field="flatten")


def _ids(bot_id: str, session_id: str) -> tuple[UUID, UUID]:
    return parse_uuid(bot_id, "bot"), parse_uuid(session_id, "session")


def register(api: Api, services: Services) -> None:
    tags = ("bots",)
    sessions = "/bots/<bot_id>/sessions"
    one = f"{sessions}/<session_id>"

    def runtime() -> Any:
        return bot_service(services)

    @api.route("POST", sessions, summary="Start today's session (no body)", response=BotSession, status=201,
               errors=(400, 404, 409, 413, 415, 422), tags=tags)
    async def start_session(bot_id: str) -> Response:
        user = current_user()
        bid = parse_uuid(bot_id, "bot")
        await decode_body(StartSession, empty_ok=True)
        row = await runtime().start_session(user, bid)
        return json_response(session_view(row), status=201)

    @api.route("GET", sessions, summary=f"The bot's sessions, newest first (at most {SESSIONS_MAX})",
               response=list[BotSession], errors=(404,), tags=tags)
    async def list_sessions(bot_id: str) -> Response:
        rows = await runtime().sessions(current_user(), parse_uuid(bot_id, "bot"), limit=SESSIONS_MAX)
        return json_response([session_view(r) for r in rows])

    @api.route("GET", one, summary="One session", response=BotSession, errors=(404,), tags=tags)
    async def get_session(bot_id: str, session_id: str) -> Response:
        return json_response(session_view(await runtime().session(current_user(), *_ids(bot_id, session_id))))

    @api.route("DELETE", one,
               summary="Stop a session: cancel its orders and stop acting (?flatten=true closes positions first)",
               response=BotSession, status=202, errors=(400, 404, 409),
               query=(("flatten", bool, "close every position at market first (default false)"),), tags=tags)
    async def kill_session(bot_id: str, session_id: str) -> Response:
        flatten = _flatten()
        row = await runtime().kill(current_user(), *_ids(bot_id, session_id), flatten=flatten)
        return json_response(session_view(row), status=202)

    @api.route("POST", f"{one}/cancel-all-orders", summary="Cancel the session's open orders and keep running",
               response=BotSession, status=202, errors=(404, 409), tags=tags)
    async def cancel_all(bot_id: str, session_id: str) -> Response:
        user = current_user()
        bid, sid = _ids(bot_id, session_id)
        bots = runtime()
        await bots.cancel_all(user, bid, sid)
        return json_response(session_view(await bots.session(user, bid, sid)), status=202)

    @api.route("GET", f"{one}/decision-log", summary="The strategy's decision log, in emission order",
               response=list[DecisionEntry], errors=(404,), tags=tags)
    async def decision_log(bot_id: str, session_id: str) -> Response:
        return raw_json_response(await runtime().decision_log(current_user(), *_ids(bot_id, session_id)))

    async def resolve(bot_id: str, session_id: str) -> Any:
        return await runtime().view(current_user(), *_ids(bot_id, session_id))

    @api.route("GET", f"{one}/financials", summary="Per-second financial history (the chart line)",
               response=list[HistoryRow], errors=(400, 404),
               query=(("interval", Interval, "seconds between samples (default 1)"),), tags=tags)
    async def financials(bot_id: str, session_id: str) -> Response:
        interval = query_interval()
        actor = await resolve(bot_id, session_id)
        until = actor.tick.ts.replace(microsecond=0) if actor.tick is not None else None
        return raw_json_response(await services.live.history_json(actor.id, interval=interval, until=until))

    register_session_routes(api, services, one, resolve, tags=tags, writable=False)
