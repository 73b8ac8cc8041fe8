import trio
import pytest

from odted.store import migrate
from odted.store.db import Database, DatabaseUnavailable, open_database


async def test_migrations_are_recorded_and_running_them_twice_changes_nothing(db: Database):
    first = await migrate.status(db)
    assert first and all(s.applied_at is not None for s in first)
    assert await migrate.migrate(db) == []
    assert await migrate.status(db) == first


async def test_migrations_apply_in_order_on_an_empty_database(bridge, make_database):
    dsn = await make_database(bridge, migrated=False)
    async with open_database(dsn, loop=bridge, min_size=1, max_size=2) as fresh:
        pending = await migrate.status(fresh)
        assert all(s.applied_at is None for s in pending)
        applied = await migrate.migrate(fresh)
        assert [m.version for m in applied] == sorted(m.version for m in migrate.migrations())
        assert await fresh.fetchval("SELECT count(*) FROM schema_migrations") == len(applied)


async def test_concurrent_migrators_take_turns(bridge, make_database):
    dsn = await make_database(bridge, migrated=False)
    async with open_database(dsn, loop=bridge, min_size=2, max_size=4) as fresh:
        results = []

        async def run():
            results.append(await migrate.migrate(fresh))

        async with trio.open_nursery() as n:
            n.start_soon(run)
            n.start_soon(run)
        assert sorted(len(r) for r in results) == [0, len(migrate.migrations())]


async def test_a_unit_of_work_rolls_back_entirely_on_error(db: Database):
    await db.fetchval("CREATE TABLE t (x int)")

    async def half(conn):
        await conn.execute("INSERT INTO t VALUES (1)")
        raise ValueError("boom")

    with pytest.raises(ValueError):
        await db.run(half)
    assert await db.fetchval("SELECT count(*) FROM t") == 0


async def test_an_unreachable_server_is_database_unavailable(bridge, tmp_path):
    db = Database(bridge, f"postgresql://postgres@/x?host={tmp_path}&port=1", connect_timeout=0.5, retry_attempts=2)
    with pytest.raises(DatabaseUnavailable):
        await db.run(lambda conn: conn.fetchval("SELECT 1"))
    assert not await db.ping()
