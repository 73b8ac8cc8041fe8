"""`/bots`: bots (a pinned strategy on a `bot`-type `live_sim` account, with a risk and
re-pricing policy).

Spec: bots-api. Routes are thin: the bot itself lives in `odted.store.bots`; its
sessions (`/bots/{id}/sessions…`) are `odted.api.bot_sessions`.

Decisions where the spec is silent:
- The bot object carries the account's `name`, `description`, `engine` (`live_sim`),
  `type` (`bot`), `starting_capital` and `cash_balance` (the carried, compounding cash);
  `status` is `idle` or `archived`; `strategy_id` (the saved-strategy link) and the
  pinned `source_hash`; the risk-policy fields flat, as `POST` takes them; `reprice`;
  `schedule` {`auto_start`}; `runtime_status`; and `active_session` / `last_session`
  as session objects (the latest session, whatever its status, or null).
- `POST /bots`: `name` 1-80 printable characters; `description` at most 1000;
  `starting_capital` 1000 to 1000000000 in dollars and cents; a malformed `strategy_id`
  is `400 invalid_strategy_id`, one that is not a live link of yours `403
  strategy_not_found_or_not_owned`; the six `broker_*` engines `409
  engine_not_available`, any other engine but `live_sim` `400 invalid_input`. A risk
  field out of bounds is `400 invalid_input` naming it (`details.field`, and every one in
  `details.fields`); a bad `reprice` is `400 invalid_reprice` with `details.fields`.
- `PATCH` merges: a risk field or a `reprice` field sent replaces the stored one, the
  others stay (`{"reprice": {"opening": {"max_concession": "0.10"}}}` changes only the
  cap). Archiving (and `DELETE`) while a session is active is `409
  bot_has_active_session`; restoring a bot to `idle` whose name another active bot now
  has is `409 name_taken`. A PATCH that names none of its fields is 400.
- `GET /bots` lists idle and archived bots, oldest first, as an array.
- `GET /bots/{id}/summary` rolls up the finalized sessions (those with a `total_pl`):
  money as decimal strings, `win_rate_pct` with two places, `best_day` / `worst_day`
  with their dates (the earliest on a tie), `sparkline` the cumulative P&L after each
  session, oldest first; with none yet, the counts are 0, `total_pl` "0", `sparkline`
  empty and the per-day figures null.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType
from quart import Response, request

from odted.api.account_fields import BROKER_ENGINES, LIVE_SIM, check_capital, check_name
from odted.api.bot_sessions import SESSIONS_MAX, BotSession, bot_service, session_view
from odted.api.codec import decode_body, json_response
from odted.api.errors import ApiError
from odted.api.live import current_user, parse_uuid
from odted.api.routes import Api
from odted.api.services import Services
from odted.domain.money import CENT, dollars
from odted.domain.reprice import RepricePolicy, policy_errors
from odted.domain.risk import RiskPolicy, risk_errors
from odted.store.bot_sessions import ACTIVE_STATUSES, BotSessionRow
from odted.store.bots import BotRecord, BotStore, Refused, SettledDay

__all__ = ["register", "Bot", "BotDetail", "BotPatch", "BotSummary", "CreateBot", "Schedule"]

MAX_CAPITAL = Decimal(1_000_000_000)
DESCRIPTION_MAX = 1000
BOT_STATUSES = ("idle", "archived")
RISK_FIELDS = tuple(RiskPolicy.__struct_fields__)

_PCT = Decimal("0.01")
_json = msgspec.json.Encoder()
_loose = msgspec.json.Decoder(float_hook=Decimal)
_risk_dec = msgspec.json.Decoder(RiskPolicy)
_reprice_dec = msgspec.json.Decoder(RepricePolicy)


def _absent() -> msgspec.Raw:
    return msgspec.Raw(b"")


# -- wire types ---------------------------------------------------------------------


class Schedule(msgspec.Struct, frozen=True, kw_only=True):
    auto_start: bool = False
    """Start the bot's session at every open."""


class SchedulePatch(msgspec.Struct, frozen=True, kw_only=True):
    auto_start: bool | UnsetType = UNSET


class CreateBot(msgspec.Struct, frozen=True, kw_only=True):
    """`POST /bots`. Risk fields left out take the defaults; so does `reprice`."""

    strategy_id: str
    """Your saved-strategy link id (`/strategies/{id}`); the bot pins the strategy behind it."""
    name: str
    """At most 80 characters, unique among your active bots."""
    starting_capital: Decimal
    """1000 to 1000000000."""
    description: str | None = None
    engine: str = LIVE_SIM
    max_daily_loss_pct: Decimal | UnsetType = UNSET
    """0.0050-0.5000 (default 0.0500)."""
    max_open_positions: int | UnsetType = UNSET
    """1-100 (default 10)."""
    max_open_orders: int | UnsetType = UNSET
    """1-50 (default 10)."""
    data_staleness_threshold_ms: int | UnsetType = UNSET
    """500-10000 (default 3000)."""
    auto_pause_on_error: bool | UnsetType = UNSET
    """Default true."""
    error_budget: int | UnsetType = UNSET
    """0-100 (default 5)."""
    reprice: msgspec.Raw = msgspec.field(default_factory=_absent)
    """Automatic re-pricing: {opening: {enabled, nudge_after_seconds, min_interval_seconds,
    flat_tolerance_ticks, max_concession}, closing: {enabled, nudge_after_seconds,
    min_interval_seconds, flat_tolerance_ticks}}; fields left out take the defaults."""
    schedule: Schedule | UnsetType = UNSET


class BotPatch(msgspec.Struct, frozen=True, kw_only=True):
    """`PATCH /bots/{id}`: only the fields sent are applied; policy changes take effect
    from the next session."""

    name: str | UnsetType = UNSET
    description: str | None | UnsetType = UNSET
    status: str | UnsetType = UNSET
    """`idle` or `archived` (not while a session is active)."""
    max_daily_loss_pct: Decimal | UnsetType = UNSET
    max_open_positions: int | UnsetType = UNSET
    max_open_orders: int | UnsetType = UNSET
    data_staleness_threshold_ms: int | UnsetType = UNSET
    auto_pause_on_error: bool | UnsetType = UNSET
    error_budget: int | UnsetType = UNSET
    reprice: msgspec.Raw = msgspec.field(default_factory=_absent)
    """The re-pricing fields to change (the others stay)."""
    schedule: SchedulePatch | UnsetType = UNSET


class Bot(msgspec.Struct, frozen=True, kw_only=True):
    """The bot object."""

    id: UUID
    """The bot id, which is its account's id."""
    name: str
    description: str | None
    engine: str
    type: str
    status: str
    """`idle` or `archived`."""
    runtime_status: str
    """idle, scheduled, running, halted, killed, completed, failed or archived."""
    strategy_id: UUID
    source_hash: str
    """The pinned strategy."""
    starting_capital: Decimal
    cash_balance: Decimal
    """The carried cash each session opens with."""
    max_daily_loss_pct: Decimal
    max_open_positions: int
    max_open_orders: int
    data_staleness_threshold_ms: int
    auto_pause_on_error: bool
    error_budget: int
    reprice: RepricePolicy
    schedule: Schedule
    active_session: BotSession | None
    last_session: BotSession | None
    created_at: dt.datetime


class BotDetail(msgspec.Struct, frozen=True):
    """`GET /bots/{id}`."""

    bot: Bot
    sessions: list[BotSession]


class BotSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The lifetime roll-up of the finalized sessions."""

    bot_id: UUID
    total_sessions: int
    win_count: int
    loss_count: int
    win_rate_pct: Decimal | None
    total_pl: Decimal
    best_day: Decimal | None
    best_day_date: dt.date | None
    worst_day: Decimal | None
    worst_day_date: dt.date | None
    average_day_pl: Decimal | None
    sparkline: list[Decimal]
    """Cumulative P&L after each session, oldest first."""


# -- validation -----------------------------------------------------------------------


def _description(value: str | None) -> str | None:
    if value is not None and (len(value) > DESCRIPTION_MAX or "\x00" in value):
        raise ApiError.bad_request("invalid_input",
                                   f"description must be at most {DESCRIPTION_MAX} characters, without NUL",
                                   field="description")
    return value


def _risk(base: RiskPolicy, body: CreateBot | BotPatch) -> RiskPolicy:
    given = {f: getattr(body, f) for f in RISK_FIELDS if getattr(body, f) is not UNSET}
    policy = msgspec.structs.replace(base, **given)
    errors = risk_errors(policy)
    if errors:
        text = "; ".join(f"{k} {v}" for k, v in errors.items())
        raise ApiError.bad_request("invalid_input", text, field=next(iter(errors)), fields=errors)
    return policy


def _invalid_reprice(errors: dict[str, str]) -> ApiError:
    text = "; ".join(f"{k} {v}" for k, v in errors.items())
    return ApiError.bad_request("invalid_reprice", text, fields=errors)


def _merge(base: dict[str, Any], patch: Any, at: str, errors: dict[str, str]) -> dict[str, Any]:
    if not isinstance(patch, dict):
        errors[at] = "must be an object"
        return base
    out = dict(base)
    for key, value in patch.items():
        if key not in base:
            errors[f"{at}.{key}"] = ("is not a field: exits are re-priced without a cap"
                                     if key == "max_concession" else "is not a field of the re-pricing policy")
        elif isinstance(base[key], dict):
            out[key] = _merge(base[key], value, f"{at}.{key}", errors)
        else:
            out[key] = value
    return out


def _reprice(base: RepricePolicy, raw: msgspec.Raw) -> RepricePolicy:
    """`base` with the fields of the `reprice` object sent (none sent: `base`)."""
    data = bytes(raw)
    if not data:
        return base
    patch = _loose.decode(data)  # already valid JSON: it came out of the request body
    errors: dict[str, str] = {}
    merged = _merge(msgspec.to_builtins(base), patch, "reprice", errors)
    if errors:
        raise _invalid_reprice(errors)
    try:
        policy = msgspec.convert(merged, RepricePolicy)
    except msgspec.ValidationError as e:
        text, _, where = str(e).partition(" - at `$.")
        raise _invalid_reprice({f"reprice.{where.rstrip('`')}" if where else "reprice": text}) from None
    errors = policy_errors(policy)
    if errors:
        raise _invalid_reprice(errors)
    return policy


def _engine(engine: str) -> None:
    if engine in BROKER_ENGINES:
        raise ApiError.conflict("engine_not_available", f"the {engine} engine is not available yet", field="engine")
    if engine != LIVE_SIM:
        raise ApiError.bad_request("invalid_input", "a bot runs on the live_sim engine", field="engine")


def _refused(why: Refused) -> ApiError:
    match why:
        case Refused.NOT_FOUND:
            return ApiError.not_found("bot")
        case Refused.NAME_TAKEN:
            return ApiError.conflict("name_taken", "you already have an active bot with this name", field="name")
        case Refused.STRATEGY_NOT_OWNED:
            return ApiError(403, "strategy_not_found_or_not_owned",
                            "strategy_id is not one of your saved strategies", {"field": "strategy_id"})
        case Refused.ACTIVE_SESSION:
            return ApiError.conflict("bot_has_active_session",
                                     "the bot has an active session; stop it first (DELETE …/sessions/{id})")
    raise AssertionError(why)


# -- views ----------------------------------------------------------------------------


def _status(rec: BotRecord) -> str:
    return "archived" if rec.status == "archived" else "idle"


def summarize(bot_id: UUID, days: list[SettledDay]) -> BotSummary:
    n = len(days)
    total = sum((d.total_pl for d in days), Decimal(0))
    cumulative, line = Decimal(0), []
    for d in days:
        cumulative += d.total_pl
        line.append(dollars(cumulative))
    best = max(days, key=lambda d: d.total_pl, default=None)
    worst = min(days, key=lambda d: d.total_pl, default=None)
    wins = sum(1 for d in days if d.total_pl > 0)
    return BotSummary(
        bot_id=bot_id, total_sessions=n, win_count=wins, loss_count=sum(1 for d in days if d.total_pl < 0),
        win_rate_pct=dollars((Decimal(wins * 100) / n).quantize(_PCT)) if n else None,
        total_pl=dollars(total),
        best_day=None if best is None else dollars(best.total_pl), best_day_date=None if best is None else best.date,
        worst_day=None if worst is None else dollars(worst.total_pl),
        worst_day_date=None if worst is None else worst.date,
        average_day_pl=dollars((total / n).quantize(CENT)) if n else None,
        sparkline=line,
    )


def register(api: Api, services: Services) -> None:
    store = BotStore(services.db)
    tags = ("bots",)

    def bot_view(rec: BotRecord, active: BotSessionRow | None, last: BotSessionRow | None) -> Bot:
        status = _status(rec)
        risk = _risk_dec.decode(rec.risk)
        return Bot(
            id=rec.id, name=rec.name, description=rec.description, engine=LIVE_SIM, type="bot", status=status,
            runtime_status=bot_service(services).runtime_status(status, last), strategy_id=rec.strategy_link_id,
            source_hash=rec.source_hash, starting_capital=dollars(rec.starting_capital),
            cash_balance=dollars(rec.cash_balance), max_daily_loss_pct=risk.max_daily_loss_pct,
            max_open_positions=risk.max_open_positions, max_open_orders=risk.max_open_orders,
            data_staleness_threshold_ms=risk.data_staleness_threshold_ms,
            auto_pause_on_error=risk.auto_pause_on_error, error_budget=risk.error_budget,
            reprice=_reprice_dec.decode(rec.reprice), schedule=Schedule(auto_start=rec.auto_start),
            active_session=None if active is None else session_view(active),
            last_session=None if last is None else session_view(last), created_at=rec.created_at,
        )

    async def views(recs: list[BotRecord]) -> list[Bot]:
        heads = await store.heads([r.id for r in recs])
        return [bot_view(r, *heads[r.id]) for r in recs]

    async def view(rec: BotRecord) -> Bot:
        return (await views([rec]))[0]

    # -- bots -----------------------------------------------------------------------

    @api.route("POST", "/bots", summary="Create a bot from one of your saved strategies", request=CreateBot,
               response=Bot, status=201, errors=(400, 403, 409), tags=tags)
    async def create_bot() -> Response:
        user = current_user()
        body = await decode_body(CreateBot)
        name = check_name(body.name)
        description = _description(body.description)
        try:
            link_id = UUID(body.strategy_id)
        except ValueError:
            raise ApiError.bad_request("invalid_strategy_id", "strategy_id must be the id of a saved strategy",
                                       field="strategy_id") from None
        capital = check_capital(body.starting_capital, MAX_CAPITAL)
        risk = _risk(RiskPolicy(), body)
        reprice = _reprice(RepricePolicy(), body.reprice)
        _engine(body.engine)
        auto_start = body.schedule.auto_start if body.schedule is not UNSET else False
        rec = await store.create(user, strategy_link_id=link_id, name=name, description=description,
                                 starting_capital=capital, risk=_json.encode(risk).decode(),
                                 reprice=_json.encode(reprice).decode(), auto_start=auto_start)
        if isinstance(rec, Refused):
            raise _refused(rec)
        return json_response(bot_view(rec, None, None), status=201)

    @api.route("GET", "/bots", summary="Your bots, oldest first (optionally those of one saved strategy)",
               response=list[Bot], errors=(403,),
               query=(("strategy_id", str, "only bots made from this saved-strategy link"),), tags=tags)
    async def list_bots() -> Response:
        user = current_user()
        raw = request.args.get("strategy_id")
        if raw is None:
            recs = await store.list_of(user)
        else:
            try:
                recs = await store.list_of(user, UUID(raw))
            except ValueError:
                recs = []  # an unknown link
        return json_response(await views(recs))

    async def bot_of(user: UUID, bot_id: str) -> BotRecord:
        rec = await store.get(user, parse_uuid(bot_id, "bot"))
        if rec is None:
            raise ApiError.not_found("bot")
        return rec

    @api.route("GET", "/bots/<bot_id>", summary="A bot with its sessions (newest first)", response=BotDetail,
               errors=(404,), tags=tags)
    async def get_bot(bot_id: str) -> Response:
        user = current_user()
        rec = await bot_of(user, bot_id)
        rows: list[BotSessionRow] = await bot_service(services).sessions(user, rec.id, limit=SESSIONS_MAX)
        active = next((r for r in rows if r.status in ACTIVE_STATUSES), None)
        last = rows[0] if rows else None
        return json_response(BotDetail(bot_view(rec, active, last), [session_view(r) for r in rows]))

    @api.route("PATCH", "/bots/<bot_id>",
               summary="Rename, describe, archive, schedule, or edit the risk and re-pricing policy (next session)",
               request=BotPatch, response=Bot, errors=(400, 404, 409), tags=tags)
    async def patch_bot(bot_id: str) -> Response:
        user = current_user()
        bid = parse_uuid(bot_id, "bot")
        patch = await decode_body(BotPatch)
        sent = [f for f in patch.__struct_fields__ if f != "reprice" and getattr(patch, f) is not UNSET]
        if not sent and not len(patch.reprice):
            raise ApiError.bad_request("invalid_input", "give any of name, description, status, schedule, reprice"
                                       " or a risk-policy field")
        name = UNSET if patch.name is UNSET else check_name(patch.name)
        description = UNSET if patch.description is UNSET else _description(patch.description)
        status: str | UnsetType = UNSET
        if patch.status is not UNSET:
            if patch.status not in BOT_STATUSES:
                raise ApiError.bad_request("invalid_input", "status must be idle or archived", field="status")
            status = "active" if patch.status == "idle" else "archived"
        policy_changed = len(patch.reprice) > 0 or any(getattr(patch, f) is not UNSET for f in RISK_FIELDS)

        def policy(risk: str, reprice: str) -> tuple[str, str]:
            new_risk = _risk(_risk_dec.decode(risk), patch)
            new_reprice = _reprice(_reprice_dec.decode(reprice), patch.reprice)
            return _json.encode(new_risk).decode(), _json.encode(new_reprice).decode()

        if policy_changed:  # validated before the unit of work too, so a bad one costs no transaction
            current = await bot_of(user, bot_id)
            policy(current.risk, current.reprice)
        rec = await store.patch(user, bid, name=name, description=description, status=status,
                                auto_start=UNSET if patch.schedule is UNSET else patch.schedule.auto_start,
                                policy=policy if policy_changed else None)
        if isinstance(rec, Refused):
            raise _refused(rec)
        return json_response(await view(rec))

    @api.route("DELETE", "/bots/<bot_id>", summary="Delete a bot (not while a session is active)", status=204,
               errors=(404, 409), tags=tags)
    async def delete_bot(bot_id: str) -> Response:
        refused = await store.delete(current_user(), parse_uuid(bot_id, "bot"))
        if refused is not None:
            raise _refused(refused)
        return Response(b"", status=204)

    @api.route("GET", "/bots/<bot_id>/summary", summary="Lifetime performance over the finalized sessions",
               response=BotSummary, errors=(404,), tags=tags)
    async def bot_summary(bot_id: str) -> Response:
        bid = parse_uuid(bot_id, "bot")
        days = await store.settled_days(current_user(), bid)
        if days is None:
            raise ApiError.not_found("bot")
        return json_response(summarize(bid, days))
