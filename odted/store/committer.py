"""Group commit: one writer task commits the writes of many actors together.

Through the trio-asyncio bridge every statement costs a trip through the asyncio loop;
a single-row transaction tops out near 1,600 commits/s, while batched rows
(`executemany`) go at 200k rows/s (DESIGN.md "What things cost"). So actors do not
commit on their own: they hand the writer a unit of work and await it. A unit is either
a `Writes` (rows for the live-trading tables: the writer merges the rows of every unit
in the batch and sends each table's rows in one statement) or, for the rare write that
is not rows, a function `async def fn(conn)` of plain asyncpg code. The writer takes
everything queued (up to `max_batch`), commits it in one transaction in a single
crossing of the bridge, and releases every waiter. If the batch fails, the units are
retried one by one, so one bad unit fails alone and the others still commit.

A unit's result (or its exception) is delivered to the caller that submitted it. While
the database is unreachable the waiters get `DatabaseUnavailable` and nothing of their
unit was committed.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Generic, TypeVar

import outcome
import trio

from odted.store.db import Conn, Database, DatabaseUnavailable
from odted.store.live import Writes, apply_writes

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["Committer", "Unit"]

Unit = Writes | Callable[[Conn], Awaitable[Any]]


class _Pending(Generic[T]):
    __slots__ = ("fn", "done", "result")

    def __init__(self, fn: Unit) -> None:
        self.fn = fn
        self.done = trio.Event()
        self.result: outcome.Outcome | None = None


class Committer:
    """Batches units of work into shared transactions. Start `run` in a nursery."""

    def __init__(self, db: Database, *, max_batch: int = 256, queue_size: int = 4096,
                 queue_wait: float = 5.0) -> None:
        self._db = db
        self._max_batch = max_batch
        self._queue_wait = queue_wait
        self._send, self._recv = trio.open_memory_channel[_Pending[Any]](queue_size)
        self.batches = 0
        self.units = 0
        self.largest_batch = 0

    async def commit(self, fn: Unit) -> Any:
        """Commit a unit in a group transaction; return its result (None for `Writes`).

        The caller is shielded while its unit is in flight: once handed to the writer, a
        unit is waited for to the end (committed or failed), so no caller ever leaves
        not knowing whether its write happened.
        """
        p: _Pending[Any] = _Pending(fn)
        try:
            try:
                self._send.send_nowait(p)
            except trio.WouldBlock:
                # A burst (thousands of sessions acting on one tick) waits its turn as long
                # as the writer keeps committing; a writer that commits nothing for
                # `queue_wait` seconds means an unavailable database.
                while True:
                    progress = self.batches
                    with trio.move_on_after(self._queue_wait) as waited:
                        await self._send.send(p)
                    if not waited.cancelled_caught:
                        break
                    if self.batches == progress:  # a cancelled send sent nothing
                        raise DatabaseUnavailable("the write queue is full") from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise DatabaseUnavailable("the writer is shutting down; nothing was committed") from None
        with trio.CancelScope(shield=True):
            await p.done.wait()
        assert p.result is not None
        return p.result.unwrap()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                first = await self._recv.receive()
                batch = [first]
                while len(batch) < self._max_batch:
                    try:
                        batch.append(self._recv.receive_nowait())
                    except trio.WouldBlock:
                        break
                with trio.CancelScope(shield=True):
                    await self._commit_batch(batch)
        finally:
            # Stopping (shutdown): nothing queued was committed; tell every waiter so,
            # or they would wait for ever (they wait shielded).
            self._send.close()
            stopped = DatabaseUnavailable("the writer is shutting down; nothing was committed")
            while True:
                try:
                    p = self._recv.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
                p.result = outcome.Error(stopped)
                p.done.set()

    async def _commit_batch(self, batch: list[_Pending[Any]]) -> None:
        self.batches += 1
        self.units += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        if len(batch) == 1:
            await self._commit_one(batch[0])
            return

        async def together(conn: Conn) -> list[Any]:
            merged = Writes()
            calls: list[tuple[int, Callable[[Conn], Awaitable[Any]]]] = []
            for i, p in enumerate(batch):
                if isinstance(p.fn, Writes):
                    merged.extend(p.fn)
                else:
                    calls.append((i, p.fn))
            await apply_writes(conn, merged)
            results: list[Any] = [None] * len(batch)
            for i, fn in calls:
                results[i] = await fn(conn)
            return results

        try:
            results = await self._db.run(together)
        except DatabaseUnavailable as e:
            for p in batch:
                p.result = outcome.Error(e)
                p.done.set()
            return
        except Exception:
            for p in batch:  # isolate the unit that failed; the rest commit on their own
                await self._commit_one(p)
            return
        for p, r in zip(batch, results):
            p.result = outcome.Value(r)
            p.done.set()

    async def _commit_one(self, p: _Pending[Any]) -> None:
        fn = p.fn
        try:
            if isinstance(fn, Writes):
                p.result = outcome.Value(await self._db.run(apply_writes, fn))
            else:
                p.result = outcome.Value(await self._db.run(fn))
        except Exception as e:
            p.result = outcome.Error(e)
        p.done.set()
