"""`/strategies`: saved Strategy Builder configurations, content-addressed and shared.

Spec: api-walkthrough Part 13 (what bots need of it: save, list, read, patch, unlink),
bots-api (a bot is created from a saved-strategy link id). A config is validated
(`400 invalid_config` with the `fields` map in `details` and in the message; nothing is
created), normalized and hashed (`odted.domain.strategy`); identical configurations are
one shared, immutable strategy, and the user gets a link to it whose id is the strategy
id of this API.

Decisions where the spec is silent:
- `POST /strategies` answers 201 when it made the user's link (or restored an unlinked
  one, with its old id) and 200 when the link already existed. Re-saving a live link
  applies the `privacy` and `description` sent and keeps the others; a restored link
  takes this save's (private and the generated description unless given).
- `config` in responses is the canonical source, the exact JSON the `source_hash` is
  the SHA-256 of: keys sorted, numbers in their shortest form, entry times sorted,
  `max_entries` present. `POST` it back (clone) and the hash is the same.
- `description` is the user's override when set, else the generated sentence
  (`generated_description` always has the generated one); `PATCH` with
  `"description": null` restores the generated one. At most 1000 characters.
- `GET /strategies` is `{"strategies": [...]}` (the walkthrough reads
  `.strategies[0]`): the user's links, most recently saved first.
- Backtest results and previews come with a later version: every strategy object says
  so with `"results": null` and `"results_status": "not_available"`; nothing is faked.
- A public strategy is readable without a token (and by other users, `is_owner: false`);
  a private one of someone else, or an unlinked one, is 404 as if it did not exist.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from uuid import UUID

import msgspec
from msgspec import UNSET, UnsetType
from quart import Response, g

from odted.api.codec import decode_body, json_response
from odted.api.errors import ApiError
from odted.api.live import current_user, parse_uuid
from odted.api.routes import Api
from odted.api.services import Services
from odted.domain.strategy import InvalidConfig, StrategyConfig, compile_strategy, parse_config
from odted.store.strategies import Saved, StrategyLinkRow, StrategyStore

__all__ = ["register", "SaveStrategy", "StrategyPatch", "Strategy", "StrategyList", "StrategySummary",
           "invalid_config"]

PRIVACIES = ("private", "public")
DESCRIPTION_MAX = 1000
NOT_AVAILABLE = "not_available"


class SaveStrategy(msgspec.Struct, frozen=True, kw_only=True):
    """`POST /strategies`."""

    config: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))
    """The Strategy Builder config: `legs` (direction, type, qty, strike {method, value}),
    `entry` {times, max_entries?}, `exit` {profit_target_pct?, stop_loss_pct?, time?}."""
    privacy: str | UnsetType = UNSET
    """`private` (the default for a new strategy) or `public` (unlisted: readable by link)."""
    description: str | None | UnsetType = UNSET
    """Your description, instead of the generated one."""


class StrategyPatch(msgspec.Struct, frozen=True, kw_only=True):
    """`PATCH /strategies/{id}`: only your metadata; the logic is immutable."""

    description: str | None | UnsetType = UNSET
    """Your description; null restores the generated one."""
    privacy: str | UnsetType = UNSET


class StrategySummary(msgspec.Struct, frozen=True, kw_only=True):
    """The config at a glance."""

    legs: int
    contracts: int
    """Contracts per entry, all legs together."""
    option_types: list[str]
    strike_methods: list[str]
    entry_times: list[str]
    max_entries: int
    profit_target_pct: Decimal | None
    stop_loss_pct: Decimal | None
    exit_time: str | None
    """None: held to expiration (the close)."""


class Strategy(msgspec.Struct, frozen=True, kw_only=True):
    """A saved strategy: your link to a shared, immutable strategy."""

    id: UUID
    """The link id: the strategy id of this API (a bot's `strategy_id`)."""
    source_hash: str
    """SHA-256 of the canonical source: identical configurations share it."""
    config: msgspec.Raw
    """The canonical source (the normalized config the hash is of)."""
    description: str
    generated_description: str
    summary: StrategySummary
    privacy: str
    is_owner: bool
    created_at: dt.datetime
    results: None = None
    """Backtest results are not computed by this version of odted."""
    results_status: str = NOT_AVAILABLE


class StrategyList(msgspec.Struct, frozen=True):
    strategies: list[Strategy]


def invalid_config(found: InvalidConfig) -> ApiError:
    """`400 invalid_config` naming every field (message and `details.fields`)."""
    text = "; ".join(f"{k} {v}" for k, v in found.fields.items())
    return ApiError.bad_request("invalid_config", text, fields=found.fields)


def _summary(config: StrategyConfig) -> StrategySummary:
    legs = config.legs
    return StrategySummary(
        legs=len(legs),
        contracts=sum(leg.qty for leg in legs),
        option_types=sorted({leg.type for leg in legs}),
        strike_methods=sorted({leg.strike.method for leg in legs}),
        entry_times=list(config.entry.times),
        max_entries=config.entry.max_entries or len(config.entry.times),
        profit_target_pct=config.exit.profit_target_pct,
        stop_loss_pct=config.exit.stop_loss_pct,
        exit_time=config.exit.time,
    )


def strategy_view(row: StrategyLinkRow, viewer: UUID | None) -> Strategy:
    config = parse_config(row.source)
    if isinstance(config, InvalidConfig):  # stored sources were validated: corrupt data
        raise AssertionError(f"stored strategy {row.source_hash} does not parse: {config}")
    return Strategy(
        id=row.id, source_hash=row.source_hash, config=msgspec.Raw(row.source.encode()),
        description=row.description if row.description is not None else row.generated_description,
        generated_description=row.generated_description, summary=_summary(config), privacy=row.privacy,
        is_owner=viewer == row.user_id, created_at=row.created_at,
    )


def _privacy(value: str | UnsetType) -> str | UnsetType:
    if value is not UNSET and value not in PRIVACIES:
        raise ApiError.bad_request("invalid_input", "privacy must be private or public", field="privacy")
    return value


def _description(value: str | None | UnsetType) -> str | None | UnsetType:
    if isinstance(value, str):
        value = value.strip() or None
        if value is not None and (len(value) > DESCRIPTION_MAX or "\x00" in value):
            raise ApiError.bad_request("invalid_input",
                                       f"description must be at most {DESCRIPTION_MAX} characters, without NUL",
                                       field="description")
    return value


def _viewer() -> UUID | None:
    """The reader of a route whose token is optional: a user, or None."""
    principal = g.principal
    if principal is None:
        return None
    try:
        return UUID(principal.user_id)
    except ValueError:
        return None


def register(api: Api, services: Services) -> None:
    store = StrategyStore(services.db)
    tags = ("strategies",)

    @api.route("POST", "/strategies",
               summary="Save a Strategy Builder config (201; 200 when you had already saved it)",
               request=SaveStrategy, response=Strategy, status=201, other_statuses=(200,), errors=(400, 403),
               tags=tags)
    async def save_strategy() -> Response:
        user = current_user()
        body = await decode_body(SaveStrategy)
        privacy = _privacy(body.privacy)
        description = _description(body.description)
        config = parse_config(bytes(body.config))
        if isinstance(config, InvalidConfig):
            raise invalid_config(config)
        compiled = compile_strategy(config)
        row, saved = await store.save(user, source_hash=compiled.source_hash, source=compiled.source.decode(),
                                      generated_description=compiled.description, privacy=privacy,
                                      description=description)
        return json_response(strategy_view(row, user), status=200 if saved is Saved.EXISTING else 201)

    @api.route("GET", "/strategies", summary="Your saved strategies, most recently saved first",
               response=StrategyList, errors=(403,), tags=tags)
    async def list_strategies() -> Response:
        user = current_user()
        return json_response(StrategyList([strategy_view(r, user) for r in await store.list_of(user)]))

    @api.route("GET", "/strategies/<strategy_id>",
               summary="One strategy: yours, or a public one (no token needed for a public one)",
               response=Strategy, auth=False, auth_optional=True, errors=(404,), tags=tags)
    async def get_strategy(strategy_id: str) -> Response:
        viewer = _viewer()
        row = await store.get(parse_uuid(strategy_id, "strategy"))
        if row is None or (row.privacy != "public" and row.user_id != viewer):
            raise ApiError.not_found("strategy")
        return json_response(strategy_view(row, viewer))

    @api.route("PATCH", "/strategies/<strategy_id>", summary="Change your description or the privacy",
               request=StrategyPatch, response=Strategy, errors=(400, 404), tags=tags)
    async def patch_strategy(strategy_id: str) -> Response:
        user = current_user()
        link_id = parse_uuid(strategy_id, "strategy")
        patch = await decode_body(StrategyPatch)
        if patch.description is UNSET and patch.privacy is UNSET:
            raise ApiError.bad_request("invalid_input", "give description or privacy (the logic is immutable)")
        row = await store.patch(user, link_id, description=_description(patch.description),
                                privacy=_privacy(patch.privacy))
        if row is None:
            raise ApiError.not_found("strategy")
        return json_response(strategy_view(row, user))

    @api.route("DELETE", "/strategies/<strategy_id>",
               summary="Remove a strategy from your list (saving it again restores the same id)",
               status=204, errors=(404,), tags=tags)
    async def delete_strategy(strategy_id: str) -> Response:
        user = current_user()
        if not await store.unlink(user, parse_uuid(strategy_id, "strategy")):
            raise ApiError.not_found("strategy")
        return Response(b"", status=204)
