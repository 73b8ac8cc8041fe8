"""Trading accounts and their sessions in PostgreSQL.

An account (`accounts`) is a named, cash-only container whose `cash_balance` carries
from one trading day to the next; a session of an account is a row of `simulations`
with its `account_id` (written by the live-trading repository, `odted.store.live`,
which also carries a settled session's closing balance into the account).

`AccountStore` is the trio-facing repository: each method is one unit of work (one
transaction) on `Database.run`. Changes that depend on whether a session is open or has
traded lock the account row first and then look at its sessions in a fresh statement,
so they serialize with settlement, which updates the same row.

This repository serves the accounts API, which manages `manual` accounts; `bot`
accounts belong to the bots API and are not found here.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from msgspec import UNSET, UnsetType

from odted.store.db import Conn, Database

__all__ = ["AccountRow", "AccountStore", "Refused", "SessionRecord", "SessionRow"]

_ACCOUNT = """
    a.id, a.user_id, a.name, a.description, a.engine, a.type, a.starting_capital, a.cash_balance,
    a.status, a.created_at,
    (SELECT s.id FROM simulations s WHERE s.account_id = a.id AND s.status = 'open'
      ORDER BY s.date DESC, s.created_at DESC LIMIT 1) AS open_session_id,
    (a.traded OR EXISTS (SELECT 1 FROM simulations s WHERE s.account_id = a.id AND s.traded)) AS traded
"""

_MINE = "a.user_id = $1 AND a.type = 'manual' AND a.status <> 'deleted'"

_SESSION = """
    s.id, s.account_id, s.user_id, s.date, s.starting_capital AS opening_balance, s.status, s.start_time,
    s.end_time, s.created_at, s.settled_at, s.closing_balance, s.traded
"""

# Sessions the accounts API shows: every status but a deleted one.
_SHOWN = "s.status <> 'deleted'"


class Refused(enum.Enum):
    """Why an account change was not made (nothing changed)."""

    NOT_FOUND = "not_found"
    NAME_TAKEN = "name_taken"
    SESSION_OPEN = "session_open"
    CAPITAL_IMMUTABLE = "capital_immutable"


@dataclass(frozen=True)
class AccountRow:
    """An account with what its rules depend on: its open session (if any) and whether
    any of its sessions has placed an order."""

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    description: str | None
    engine: str
    type: str
    starting_capital: Decimal
    cash_balance: Decimal
    status: str
    created_at: datetime
    open_session_id: uuid.UUID | None
    traded: bool


@dataclass(frozen=True)
class SessionRow:
    """One trading day of an account, as stored (`opening_balance` is the carried cash
    it opened with)."""

    id: uuid.UUID
    account_id: uuid.UUID
    user_id: uuid.UUID
    date: date
    opening_balance: Decimal
    status: str
    start_time: datetime
    end_time: datetime
    created_at: datetime
    settled_at: datetime | None
    closing_balance: Decimal | None
    traded: bool


@dataclass(frozen=True)
class SessionRecord:
    """A session with its order and transaction documents (JSON, in commit order)."""

    session: SessionRow
    orders: list[bytes]
    transactions: list[bytes]


def _account(row: Any) -> AccountRow:
    return AccountRow(**dict(row))


def _session(row: Any) -> SessionRow:
    return SessionRow(**dict(row))


# -- units of work (asyncpg) ----------------------------------------------------------


async def _insert(conn: Conn, account_id: uuid.UUID, user_id: uuid.UUID, name: str, description: str | None,
                  engine: str, starting_capital: Decimal) -> AccountRow | Refused:
    try:
        async with conn.transaction():  # a savepoint: a taken name leaves the unit usable
            await conn.execute(
                "INSERT INTO accounts (id, user_id, name, description, engine, type, starting_capital, cash_balance)"
                " VALUES ($1, $2, $3, $4, $5, 'manual', $6, $6)",
                account_id, user_id, name, description, engine, starting_capital,
            )
    except asyncpg.UniqueViolationError as e:
        if e.constraint_name == "accounts_active_name":
            return Refused.NAME_TAKEN
        raise
    found = await _get(conn, user_id, account_id)
    assert found is not None
    return found


async def _list(conn: Conn, user_id: uuid.UUID) -> list[AccountRow]:
    rows = await conn.fetch(f"SELECT {_ACCOUNT} FROM accounts a WHERE {_MINE} ORDER BY a.created_at, a.id", user_id)
    return [_account(r) for r in rows]


async def _get(conn: Conn, user_id: uuid.UUID, account_id: uuid.UUID, *, lock: bool = False) -> AccountRow | None:
    if lock:
        # Lock the row, then read the sessions in a fresh statement (one that sees a
        # session committed while this one waited for the lock).
        locked = await conn.fetchval(
            f"SELECT a.id FROM accounts a WHERE {_MINE} AND a.id = $2 FOR UPDATE", user_id, account_id)
        if locked is None:
            return None
    row = await conn.fetchrow(f"SELECT {_ACCOUNT} FROM accounts a WHERE {_MINE} AND a.id = $2", user_id, account_id)
    return None if row is None else _account(row)


async def _patch(conn: Conn, user_id: uuid.UUID, account_id: uuid.UUID, name: str | UnsetType,
                 description: str | None | UnsetType, status: str | UnsetType,
                 starting_capital: Decimal | UnsetType) -> AccountRow | Refused:
    row = await _get(conn, user_id, account_id, lock=True)
    if row is None:
        return Refused.NOT_FOUND
    sets: list[str] = []
    args: list[Any] = [account_id]

    def set_(column: str, value: Any) -> None:
        args.append(value)
        sets.append(f"{column} = ${len(args)}")

    if starting_capital is not UNSET and starting_capital != row.starting_capital:
        if row.traded:
            return Refused.CAPITAL_IMMUTABLE
        if row.open_session_id is not None:
            return Refused.SESSION_OPEN
        set_("starting_capital", starting_capital)
        set_("cash_balance", starting_capital)  # nothing traded: the carry is the capital
    if status is not UNSET and status != row.status:
        if status == "archived" and row.open_session_id is not None:
            return Refused.SESSION_OPEN
        set_("status", status)
    if name is not UNSET and name != row.name:
        set_("name", name)
    if description is not UNSET and description != row.description:
        set_("description", description)
    if sets:
        try:
            async with conn.transaction():
                await conn.execute(f"UPDATE accounts SET {', '.join(sets)}, updated_at = now() WHERE id = $1", *args)
        except asyncpg.UniqueViolationError as e:
            if e.constraint_name == "accounts_active_name":
                return Refused.NAME_TAKEN
            raise
    found = await _get(conn, user_id, account_id)
    assert found is not None
    return found


async def _delete(conn: Conn, user_id: uuid.UUID, account_id: uuid.UUID) -> Refused | None:
    row = await _get(conn, user_id, account_id, lock=True)
    if row is None:
        return Refused.NOT_FOUND
    if row.open_session_id is not None:
        return Refused.SESSION_OPEN
    await conn.execute("UPDATE accounts SET status = 'deleted', updated_at = now() WHERE id = $1", account_id)
    return None


async def _sessions(conn: Conn, user_id: uuid.UUID, account_id: uuid.UUID) -> list[SessionRow]:
    # Newest first. `created_at` is market time, which two sessions of one day can share;
    # a day's open or settled session is its latest (it opened after the others ended).
    rows = await conn.fetch(
        f"SELECT {_SESSION} FROM simulations s WHERE s.account_id = $2 AND s.user_id = $1 AND {_SHOWN}"
        " ORDER BY s.date DESC, s.status IN ('open', 'settled') DESC, s.created_at DESC, s.id",
        user_id, account_id,
    )
    return [_session(r) for r in rows]


async def _session_row(conn: Conn, user_id: uuid.UUID, account_id: uuid.UUID,
                       session_id: uuid.UUID) -> SessionRow | None:
    row = await conn.fetchrow(
        f"SELECT {_SESSION} FROM simulations s JOIN accounts a ON a.id = s.account_id"
        f" WHERE {_MINE} AND a.id = $2 AND s.id = $3 AND {_SHOWN}",
        user_id, account_id, session_id,
    )
    return None if row is None else _session(row)


async def _record(conn: Conn, user_id: uuid.UUID, account_id: uuid.UUID,
                  session_id: uuid.UUID) -> SessionRecord | None:
    session = await _session_row(conn, user_id, account_id, session_id)
    if session is None:
        return None
    orders = await conn.fetch("SELECT doc::text FROM orders WHERE simulation_id = $1 ORDER BY seq", session_id)
    txs = await conn.fetch("SELECT doc::text FROM transactions WHERE simulation_id = $1 ORDER BY seq", session_id)
    return SessionRecord(session, [r[0].encode() for r in orders], [r[0].encode() for r in txs])


async def _transactions_of(conn: Conn, session_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[bytes]]:
    out: dict[uuid.UUID, list[bytes]] = {sid: [] for sid in session_ids}
    if not session_ids:
        return out
    rows = await conn.fetch(
        "SELECT simulation_id, doc::text FROM transactions WHERE simulation_id = ANY($1::uuid[])"
        " ORDER BY simulation_id, seq",
        session_ids,
    )
    for r in rows:
        out[r[0]].append(r[1].encode())
    return out


# -- the repository (trio) ------------------------------------------------------------


class AccountStore:
    """The user's `manual` accounts and their sessions; every method checks ownership
    (another user's account, a bot's, or a deleted one is not found)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, user_id: uuid.UUID, *, name: str, description: str | None, engine: str,
                     starting_capital: Decimal) -> AccountRow | Refused:
        """A new active account whose cash balance is its starting capital."""
        return await self._db.run(_insert, uuid.uuid4(), user_id, name, description, engine, starting_capital)

    async def list_of(self, user_id: uuid.UUID) -> list[AccountRow]:
        """Active and archived accounts, oldest first."""
        return await self._db.run(_list, user_id)

    async def get(self, user_id: uuid.UUID, account_id: uuid.UUID) -> AccountRow | None:
        return await self._db.run(_get, user_id, account_id)

    async def patch(self, user_id: uuid.UUID, account_id: uuid.UUID, *, name: str | UnsetType = UNSET,
                    description: str | None | UnsetType = UNSET, status: str | UnsetType = UNSET,
                    starting_capital: Decimal | UnsetType = UNSET) -> AccountRow | Refused:
        """Apply the given fields: archiving waits for no open session; the starting
        capital changes only before the account has traded and with no session open,
        and resets the cash balance to it."""
        return await self._db.run(_patch, user_id, account_id, name, description, status, starting_capital)

    async def delete(self, user_id: uuid.UUID, account_id: uuid.UUID) -> Refused | None:
        """Soft-delete: the account is no longer found; its settled sessions stay stored."""
        return await self._db.run(_delete, user_id, account_id)

    async def sessions(self, user_id: uuid.UUID, account_id: uuid.UUID) -> list[SessionRow]:
        """The account's sessions, newest first."""
        return await self._db.run(_sessions, user_id, account_id)

    async def session(self, user_id: uuid.UUID, account_id: uuid.UUID, session_id: uuid.UUID) -> SessionRow | None:
        return await self._db.run(_session_row, user_id, account_id, session_id)

    async def record(self, user_id: uuid.UUID, account_id: uuid.UUID,
                     session_id: uuid.UUID) -> SessionRecord | None:
        """A session with its orders and transactions (to show one that has no actor)."""
        return await self._db.run(_record, user_id, account_id, session_id)

    async def transactions_of(self, session_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[bytes]]:
        """The transaction documents of each session, in commit order."""
        return await self._db.run(_transactions_of, session_ids, transaction=False)
