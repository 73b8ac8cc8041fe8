"""Schema migrations: plain SQL files `migrations/NNNN_name.sql`, applied in order.

Each file runs in its own transaction together with its row in `schema_migrations`, so
a migration is applied entirely or not at all. A session-level advisory lock held across
the run makes concurrent migrators (two daemons starting at once) take turns; running
twice is a no-op.
A recorded migration whose file changed since it was applied is an error: the schema
would no longer match the code.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from importlib import resources
from typing import NamedTuple

from odted.store.db import Conn, Database

__all__ = ["Migration", "MigrationStatus", "MigrationError", "migrations", "migrate", "status"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x0D7ED  # advisory lock id for migrations

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(Exception):
    pass


class Migration(NamedTuple):
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationStatus(NamedTuple):
    version: int
    name: str
    applied_at: datetime | None


def migrations() -> list[Migration]:
    """The migrations shipped with this version, in order."""
    found = []
    for entry in resources.files("odted.store").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    found.sort()
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version: {versions}")
    return found


async def migrate(db: Database) -> list[Migration]:
    """Apply every pending migration; return the ones applied now.

    One session-level advisory lock is held across the whole run, so two migrators
    never interleave: the second waits, then finds nothing left to do.
    """
    pending = migrations()

    async def run(conn: Conn) -> list[Migration]:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(_CREATE_TABLE)
            applied = []
            for m in pending:
                async with conn.transaction():
                    if await _apply_one(conn, m):
                        applied.append(m)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)

    return await db.run(run, transaction=False)


async def _apply_one(conn: Conn, m: Migration) -> bool:
    row = await conn.fetchrow("SELECT checksum FROM schema_migrations WHERE version = $1", m.version)
    if row is not None:
        if row["checksum"] != m.checksum:
            raise MigrationError(f"migration {m.version:04d}_{m.name} changed after it was applied")
        return False
    await conn.execute(m.sql)
    await conn.execute(
        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        m.version, m.name, m.checksum,
    )
    return True


async def status(db: Database) -> list[MigrationStatus]:
    """Every known migration with when it was applied (None: pending)."""
    async def q(conn: Conn):
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        if not exists:
            return {}
        return {r["version"]: r["applied_at"] for r in await conn.fetch("SELECT version, applied_at FROM schema_migrations")}

    done = await db.run(q)
    return [MigrationStatus(m.version, m.name, done.get(m.version)) for m in migrations()]
