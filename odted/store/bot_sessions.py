"""Bot sessions in PostgreSQL: the runtime's reads and writes of `bot_sessions`.

Every status change is persisted as it happens (bots-api: `scheduled → registering →
waiting_for_data → running → settling → completed`, or `halted` / `killed` / `failed`).
The risk and re-pricing policy are frozen into the row at start; the program state is
saved with every commit of the bot's actions, so a restarted daemon resumes the strategy
where it was (no second entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from odted.store.db import Conn

__all__ = [
    "ACTIVE_STATUSES",
    "TERMINAL_STATUSES",
    "BotSessionRow",
    "BotRow",
    "insert_session",
    "load_session",
    "session_of_simulation",
    "set_session_status",
    "attach_simulation",
    "save_program_state",
    "finalize_session",
    "load_bot",
    "auto_start_bots",
    "lock_bot_status",
    "active_session_of",
    "session_on",
    "sessions_of",
]

ACTIVE_STATUSES = ("scheduled", "registering", "waiting_for_data", "running", "settling", "killing")
TERMINAL_STATUSES = ("completed", "halted", "killed", "failed")

_COLUMNS = """
    id, bot_id, simulation_id, date, status, source_hash, risk::text AS risk, reprice::text AS reprice,
    program_state::text AS program_state, order_meta::text AS order_meta, flatten_on_kill, halt_reason, error_count, opening_balance,
    created_at, started_at, ended_at, final_nlv, realized_pl, total_pl, fees, max_intraday_dd,
    order_count, fill_count
"""


@dataclass(frozen=True)
class BotSessionRow:
    id: UUID
    bot_id: UUID
    simulation_id: UUID | None
    date: date
    status: str
    source_hash: str
    risk: str  # JSON of RiskPolicy
    reprice: str  # JSON of RepricePolicy
    program_state: str | None
    order_meta: str | None
    flatten_on_kill: bool
    halt_reason: str | None
    error_count: int
    opening_balance: Decimal
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    final_nlv: Decimal | None
    realized_pl: Decimal | None
    total_pl: Decimal | None
    fees: Decimal | None
    max_intraday_dd: Decimal | None
    order_count: int | None
    fill_count: int | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class BotRow:
    """What the runtime needs of a bot (its account and its pinned strategy)."""

    id: UUID
    user_id: UUID
    name: str
    status: str  # the account's: active (idle) or archived
    cash_balance: Decimal
    source_hash: str
    strategy_source: str
    risk: str
    reprice: str
    auto_start: bool


def _row(r: object) -> BotSessionRow:
    return BotSessionRow(**dict(r))  # type: ignore[call-overload]


async def insert_session(conn: Conn, row: BotSessionRow) -> None:
    await conn.execute(
        "INSERT INTO bot_sessions (id, bot_id, simulation_id, date, status, source_hash, risk, reprice, "
        "opening_balance, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10)",
        row.id, row.bot_id, row.simulation_id, row.date, row.status, row.source_hash, row.risk, row.reprice,
        row.opening_balance, row.created_at,
    )


async def load_session(conn: Conn, session_id: UUID) -> BotSessionRow | None:
    r = await conn.fetchrow(f"SELECT {_COLUMNS} FROM bot_sessions WHERE id = $1", session_id)
    return None if r is None else _row(r)


async def session_of_simulation(conn: Conn, sim_id: UUID) -> BotSessionRow | None:
    r = await conn.fetchrow(f"SELECT {_COLUMNS} FROM bot_sessions WHERE simulation_id = $1", sim_id)
    return None if r is None else _row(r)


async def session_on(conn: Conn, bot_id: UUID, day: date) -> BotSessionRow | None:
    r = await conn.fetchrow(f"SELECT {_COLUMNS} FROM bot_sessions WHERE bot_id = $1 AND date = $2", bot_id, day)
    return None if r is None else _row(r)


async def sessions_of(conn: Conn, bot_id: UUID, limit: int = 90) -> list[BotSessionRow]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM bot_sessions WHERE bot_id = $1 ORDER BY created_at DESC LIMIT $2", bot_id, limit)
    return [_row(r) for r in rows]


async def active_session_of(conn: Conn, bot_id: UUID) -> BotSessionRow | None:
    r = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM bot_sessions WHERE bot_id = $1 AND status = ANY($2::text[]) "
        "ORDER BY created_at DESC LIMIT 1", bot_id, list(ACTIVE_STATUSES))
    return None if r is None else _row(r)


async def set_session_status(conn: Conn, session_id: UUID, status: str, *, at: datetime | None = None,
                             halt_reason: str | None = None, flatten_on_kill: bool | None = None) -> None:
    await conn.execute(SET_STATUS, session_id, status, at, list(TERMINAL_STATUSES), halt_reason, flatten_on_kill)


async def attach_simulation(conn: Conn, session_id: UUID, sim_id: UUID) -> None:
    await conn.execute("UPDATE bot_sessions SET simulation_id = $2 WHERE id = $1", session_id, sim_id)


SAVE_PROGRAM_STATE = (
    "UPDATE bot_sessions SET program_state = $2::jsonb, order_meta = $3::jsonb, error_count = $4 WHERE id = $1"
)
"""Arguments: session id, program state JSON, order meta JSON, error count (for `Writes.execute`)."""

SET_STATUS = (
    "UPDATE bot_sessions SET status = $2, "
    "started_at = CASE WHEN $2 = 'running' AND started_at IS NULL THEN $3 ELSE started_at END, "
    "ended_at = CASE WHEN $2 = ANY($4::text[]) AND ended_at IS NULL THEN $3 ELSE ended_at END, "
    "halt_reason = coalesce($5, halt_reason), flatten_on_kill = coalesce($6, flatten_on_kill) "
    "WHERE id = $1"
)
"""Arguments: session id, status, at, TERMINAL_STATUSES, halt reason, flatten_on_kill."""


async def save_program_state(conn: Conn, session_id: UUID, state: str, order_meta: str, error_count: int) -> None:
    await conn.execute(SAVE_PROGRAM_STATE, session_id, state, order_meta, error_count)


async def finalize_session(conn: Conn, session_id: UUID, *, status: str, at: datetime, final_nlv: Decimal,
                           realized_pl: Decimal, total_pl: Decimal, fees: Decimal, max_intraday_dd: Decimal,
                           order_count: int, fill_count: int) -> None:
    """Write the roll-up once the day has settled; a terminal status stays as it was."""
    await conn.execute(
        "UPDATE bot_sessions SET status = CASE WHEN status = ANY($3::text[]) THEN status ELSE $2 END, "
        "ended_at = coalesce(ended_at, $4), final_nlv = $5, realized_pl = $6, total_pl = $7, fees = $8, "
        "max_intraday_dd = $9, order_count = $10, fill_count = $11 WHERE id = $1",
        session_id, status, list(TERMINAL_STATUSES), at, final_nlv, realized_pl, total_pl, fees,
        max_intraday_dd, order_count, fill_count,
    )


_BOT_SQL = """
    SELECT a.id, a.user_id, a.name, a.status, a.cash_balance, b.source_hash, s.source AS strategy_source,
           b.risk::text AS risk, b.reprice::text AS reprice, b.auto_start
    FROM bots b JOIN accounts a ON a.id = b.account_id JOIN strategies s ON s.source_hash = b.source_hash
"""


async def load_bot(conn: Conn, bot_id: UUID) -> BotRow | None:
    r = await conn.fetchrow(_BOT_SQL + " WHERE a.id = $1 AND a.status <> 'deleted'", bot_id)
    return None if r is None else BotRow(**dict(r))


async def lock_bot_status(conn: Conn, bot_id: UUID) -> str | None:
    """The bot account's status, its row locked until the transaction ends."""
    return await conn.fetchval("SELECT status FROM accounts WHERE id = $1 FOR UPDATE", bot_id)


async def auto_start_bots(conn: Conn) -> list[BotRow]:
    rows = await conn.fetch(_BOT_SQL + " WHERE a.status = 'active' AND b.auto_start")
    return [BotRow(**dict(r)) for r in rows]
