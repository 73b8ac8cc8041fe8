"""The per-second history writer against the real database: batches, and backpressure
that keeps a flat-out producer's backlog bounded."""

import datetime as dt
import uuid
from decimal import Decimal

import trio

from odted.runtime.history import HistoryWriter

T0 = dt.datetime(2025, 1, 15, 15, tzinfo=dt.timezone.utc)
VALUES = tuple(Decimal(i) for i in range(9))


async def test_a_producer_that_waits_for_room_never_holds_more_than_about_twice_max_rows(db, nursery):
    w = HistoryWriter(db, interval=60, max_rows=200)  # flushes only when full
    await nursery.start(w.run)
    sims = [uuid.uuid4() for _ in range(150)]
    most = 0
    for second in range(40):  # 40 ticks of 150 sessions, as fast as it goes
        for sid in sims:
            w.add(sid, T0 + dt.timedelta(seconds=second), VALUES)
        most = max(most, w.pending)
        await w.wait_room()
    assert most <= 2 * 200 + 150
    await w.flush()
    assert w.written == 40 * 150 and w.pending == 0 and w.dropped == 0


async def test_without_a_running_writer_waiting_for_room_does_not_block(db):
    w = HistoryWriter(db, max_rows=10)
    for i in range(20):
        w.add(uuid.uuid4(), T0, VALUES)
    with trio.fail_after(1):
        await w.wait_room()


async def test_a_full_batch_starts_a_flush_without_waiting_for_it(db, nursery):
    w = HistoryWriter(db, interval=60, max_rows=100)
    await nursery.start(w.run)
    for sid in [uuid.uuid4() for _ in range(150)]:  # one tick of 150 sessions: more than max_rows
        w.add(sid, T0, VALUES)
    await w.wait_room()
    assert w.written == 0, "the producer goes on while its rows are written"
    with trio.fail_after(5):
        while w.written < 150:
            await trio.sleep(0.01)
