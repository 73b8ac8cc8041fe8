"""Per-second financial history, written in batches.

Actors hand a history row to the writer whenever a simulation's financials change from
one second to the next (a step function: a second with no change writes nothing, and
reads fill the gaps forward). The writer flushes everything gathered once a second (or
when `max_rows` are waiting) in one `executemany`, off the actors' path. A day run at
`max` speed makes rows far faster than real time; the engine awaits `wait_room` before
each tick then, so the rows held stay bounded (about twice `max_rows` plus a tick's)
instead of growing with the backlog of the database, while a tick's rows are written
during the next tick rather than before it. History is derived data: after a crash the
seconds not yet flushed are rewritten from the next change on.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from uuid import UUID

import trio

import msgspec

from odted.domain.ledger import HistoryRow
from odted.store import live as repo
from odted.store.db import Database, DatabaseUnavailable

log = logging.getLogger(__name__)

__all__ = ["HistoryWriter"]

_encode = msgspec.json.Encoder(decimal_format="string").encode


class HistoryWriter:
    def __init__(self, db: Database, *, interval: float = 1.0, max_rows: int = 10_000) -> None:
        self._db = db
        self._interval = interval
        self._max_rows = max_rows
        self._rows: list[tuple[UUID, datetime, tuple[Decimal, ...]]] = []
        self._wake = trio.Event()
        self._flushed = trio.Event()  # set (and replaced) after every flush attempt
        self._flush_lock = trio.Lock()
        self._taken = trio.Event()  # set (and replaced) whenever a flush takes the rows waiting
        self._running = False
        self.written = 0
        self.dropped = 0

    def add(self, sim_id: UUID, ts: datetime, values: tuple[Decimal, ...]) -> None:
        """Queue the row of `sim_id` at second `ts` (`Book.history_values()`)."""
        self._rows.append((sim_id, ts, values))
        if len(self._rows) >= self._max_rows and self._running:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Rows waiting for a flush."""
        return len(self._rows)

    async def wait_room(self) -> None:
        """With `max_rows` waiting, start a flush; wait only if one is still under way (the
        database is not keeping up). A producer that calls this between batches never
        waits on a flush it started itself, and the rows held (being written and waiting)
        stay within about twice `max_rows` plus its batches."""
        if len(self._rows) >= self._max_rows and self._running:
            self._wake.set()
            if self._flush_lock.locked():
                await self._flushed.wait()
            else:
                await self._taken.wait()  # until the writer has taken the rows and started

    async def flush(self) -> None:
        """Write the rows waiting. Flushes run one at a time, so when this returns every row
        added before the call has been written (or, the database being down, kept or
        dropped as `_flush` says), even if another flush was under way."""
        async with self._flush_lock:
            try:
                await self._flush()
            finally:
                self._flushed.set()
                self._flushed = trio.Event()

    async def _flush(self) -> None:
        rows, self._rows = self._rows, []
        self._taken.set()
        self._taken = trio.Event()
        if not rows:
            return
        docs = [(sid, ts, _encode(HistoryRow.of(ts, values))) for sid, ts, values in rows]
        try:
            await self._db.run(repo.insert_history, docs)
            self.written += len(rows)
        except DatabaseUnavailable:
            # Keep the newest rows for the next try, bounded: history is derived data.
            kept = (rows + self._rows)[-self._max_rows * 4:]
            self.dropped += len(rows) + len(self._rows) - len(kept)
            self._rows = kept
        except Exception:
            log.exception("dropping %d history rows that could not be written", len(rows))
            self.dropped += len(rows)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        self._running = True
        try:
            while True:
                with trio.move_on_after(self._interval):
                    await self._wake.wait()
                self._wake = trio.Event()
                await self.flush()
        finally:
            self._running = False
            with trio.move_on_after(5, shield=True):
                await self.flush()
