"""Live simulations in PostgreSQL: the rows an actor writes and the state it rebuilds from.

Every function here takes an asyncpg connection and runs inside the caller's unit of
work (`Committer.commit` or `Database.run`), so an order, its transactions, its event and
its idempotency record commit together or not at all. Documents are bytes encoded by
the caller with msgspec (JSON), stored as `jsonb`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Awaitable, Callable, Iterable, Sequence
from uuid import UUID

from odted.store.db import Conn

__all__ = [
    "Writes",
    "apply_writes",
    "SimulationRow",
    "StoredState",
    "insert_simulation",
    "load_state",
    "open_simulation_ids",
    "insert_event",
    "events_after",
    "get_idempotency",
    "insert_history",
    "history",
    "settle_simulation",
    "set_status",
    "record_crash",
    "active_live_simulation",
    "delete_simulation",
]

_SIM_COLUMNS = """
    id, user_id, account_id, date, starting_capital, description, status, start_time,
    end_time, created_at, settled_at, closing_balance, traded, crashes, last_crash
"""


class StaleWrite(Exception):
    """The database disagrees with the actor's memory: a bug or a second writer."""


@dataclass
class Writes:
    """The rows one unit of live-trading work writes.

    The committer merges the `Writes` of a whole batch and sends each table's rows in
    one statement (DESIGN.md: batches do not pay the bridge's per-statement cost).
    `then` holds the rare writes that are not rows of these tables (settling, deleting).
    """

    orders: list[tuple[UUID, UUID, int, str, datetime, str]] = field(default_factory=list)
    order_updates: list[tuple[UUID, str, datetime, str, str]] = field(default_factory=list)
    transactions: list[tuple[UUID, UUID, int, UUID | None, datetime, str]] = field(default_factory=list)
    events: list[tuple[UUID, int, str, str]] = field(default_factory=list)
    idempotency: list[tuple[UUID, str, str, int, bytes, UUID | None]] = field(default_factory=list)
    # Other statements, each with its rows: a batch sends every distinct statement once.
    statements: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    then: list[Callable[[Conn], Awaitable[Any]]] = field(default_factory=list)

    def execute(self, sql: str, *args: Any) -> None:
        """Add one row of arguments for `sql` (run after the rows of the tables above)."""
        self.statements.setdefault(sql, []).append(args)

    def add_order(self, sim_id: UUID, seq: int, order_id: UUID, status: str, created_at: datetime, doc: bytes) -> None:
        self.orders.append((order_id, sim_id, seq, status, created_at, doc.decode()))

    def update_order(self, order_id: UUID, status: str, updated_at: datetime, doc: bytes,
                     expect_status: str = "pending") -> None:
        self.order_updates.append((order_id, status, updated_at, doc.decode(), expect_status))

    def add_transactions(self, sim_id: UUID, first_seq: int,
                         rows: Sequence[tuple[UUID, UUID | None, datetime, bytes]]) -> None:
        for i, (tid, oid, ts, doc) in enumerate(rows):
            self.transactions.append((tid, sim_id, first_seq + i, oid, ts, doc.decode()))

    def add_event(self, sim_id: UUID, event_id: int, type_: str, payload: bytes) -> None:
        self.events.append((sim_id, event_id, type_, payload.decode() or "{}"))

    def add_idempotency(self, user_id: UUID, key: str, request_hash: str, status: int, body: bytes,
                        sim_id: UUID | None) -> None:
        self.idempotency.append((user_id, key, request_hash, status, body, sim_id))

    def extend(self, other: Writes) -> None:
        self.orders += other.orders
        self.order_updates += other.order_updates
        self.transactions += other.transactions
        self.events += other.events
        self.idempotency += other.idempotency
        for sql, rows in other.statements.items():
            self.statements.setdefault(sql, []).extend(rows)
        self.then += other.then


async def apply_writes(conn: Conn, w: Writes) -> None:
    """Write `w` in a handful of statements, inside the caller's transaction.

    A guarded order update whose order is no longer in the expected status raises
    `StaleWrite`, failing the transaction: memory and the database disagree.
    """
    if w.orders:
        await conn.executemany(
            "INSERT INTO orders (id, simulation_id, seq, status, created_at, updated_at, doc) "
            "VALUES ($1, $2, $3, $4, $5, $5, $6::jsonb)", w.orders)
    if w.order_updates:
        ids, statuses, stamps, docs, expects = (list(c) for c in zip(*w.order_updates))
        done = await conn.fetch(
            "UPDATE orders o SET status = u.status, updated_at = u.ts, doc = u.doc::jsonb "
            "FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[]) "
            "AS u(id, status, ts, doc, expect) WHERE o.id = u.id AND o.status = u.expect RETURNING o.id",
            ids, statuses, stamps, docs, expects)
        if len(done) != len(ids):
            missing = set(ids) - {r[0] for r in done}
            raise StaleWrite(f"orders not in their expected status in the database: {sorted(map(str, missing))}")
    if w.transactions:
        await conn.executemany(
            "INSERT INTO transactions (id, simulation_id, seq, order_id, ts, doc) VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
            w.transactions)
    if w.events:
        await conn.executemany(
            "INSERT INTO simulation_events (simulation_id, id, type, payload) VALUES ($1, $2, $3, $4::jsonb)",
            w.events)
    if w.idempotency:
        await conn.executemany(
            "INSERT INTO idempotency_keys (user_id, key, request_hash, status, body, simulation_id) "
            "VALUES ($1, $2, $3, $4, $5, $6)", w.idempotency)
    for sql, rows in w.statements.items():
        await conn.executemany(sql, rows)
    for fn in w.then:
        await fn(conn)


@dataclass(frozen=True)
class SimulationRow:
    id: UUID
    user_id: UUID
    account_id: UUID | None
    date: date
    starting_capital: Decimal
    description: str | None
    status: str
    start_time: datetime
    end_time: datetime
    created_at: datetime
    settled_at: datetime | None
    closing_balance: Decimal | None
    traded: bool
    crashes: int
    last_crash: str | None


@dataclass(frozen=True)
class StoredState:
    """Everything an actor needs to rebuild one simulation."""

    simulation: SimulationRow
    last_event_id: int
    orders: list[bytes]  # order documents, in placement order
    transactions: list[bytes]  # transaction documents, in commit order
    idempotency: list[tuple[str, str, int, bytes]]  # (key, request hash, status, body)


def _sim(row: Any) -> SimulationRow:
    return SimulationRow(**dict(row))


async def insert_simulation(conn: Conn, sim: SimulationRow) -> None:
    await conn.execute(
        f"INSERT INTO simulations ({_SIM_COLUMNS}) VALUES "
        "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        sim.id, sim.user_id, sim.account_id, sim.date, sim.starting_capital, sim.description, sim.status,
        sim.start_time, sim.end_time, sim.created_at, sim.settled_at, sim.closing_balance, sim.traded,
        sim.crashes, sim.last_crash,
    )


async def load_simulation(conn: Conn, sim_id: UUID) -> SimulationRow | None:
    row = await conn.fetchrow(f"SELECT {_SIM_COLUMNS} FROM simulations WHERE id = $1", sim_id)
    return None if row is None else _sim(row)


async def load_state(conn: Conn, sim_id: UUID) -> StoredState | None:
    sim = await load_simulation(conn, sim_id)
    if sim is None:
        return None
    orders = await conn.fetch("SELECT doc::text FROM orders WHERE simulation_id = $1 ORDER BY seq", sim_id)
    txs = await conn.fetch("SELECT doc::text FROM transactions WHERE simulation_id = $1 ORDER BY seq", sim_id)
    keys = await conn.fetch(
        "SELECT key, request_hash, status, body FROM idempotency_keys WHERE simulation_id = $1", sim_id
    )
    return StoredState(
        simulation=sim,
        last_event_id=await last_event_id(conn, sim_id),
        orders=[r[0].encode() for r in orders],
        transactions=[r[0].encode() for r in txs],
        idempotency=[(r["key"], r["request_hash"], r["status"], bytes(r["body"])) for r in keys],
    )


async def open_simulation_ids(conn: Conn) -> list[UUID]:
    return [r[0] for r in await conn.fetch("SELECT id FROM simulations WHERE status = 'open' ORDER BY created_at")]


async def active_live_simulation(conn: Conn, user_id: UUID) -> SimulationRow | None:
    row = await conn.fetchrow(
        f"SELECT {_SIM_COLUMNS} FROM simulations WHERE user_id = $1 AND account_id IS NULL AND status = 'open'",
        user_id,
    )
    return None if row is None else _sim(row)


async def insert_event(conn: Conn, sim_id: UUID, event_id: int, type_: str, payload: bytes) -> None:
    await conn.execute(
        "INSERT INTO simulation_events (simulation_id, id, type, payload) VALUES ($1, $2, $3, $4::jsonb)",
        sim_id, event_id, type_, payload.decode(),
    )


async def last_event_id(conn: Conn, sim_id: UUID) -> int:
    return await conn.fetchval(
        "SELECT coalesce(max(id), 0) FROM simulation_events WHERE simulation_id = $1", sim_id)


MARK_TRADED = "UPDATE simulations SET traded = true WHERE id = $1 AND NOT traded"


async def mark_traded(conn: Conn, sim_id: UUID) -> None:
    await conn.execute(MARK_TRADED, sim_id)


async def events_after(conn: Conn, sim_id: UUID, after_id: int, limit: int = 10_000) -> list[tuple[int, str, bytes]]:
    rows = await conn.fetch(
        "SELECT id, type, payload::text FROM simulation_events WHERE simulation_id = $1 AND id > $2 "
        "ORDER BY id LIMIT $3",
        sim_id, after_id, limit,
    )
    return [(r[0], r[1], r[2].encode()) for r in rows]


async def strategy_source(conn: Conn, source_hash: str) -> str | None:
    return await conn.fetchval("SELECT source FROM strategies WHERE source_hash = $1", source_hash)


async def event_payloads(conn: Conn, sim_id: UUID, type_: str) -> list[bytes]:
    """The payloads of a simulation's events of one type, in id order."""
    rows = await conn.fetch(
        "SELECT payload::text FROM simulation_events WHERE simulation_id = $1 AND type = $2 ORDER BY id",
        sim_id, type_)
    return [r[0].encode() for r in rows]


async def get_idempotency(conn: Conn, user_id: UUID, key: str, retention_seconds: float) -> tuple[str, int, bytes] | None:
    row = await conn.fetchrow(
        "SELECT request_hash, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2 "
        "AND created_at > now() - make_interval(secs => $3)",
        user_id, key, retention_seconds,
    )
    return None if row is None else (row[0], row[1], bytes(row[2]))


async def insert_history(conn: Conn, rows: Iterable[tuple[UUID, datetime, bytes]]) -> None:
    # Rows of a simulation deleted meanwhile are skipped (history is derived data).
    await conn.executemany(
        "INSERT INTO simulation_history (simulation_id, ts, doc) "
        "SELECT $1, $2, $3::jsonb WHERE EXISTS (SELECT 1 FROM simulations WHERE id = $1) "
        "ON CONFLICT (simulation_id, ts) DO UPDATE SET doc = EXCLUDED.doc",
        [(sid, ts, doc.decode()) for sid, ts, doc in rows],
    )


async def history(conn: Conn, sim_id: UUID, interval: int = 1) -> list[bytes]:
    if interval <= 1:
        rows = await conn.fetch(
            "SELECT doc::text FROM simulation_history WHERE simulation_id = $1 ORDER BY ts", sim_id
        )
    else:
        rows = await conn.fetch(
            "SELECT doc::text FROM simulation_history WHERE simulation_id = $1 "
            "AND (extract(epoch FROM ts)::bigint % $2) = 0 ORDER BY ts",
            sim_id, interval,
        )
    return [r[0].encode() for r in rows]


async def settle_simulation(conn: Conn, sim_id: UUID, settled_at: datetime, closing_balance: Decimal) -> None:
    await conn.execute(
        "UPDATE simulations SET status = 'settled', settled_at = $2, closing_balance = $3 "
        "WHERE id = $1 AND status = 'open'",
        sim_id, settled_at, closing_balance,
    )
    await conn.execute(
        "UPDATE accounts SET cash_balance = $2, updated_at = now() "
        "WHERE id = (SELECT account_id FROM simulations WHERE id = $1)",
        sim_id, closing_balance,
    )


async def set_status(conn: Conn, sim_id: UUID, status: str, *, from_status: str = "open") -> bool:
    result = await conn.execute(
        "UPDATE simulations SET status = $2 WHERE id = $1 AND status = $3", sim_id, status, from_status
    )
    return result == "UPDATE 1"


async def record_crash(conn: Conn, sim_id: UUID, message: str) -> None:
    await conn.execute(
        "UPDATE simulations SET crashes = crashes + 1, last_crash = $2 WHERE id = $1", sim_id, message[:2000]
    )


async def delete_simulation(conn: Conn, sim_id: UUID) -> None:
    await conn.execute("DELETE FROM simulations WHERE id = $1", sim_id)
