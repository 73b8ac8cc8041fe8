"""`/accounts`: trading accounts and the sessions of their `live_sim` engine.

Spec: accounts-and-sessions-api; DESIGN.md "/live vs accounts". An account is a named,
cash-only container whose `cash_balance` carries from one day to the next: a session
opens with it and, once settled at the close, carries its closing balance back into it
(the live-trading repository does that in the settling transaction). One actor class
runs a session and a `/live` simulation alike; the order, position, transaction and
history routes of a session are the shared ones (`register_session_routes`).

Decisions where the spec is silent:
- These routes manage `manual` accounts. A `bot` account (made by the bots API) is not
  found here, so its session cannot be traded by hand.
- `engine` defaults to `live_sim`; `starting_capital` is required (whole cents).
  `historical` and the six `broker_*` engines are `409 engine_not_available`; any other
  engine, and a `type` other than `manual`, is `400 invalid_input`.
- `GET /accounts` lists active and archived accounts, oldest first. An archived
  account cannot open a session (`409 account_archived`). A PATCH that names none of
  its fields is 400; one that sets a field to its current value changes nothing and is
  not refused (so re-sending the same `starting_capital` after trading is fine).
- A session's order routes answer `409 session_closed` to a write on a session that is
  not open; their reads (orders, positions, transactions, history) also serve a
  settled, abandoned or failed session, from the database.
- Opening when the account's open session is of an earlier day (not yet settled) is
  `409 session_open`. `DELETE` of an abandoned session is 204 again; of a settled or
  failed session that never traded, `409 session_closed`.
- A session whose supervisor gave up on it shows `status: "failed"`.
"""

from __future__ import annotations

import datetime as dt
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import AsyncIterator
from uuid import UUID

import msgspec
import trio
from msgspec import UNSET, UnsetType
from quart import Response, request

from odted.api.account_fields import BROKER_ENGINES, LIVE_SIM, check_capital, check_name
from odted.api.codec import decode_body, json_response
from odted.api.errors import ApiError
from odted.api.live import current_user, parse_uuid, register_session_routes
from odted.api.routes import Api
from odted.api.services import Services
from odted.domain.ledger import Book, Financials
from odted.domain.money import dollars
from odted.domain.orders import Order
from odted.domain.transactions import Transaction
from odted.runtime.errors import Refusal
from odted.runtime.live import EndSimulation, LiveSim
from odted.runtime.service import LiveService
from odted.store.accounts import AccountRow, AccountStore, Refused, SessionRecord, SessionRow

__all__ = ["register", "Account", "AccountPatch", "AccountSession", "CreateAccount", "OpenSession"]

NOT_YET_AVAILABLE = frozenset({"historical"}) | BROKER_ENGINES
MAX_CAPITAL = Decimal(10_000_000)
DESCRIPTION_MAX = 1000
ACCOUNT_STATUSES = ("active", "archived")

_order_dec = msgspec.json.Decoder(Order)
_tx_dec = msgspec.json.Decoder(Transaction)


# -- wire types ---------------------------------------------------------------------


class CreateAccount(msgspec.Struct, frozen=True, kw_only=True):
    """`POST /accounts`."""

    name: str
    """Required, at most 80 characters, unique among your active accounts."""
    starting_capital: Decimal
    """1000 to 10000000."""
    engine: str = LIVE_SIM
    """Fixed for the account's life: `live_sim` (`historical` and `broker_*` are not available yet)."""
    type: str = "manual"
    """`manual`; bots are made by `POST /bots`."""
    description: str | None = None


class AccountPatch(msgspec.Struct, frozen=True, kw_only=True):
    """`PATCH /accounts/{id}`: only the fields sent are applied."""

    name: str | UnsetType = UNSET
    description: str | None | UnsetType = UNSET
    status: str | UnsetType = UNSET
    """`active` or `archived` (not while a session is open)."""
    starting_capital: Decimal | UnsetType = UNSET
    """Only before the account has traded and with no session open; resets `cash_balance`."""


class Account(msgspec.Struct, frozen=True, kw_only=True):
    """The account object."""

    id: UUID
    name: str
    description: str | None
    engine: str
    type: str
    starting_capital: Decimal
    cash_balance: Decimal
    """The settled carry; never includes unsettled intraday P&L."""
    current_value: Decimal
    """The open session's live net liquidation value, else `cash_balance`."""
    status: str
    created_at: dt.datetime


class OpenSession(msgspec.Struct, frozen=True, kw_only=True):
    """`POST /accounts/{id}/sessions`: `{}` for a `live_sim` account (the date is today)."""

    date: dt.date | None = None


class AccountSession(Financials, frozen=True, kw_only=True, omit_defaults=True):
    """The session object: one trading day of an account, with its financials (marked
    to the latest tick while open) and, once settled, its closing balance."""

    id: UUID
    account_id: UUID
    date: dt.date
    mode: str
    opening_balance: Decimal
    starting_capital: Decimal
    """Mirrors `opening_balance`."""
    status: str
    """`open`, `settled` or `abandoned` (`failed` if settlement could not be completed)."""
    ended: bool
    time: dt.datetime | None
    start_time: dt.datetime
    end_time: dt.datetime
    closing_balance: Decimal | None = None
    settled_at: dt.datetime | None = None


# -- state the routes share -----------------------------------------------------------


class AccountLocks:
    """One lock per account, held from the check to the change whenever the change
    depends on whether the account has an open session (opening or abandoning one,
    archiving, deleting, changing the capital). An entry lives while held or awaited."""

    def __init__(self) -> None:
        self._locks: dict[UUID, tuple[trio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, account_id: UUID) -> AsyncIterator[None]:
        entry = self._locks.get(account_id)
        if entry is None:
            entry = self._locks[account_id] = (trio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[account_id]


class StoredSession:
    """A session without a running actor, read from the database: the attributes the
    shared read routes use (`id`, `orders`, `transactions`, `book`, `tick`)."""

    def __init__(self, record: SessionRecord) -> None:
        self.row = record.session
        self.id = record.session.id
        self.orders = {o.id: o for o in (_order_dec.decode(d) for d in record.orders)}
        self.transactions = [_tx_dec.decode(d) for d in record.transactions]
        self.book = Book.from_transactions(self.id, record.session.opening_balance, self.transactions)
        self.tick = None


# -- validation -----------------------------------------------------------------------


def _description(value: str | None) -> str | None:
    if value is not None and len(value) > DESCRIPTION_MAX:
        raise ApiError.bad_request("invalid_input", f"description must be at most {DESCRIPTION_MAX} characters",
                                   field="description")
    return value


def _engine_and_type(engine: str, type_: str) -> None:
    if type_ == "bot":
        raise ApiError.bad_request("invalid_input", "bot accounts are made by POST /bots", field="type")
    if type_ != "manual":
        raise ApiError.bad_request("invalid_input", "type must be manual", field="type")
    if engine != LIVE_SIM and engine not in NOT_YET_AVAILABLE:
        raise ApiError.bad_request("invalid_input", f"unknown engine {engine!r}; use live_sim", field="engine")


def _refused(why: Refused, what: str = "account") -> ApiError:
    match why:
        case Refused.NOT_FOUND:
            return ApiError.not_found(what)
        case Refused.NAME_TAKEN:
            return ApiError.conflict("name_taken", "you already have an active account with this name", field="name")
        case Refused.SESSION_OPEN:
            return ApiError.conflict("session_open", "the account has a session open; it settles at the close")
        case Refused.CAPITAL_IMMUTABLE:
            return ApiError.conflict("capital_immutable",
                                     "starting_capital cannot change once a live_sim account has traded",
                                     field="starting_capital")
    raise AssertionError(why)


# -- views ----------------------------------------------------------------------------


def _session_object(row_id: UUID, account_id: UUID, date: dt.date, opening: Decimal, status: str,
                    time: dt.datetime | None, start: dt.datetime, end: dt.datetime, fin: Financials,
                    closing: Decimal | None, settled_at: dt.datetime | None) -> AccountSession:
    opening = dollars(opening)
    settled = status == "settled"
    return AccountSession(
        **msgspec.structs.asdict(fin),
        id=row_id, account_id=account_id, date=date, mode="live", opening_balance=opening,
        starting_capital=opening, status=status, ended=settled, time=time, start_time=start, end_time=end,
        closing_balance=dollars(closing) if settled and closing is not None else None,
        settled_at=settled_at if settled else None,
    )


def session_from_actor(actor: LiveSim) -> AccountSession:
    sim = actor.sim
    assert sim is not None and sim.account_id is not None and actor.book is not None
    return _session_object(
        sim.id, sim.account_id, sim.date, sim.starting_capital, sim.status,
        actor.tick.ts if actor.tick is not None else None, sim.start_time, sim.end_time,
        actor.book.financials(), sim.closing_balance, sim.settled_at,
    )


def session_from_row(row: SessionRow, transactions: list[Transaction]) -> AccountSession:
    book = Book.from_transactions(row.id, row.opening_balance, transactions)
    return _session_object(
        row.id, row.account_id, row.date, row.opening_balance, row.status,
        row.settled_at if row.status == "settled" else None, row.start_time, row.end_time,
        book.financials(), row.closing_balance, row.settled_at,
    )


def register(api: Api, services: Services) -> None:
    live: LiveService = services.live
    store = AccountStore(services.db)
    locks = AccountLocks()
    tags = ("accounts",)

    def running(session_id: UUID) -> LiveSim | None:
        actor = live.simulation(session_id)
        if actor is None or actor.sim is None or actor.book is None:
            return None
        return actor

    def account_view(row: AccountRow) -> Account:
        value = row.cash_balance
        if row.open_session_id is not None:
            actor = running(row.open_session_id)
            if actor is not None:
                assert actor.book is not None
                value = actor.book.net_liquidation_value
        return Account(
            id=row.id, name=row.name, description=row.description, engine=row.engine, type=row.type,
            starting_capital=dollars(row.starting_capital), cash_balance=dollars(row.cash_balance),
            current_value=dollars(value), status=row.status, created_at=row.created_at,
        )

    async def views(rows: list[SessionRow]) -> list[AccountSession]:
        """Open sessions from their actors; the others (and an open one whose actor is
        restarting) from the database."""
        actors = {r.id: a for r in rows if r.status == "open" and (a := running(r.id)) is not None}
        stored = await store.transactions_of([r.id for r in rows if r.id not in actors])
        out = []
        for r in rows:
            actor = actors.get(r.id)
            if actor is not None:
                out.append(session_from_actor(actor))
            else:
                out.append(session_from_row(r, [_tx_dec.decode(d) for d in stored[r.id]]))
        return out

    async def view(row: SessionRow) -> AccountSession:
        return (await views([row]))[0]

    async def account_of(user: UUID, account_id: str) -> AccountRow:
        row = await store.get(user, parse_uuid(account_id, "account"))
        if row is None:
            raise ApiError.not_found("account")
        return row

    async def session_of(user: UUID, account_id: str, session_id: str) -> SessionRow:
        aid = parse_uuid(account_id, "account")
        sid = parse_uuid(session_id, "session")
        row = await store.session(user, aid, sid)
        if row is None:
            raise ApiError.not_found("session")
        return row

    # -- accounts -------------------------------------------------------------------

    @api.route("POST", "/accounts", summary="Create an account", request=CreateAccount, response=Account,
               status=201, errors=(400, 403, 409), tags=tags)
    async def create_account() -> Response:
        user = current_user()
        body = await decode_body(CreateAccount)
        name = check_name(body.name)
        description = _description(body.description)
        _engine_and_type(body.engine, body.type)
        capital = check_capital(body.starting_capital, MAX_CAPITAL)
        if body.engine in NOT_YET_AVAILABLE:
            raise ApiError.conflict("engine_not_available", f"the {body.engine} engine is not available yet",
                                    field="engine")
        row = await store.create(user, name=name, description=description, engine=body.engine,
                                 starting_capital=capital)
        if isinstance(row, Refused):
            raise _refused(row)
        return json_response(account_view(row), status=201)

    @api.route("GET", "/accounts", summary="List your accounts (active and archived)", response=list[Account],
               errors=(403,), tags=tags)
    async def list_accounts() -> Response:
        return json_response([account_view(r) for r in await store.list_of(current_user())])

    @api.route("GET", "/accounts/<account_id>", summary="Get one account", response=Account, errors=(404,),
               tags=tags)
    async def get_account(account_id: str) -> Response:
        return json_response(account_view(await account_of(current_user(), account_id)))

    @api.route("PATCH", "/accounts/<account_id>", summary="Rename, describe, archive, or edit starting capital",
               request=AccountPatch, response=Account, errors=(400, 404, 409), tags=tags)
    async def patch_account(account_id: str) -> Response:
        user = current_user()
        aid = parse_uuid(account_id, "account")
        patch = await decode_body(AccountPatch)
        if all(getattr(patch, f) is UNSET for f in patch.__struct_fields__):
            raise ApiError.bad_request("invalid_input", "give any of name, description, status, starting_capital")
        name = UNSET if patch.name is UNSET else check_name(patch.name)
        description = UNSET if patch.description is UNSET else _description(patch.description)
        capital = UNSET if patch.starting_capital is UNSET else check_capital(patch.starting_capital, MAX_CAPITAL)
        if patch.status is not UNSET and patch.status not in ACCOUNT_STATUSES:
            raise ApiError.bad_request("invalid_input", "status must be active or archived", field="status")
        async with locks.hold(aid):
            row = await store.patch(user, aid, name=name, description=description, status=patch.status,
                                    starting_capital=capital)
        if isinstance(row, Refused):
            raise _refused(row)
        return json_response(account_view(row))

    @api.route("DELETE", "/accounts/<account_id>", summary="Delete an account (not while a session is open)",
               status=204, errors=(404, 409), tags=tags)
    async def delete_account(account_id: str) -> Response:
        user = current_user()
        aid = parse_uuid(account_id, "account")
        async with locks.hold(aid):
            refused = await store.delete(user, aid)
        if refused is not None:
            raise _refused(refused)
        return Response(b"", status=204)

    # -- sessions -------------------------------------------------------------------

    sessions = "/accounts/<account_id>/sessions"

    @api.route("GET", sessions, summary="List the account's trading days, newest first",
               response=list[AccountSession], errors=(404,), tags=tags)
    async def list_sessions(account_id: str) -> Response:
        user = current_user()
        account = await account_of(user, account_id)
        return json_response(await views(await store.sessions(user, account.id)))

    @api.route("GET", f"{sessions}/current", summary="The open live session, or null",
               response=AccountSession | None, errors=(404,), tags=tags)
    async def current_session(account_id: str) -> Response:
        user = current_user()
        account = await account_of(user, account_id)
        if account.open_session_id is None:
            return json_response(None)
        row = await store.session(user, account.id, account.open_session_id)
        return json_response(None if row is None else await view(row))

    @api.route("GET", f"{sessions}/head",
               summary="The default landing session: the open one, else the latest settled, or null",
               response=AccountSession | None, errors=(404,), tags=tags)
    async def head_session(account_id: str) -> Response:
        user = current_user()
        account = await account_of(user, account_id)
        rows = await store.sessions(user, account.id)
        head = next((r for r in rows if r.status == "open"), None) or next(
            (r for r in rows if r.status == "settled"), None)
        return json_response(None if head is None else await view(head))

    @api.route("GET", f"{sessions}/<session_id>", summary="Get one session", response=AccountSession,
               errors=(404,), tags=tags)
    async def get_session(account_id: str, session_id: str) -> Response:
        return json_response(await view(await session_of(current_user(), account_id, session_id)))

    @api.route("POST", sessions,
               summary="Open today's live session with the carried cash (201), or return it if open (200)",
               request=OpenSession, response=AccountSession, status=201, other_statuses=(200,), errors=(400, 404, 409),
               tags=tags)
    async def open_session(account_id: str) -> Response:
        user = current_user()
        aid = parse_uuid(account_id, "account")
        body = await decode_body(OpenSession, empty_ok=True)
        async with locks.hold(aid):
            account = await account_of(user, account_id)
            if account.status != "active":
                raise ApiError.conflict("account_archived", "an archived account cannot open a session")
            if account.engine != LIVE_SIM:
                raise ApiError.conflict("engine_not_available", f"the {account.engine} engine is not available yet")
            today = live.clock.today()
            if body.date is not None and body.date != today:
                raise ApiError.bad_request("invalid_input", "a live_sim session is always today's; send {}",
                                           field="date")
            if account.open_session_id is not None:
                row = await store.session(user, aid, account.open_session_id)
                assert row is not None
                if row.date != today:
                    raise ApiError.conflict("session_open",
                                            f"the session of {row.date} is still open; it settles at its close")
                return json_response(await view(row), status=200)
            actor = await live.open_simulation(user, starting_capital=account.cash_balance, description=None,
                                               account_id=aid)
        return json_response(session_from_actor(actor), status=201)

    @api.route("PATCH", f"{sessions}/<session_id>",
               summary="Move a historical session's clock (a live session's clock is the market's: 409)",
               errors=(404, 409), tags=tags)
    async def patch_session(account_id: str, session_id: str) -> Response:
        await session_of(current_user(), account_id, session_id)
        raise ApiError.conflict("live_clock", "a live session's clock is the market's; it cannot be moved")

    @api.route("DELETE", f"{sessions}/<session_id>",
               summary="Abandon a session that has no orders (a traded one settles at the close: 409)",
               status=204, errors=(404, 409), tags=tags)
    async def delete_session(account_id: str, session_id: str) -> Response:
        user = current_user()
        aid = parse_uuid(account_id, "account")
        async with locks.hold(aid):
            row = await session_of(user, account_id, session_id)
            if row.status == "abandoned":
                return Response(b"", status=204)
            if row.traded:
                raise ApiError.conflict("session_traded",
                                        "a session that has traded cannot be deleted; it settles at the close")
            if row.status != "open":
                raise ApiError.conflict("session_closed", f"the session is {row.status}; it cannot be deleted")
            actor = live.simulation(row.id)
            if actor is None:
                raise Refusal(503, "live_trading_unavailable", "the session is restarting; retry shortly")
            await live.ask(actor, EndSimulation(delete=False))
        return Response(b"", status=204)

    async def resolve(account_id: str, session_id: str) -> LiveSim | StoredSession:
        """The session's actor; a session that is not open is read from the database
        for a read and refused (`409 session_closed`) for a write."""
        user = current_user()
        row = await session_of(user, account_id, session_id)
        read = request.method == "GET"
        status = row.status
        if status == "open":
            actor = running(row.id)
            if actor is None and not read:
                raise Refusal(503, "live_trading_unavailable", "the session is restarting; retry shortly")
            if actor is not None:
                if not actor.ended:
                    return actor
                assert actor.sim is not None
                status = actor.sim.status  # it ended since the row was read
        if not read:
            raise ApiError.conflict("session_closed", f"the session is {status}; only an open session takes orders")
        record = await store.record(user, row.account_id, row.id)
        if record is None:
            raise ApiError.not_found("session")
        return StoredSession(record)

    register_session_routes(api, services, f"{sessions}/<session_id>", resolve, tags=tags)
