"""Bots in PostgreSQL: a `bot`-type `live_sim` row of `accounts` (its id is the bot id)
plus its row of `bots` (the pinned strategy, the risk and re-pricing policy, the
schedule). Bot sessions are written by the runtime (`odted.store.bot_sessions`); this
repository only reads them, for the bot views and the lifetime summary.

Changes that depend on whether a session is active lock the account row first and then
look at the sessions in a fresh statement. Names are unique among a user's active bots
(the `accounts_active_name` index, by type).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable

import asyncpg
from msgspec import UNSET, UnsetType

from odted.store.bot_sessions import ACTIVE_STATUSES, BotSessionRow, active_session_of, sessions_of
from odted.store.db import Conn, Database

__all__ = ["BotRecord", "BotStore", "Refused", "SettledDay", "PolicyMerge"]

_BOT = """
    a.id, a.user_id, a.name, a.description, a.status, a.starting_capital, a.cash_balance, a.created_at,
    b.strategy_link_id, b.source_hash, b.risk::text AS risk, b.reprice::text AS reprice, b.auto_start
"""
_FROM = "accounts a JOIN bots b ON b.account_id = a.id"
_MINE = "a.user_id = $1 AND a.type = 'bot' AND a.status <> 'deleted'"

PolicyMerge = Callable[[str, str], tuple[str, str]]
"""(stored risk JSON, stored reprice JSON) -> the new pair; raises to refuse."""


class Refused(enum.Enum):
    """Why a bot change was not made (nothing changed)."""

    NOT_FOUND = "not_found"
    NAME_TAKEN = "name_taken"
    STRATEGY_NOT_OWNED = "strategy_not_found_or_not_owned"
    ACTIVE_SESSION = "bot_has_active_session"


@dataclass(frozen=True)
class BotRecord:
    """A bot as stored; `status` is its account's (`active` is the API's `idle`)."""

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    description: str | None
    status: str
    starting_capital: Decimal
    cash_balance: Decimal
    created_at: datetime
    strategy_link_id: uuid.UUID
    source_hash: str
    risk: str  # JSON of odted.domain.risk.RiskPolicy
    reprice: str  # JSON of odted.domain.reprice.RepricePolicy
    auto_start: bool


@dataclass(frozen=True)
class SettledDay:
    """One finalized session's result, for the lifetime summary."""

    date: date
    total_pl: Decimal


def _bot(row: Any) -> BotRecord:
    return BotRecord(**dict(row))


async def _get(conn: Conn, user_id: uuid.UUID, bot_id: uuid.UUID, *, lock: bool = False) -> BotRecord | None:
    if lock:
        locked = await conn.fetchval(
            f"SELECT a.id FROM accounts a WHERE {_MINE} AND a.id = $2 FOR UPDATE", user_id, bot_id)
        if locked is None:
            return None
    row = await conn.fetchrow(f"SELECT {_BOT} FROM {_FROM} WHERE {_MINE} AND a.id = $2", user_id, bot_id)
    return None if row is None else _bot(row)


async def _has_active_session(conn: Conn, bot_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM bot_sessions WHERE bot_id = $1 AND status = ANY($2::text[]))",
        bot_id, list(ACTIVE_STATUSES)))


async def _insert(conn: Conn, bot_id: uuid.UUID, user_id: uuid.UUID, link_id: uuid.UUID, name: str,
                  description: str | None, capital: Decimal, risk: str, reprice: str,
                  auto_start: bool) -> BotRecord | Refused:
    source_hash = await conn.fetchval(
        "SELECT source_hash FROM strategy_links WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL",
        link_id, user_id)
    if source_hash is None:
        return Refused.STRATEGY_NOT_OWNED
    try:
        async with conn.transaction():  # a savepoint: a taken name leaves the unit usable
            await conn.execute(
                "INSERT INTO accounts (id, user_id, name, description, engine, type, starting_capital, cash_balance)"
                " VALUES ($1, $2, $3, $4, 'live_sim', 'bot', $5, $5)",
                bot_id, user_id, name, description, capital)
    except asyncpg.UniqueViolationError as e:
        if e.constraint_name == "accounts_active_name":
            return Refused.NAME_TAKEN
        raise
    await conn.execute(
        "INSERT INTO bots (account_id, strategy_link_id, source_hash, risk, reprice, auto_start)"
        " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)",
        bot_id, link_id, source_hash, risk, reprice, auto_start)
    found = await _get(conn, user_id, bot_id)
    assert found is not None
    return found


async def _list(conn: Conn, user_id: uuid.UUID, link_id: uuid.UUID | None) -> list[BotRecord]:
    if link_id is None:
        rows = await conn.fetch(f"SELECT {_BOT} FROM {_FROM} WHERE {_MINE} ORDER BY a.created_at, a.id", user_id)
    else:
        rows = await conn.fetch(
            f"SELECT {_BOT} FROM {_FROM} WHERE {_MINE} AND b.strategy_link_id = $2 ORDER BY a.created_at, a.id",
            user_id, link_id)
    return [_bot(r) for r in rows]


async def _heads(conn: Conn, bot_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[BotSessionRow | None,
                                                                                  BotSessionRow | None]]:
    """(active session, last session) of each bot, read with the runtime's repository."""
    out: dict[uuid.UUID, tuple[BotSessionRow | None, BotSessionRow | None]] = {}
    for bot_id in bot_ids:
        last = await sessions_of(conn, bot_id, 1)
        out[bot_id] = (await active_session_of(conn, bot_id), last[0] if last else None)
    return out


async def _patch(conn: Conn, user_id: uuid.UUID, bot_id: uuid.UUID, name: str | UnsetType,
                 description: str | None | UnsetType, status: str | UnsetType, auto_start: bool | UnsetType,
                 policy: PolicyMerge | None) -> BotRecord | Refused:
    row = await _get(conn, user_id, bot_id, lock=True)
    if row is None:
        return Refused.NOT_FOUND
    account: list[tuple[str, Any]] = []
    bot: list[tuple[str, Any]] = []
    if status is not UNSET and status != row.status:
        if status == "archived" and await _has_active_session(conn, bot_id):
            return Refused.ACTIVE_SESSION
        account.append(("status", status))
    if name is not UNSET and name != row.name:
        account.append(("name", name))
    if description is not UNSET and description != row.description:
        account.append(("description", description))
    if auto_start is not UNSET and auto_start != row.auto_start:
        bot.append(("auto_start", auto_start))
    if policy is not None:
        risk, reprice = policy(row.risk, row.reprice)
        bot += [("risk", risk), ("reprice", reprice)]
    if account:
        sets = ", ".join(f"{c} = ${i}" for i, (c, _) in enumerate(account, start=2))
        try:
            async with conn.transaction():
                await conn.execute(f"UPDATE accounts SET {sets}, updated_at = now() WHERE id = $1",
                                   bot_id, *(v for _, v in account))
        except asyncpg.UniqueViolationError as e:
            if e.constraint_name == "accounts_active_name":
                return Refused.NAME_TAKEN
            raise
    if bot:
        casts = {"risk": "::jsonb", "reprice": "::jsonb"}
        sets = ", ".join(f"{c} = ${i}{casts.get(c, '')}" for i, (c, _) in enumerate(bot, start=2))
        await conn.execute(f"UPDATE bots SET {sets} WHERE account_id = $1", bot_id, *(v for _, v in bot))
        if not account:
            await conn.execute("UPDATE accounts SET updated_at = now() WHERE id = $1", bot_id)
    found = await _get(conn, user_id, bot_id)
    assert found is not None
    return found


async def _delete(conn: Conn, user_id: uuid.UUID, bot_id: uuid.UUID) -> Refused | None:
    row = await _get(conn, user_id, bot_id, lock=True)
    if row is None:
        return Refused.NOT_FOUND
    if await _has_active_session(conn, bot_id):
        return Refused.ACTIVE_SESSION
    await conn.execute("UPDATE accounts SET status = 'deleted', updated_at = now() WHERE id = $1", bot_id)
    return None


async def _settled(conn: Conn, user_id: uuid.UUID, bot_id: uuid.UUID) -> list[SettledDay] | None:
    if await _get(conn, user_id, bot_id) is None:
        return None
    rows = await conn.fetch(
        "SELECT date, total_pl FROM bot_sessions WHERE bot_id = $1 AND total_pl IS NOT NULL"
        " ORDER BY date, created_at, id", bot_id)
    return [SettledDay(r["date"], r["total_pl"]) for r in rows]


class BotStore:
    """The user's bots; every method checks ownership (another user's bot, a deleted
    one, or an account that is not a bot is not found)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, user_id: uuid.UUID, *, strategy_link_id: uuid.UUID, name: str, description: str | None,
                     starting_capital: Decimal, risk: str, reprice: str, auto_start: bool) -> BotRecord | Refused:
        """The bot's account (cash balance = starting capital) and its row, pinning the
        strategy the user's live link points at, in one transaction."""
        return await self._db.run(_insert, uuid.uuid4(), user_id, strategy_link_id, name, description,
                                  starting_capital, risk, reprice, auto_start)

    async def list_of(self, user_id: uuid.UUID, strategy_link_id: uuid.UUID | None = None) -> list[BotRecord]:
        """Idle and archived bots, oldest first; only those made from a link when given."""
        return await self._db.run(_list, user_id, strategy_link_id, transaction=False)

    async def get(self, user_id: uuid.UUID, bot_id: uuid.UUID) -> BotRecord | None:
        return await self._db.run(_get, user_id, bot_id, transaction=False)

    async def heads(self, bot_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[BotSessionRow | None,
                                                                               BotSessionRow | None]]:
        """Each bot's active session (or None) and its latest session (or None)."""
        return await self._db.run(_heads, bot_ids)

    async def patch(self, user_id: uuid.UUID, bot_id: uuid.UUID, *, name: str | UnsetType = UNSET,
                    description: str | None | UnsetType = UNSET, status: str | UnsetType = UNSET,
                    auto_start: bool | UnsetType = UNSET, policy: PolicyMerge | None = None) -> BotRecord | Refused:
        """Apply the given fields; `policy` computes the new risk and re-pricing JSON from
        the stored ones inside the same transaction. Archiving waits for no active session."""
        return await self._db.run(_patch, user_id, bot_id, name, description, status, auto_start, policy)

    async def delete(self, user_id: uuid.UUID, bot_id: uuid.UUID) -> Refused | None:
        """Soft-delete the bot's account, unless a session is active."""
        return await self._db.run(_delete, user_id, bot_id)

    async def settled_days(self, user_id: uuid.UUID, bot_id: uuid.UUID) -> list[SettledDay] | None:
        """The finalized sessions' P&L, oldest first; None when the bot is not found."""
        return await self._db.run(_settled, user_id, bot_id)
