"""Group commit against the real database: batching, isolation, results."""

import pytest
import trio
import trio.testing

from odted.store.committer import Committer


async def test_concurrent_units_share_transactions_and_each_gets_its_result(db, nursery):
    await db.fetchval("CREATE TABLE g (x int PRIMARY KEY)")
    c = Committer(db)
    await nursery.start(c.run)
    results = {}

    async def write(i):
        async def unit(conn):
            await conn.execute("INSERT INTO g VALUES ($1)", i)
            return i * 10
        results[i] = await c.commit(unit)

    async with trio.open_nursery() as n:
        for i in range(200):
            n.start_soon(write, i)
    assert results == {i: i * 10 for i in range(200)}
    assert await db.fetchval("SELECT count(*) FROM g") == 200
    assert c.batches < 200 and c.largest_batch > 1


async def test_a_failing_unit_fails_alone_and_the_rest_commit(db, nursery):
    await db.fetchval("CREATE TABLE h (x int PRIMARY KEY)")
    await db.fetchval("INSERT INTO h VALUES (7) RETURNING x")
    c = Committer(db)
    await nursery.start(c.run)
    outcomes = {}

    async def write(i):
        async def unit(conn):
            await conn.execute("INSERT INTO h VALUES ($1)", i)
        try:
            await c.commit(unit)
            outcomes[i] = "ok"
        except Exception as e:
            outcomes[i] = type(e).__name__

    async with trio.open_nursery() as n:
        for i in range(5, 10):
            n.start_soon(write, i)
    assert outcomes[7] == "UniqueViolationError"
    assert [outcomes[i] for i in (5, 6, 8, 9)] == ["ok"] * 4
    assert await db.fetchval("SELECT count(*) FROM h") == 5


async def test_units_queued_when_the_writer_stops_fail_instead_of_waiting_for_ever(db):
    import trio

    from odted.store.db import DatabaseUnavailable

    c = Committer(db)
    outcomes = []

    async def write(i):
        async def unit(conn):
            await trio.sleep(0)
        try:
            await c.commit(unit)
            outcomes.append("ok")
        except DatabaseUnavailable:
            outcomes.append("refused")

    with trio.fail_after(10):
        async with trio.open_nursery() as n:
            writer_scope = trio.CancelScope()

            async def writer():
                with writer_scope:
                    await c.run()

            for i in range(5):
                n.start_soon(write, i)  # queued before the writer runs
            await trio.testing.wait_all_tasks_blocked()
            n.start_soon(writer)
            writer_scope.cancel()  # stops before it takes anything
    assert outcomes == ["refused"] * 5
    with pytest.raises(DatabaseUnavailable):
        await c.commit(lambda conn: trio.sleep(0))


async def test_a_burst_larger_than_the_queue_waits_its_turn_instead_of_failing(db, nursery):
    await db.fetchval("CREATE TABLE burst (x int PRIMARY KEY)")
    c = Committer(db, max_batch=8, queue_size=4)
    await nursery.start(c.run)
    done = []

    async def write(i):
        async def unit(conn):
            await conn.execute("INSERT INTO burst VALUES ($1)", i)
        await c.commit(unit)
        done.append(i)

    async with trio.open_nursery() as n:
        for i in range(100):  # 25 times the queue, submitted on one tick
            n.start_soon(write, i)
    assert sorted(done) == list(range(100))
    assert await db.fetchval("SELECT count(*) FROM burst") == 100


async def test_a_writer_stuck_past_the_queue_wait_answers_database_unavailable(db, nursery):
    from odted.store.db import DatabaseUnavailable

    c = Committer(db, queue_size=1, queue_wait=0.2)  # not started yet: nothing drains the queue
    outcomes = []

    async def write(name):
        try:
            await c.commit(lambda conn: conn.execute("SELECT 1"))
            outcomes.append((name, "ok"))
        except DatabaseUnavailable as e:
            outcomes.append((name, str(e)))

    async with trio.open_nursery() as n:
        n.start_soon(write, "queued")  # fills the queue, then waits (shielded) for the writer
        await trio.testing.wait_all_tasks_blocked()
        with trio.fail_after(5):
            await write("refused")
        assert outcomes == [("refused", "the write queue is full")]
        await nursery.start(c.run)  # the queued unit still commits
    assert outcomes[-1] == ("queued", "ok")
