"""The one bridge between trio and asyncpg.

Every other module is trio-only. Here, an asyncio event loop runs on top of trio
(trio-asyncio) and a unit of work is one asyncio coroutine function that takes a
connection: `await db.run(fn, *args)` runs `fn(conn, *args)` inside a transaction on a
pooled connection, in a single crossing of the bridge. Repository modules write plain
asyncpg code in such functions and expose trio-facing wrappers.

Transient failures (the server restarting, a dropped connection, a serialization
conflict) are retried with tenacity, bounded in attempts and by `trio.fail_after`; a
unit of work runs in one transaction, so a retry never leaves anything half-done. When
the database stays unreachable, `DatabaseUnavailable` is raised; the API answers it
with `503 database_unavailable`.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import asyncpg
import tenacity
import trio
import trio_asyncio

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = [
    "Conn",
    "Database",
    "DatabaseUnavailable",
    "UniqueViolation",
    "ensure_database_exists",
    "open_bridge",
    "open_database",
]

Conn = asyncpg.Connection

PROBE_INTERVAL = 0.5
"""Seconds between checks of whether a database known to be down is back."""


UniqueViolation = asyncpg.UniqueViolationError
"""A unique constraint refused a write (its `constraint_name` says which)."""


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now; nothing was changed. Safe to retry."""


class PoolBusy(Exception):
    """No pooled connection came free in time: the database is busy, not unreachable."""


class ConnectionEnded(Exception):
    """The server ended the connection under a unit before the unit could commit.

    When PostgreSQL shuts down (or ends a backend) it sends a FATAL error and then
    closes the socket. If asyncpg reads the error before the close, on a connection with
    no statement in flight, its protocol is left consuming an error nobody asked for, and
    the next statement — often the COMMIT — is refused with `InternalClientError`
    ("cannot switch to state ...") before anything is sent. That is a dropped connection,
    not a bug: nothing of the unit was committed, so it is retried like one.
    """


_TRANSIENT = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.InterfaceError,
    ConnectionEnded,
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.exceptions.InterfaceError):
        # "cannot perform operation: another operation is in progress" is a bug, not weather.
        return "connection is closed" in str(exc) or "pool is closing" in str(exc)
    return isinstance(exc, _TRANSIENT)


async def _call(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
    return await fn(*args)


@asynccontextmanager
async def _checked_out(pool: asyncpg.Pool, timeout: float) -> AsyncIterator[Conn]:
    """A pooled connection for one unit (asyncio side of the bridge).

    A connection asyncpg refused to send on is closed, never handed out again, and the
    refusal becomes `ConnectionEnded`. Giving the connection back cannot change the
    unit's outcome: when resetting it fails, asyncpg closes it, and a unit that committed
    still returns its result (raising would have it retried, committing it twice).
    """
    try:
        conn = await pool.acquire(timeout=timeout)
    except asyncio.TimeoutError:
        raise PoolBusy from None  # every connection in use: busy, not down
    try:
        yield conn
    except asyncpg.exceptions.InternalClientError as e:
        conn.terminate()  # its protocol state is unknown: no one may use it again
        if str(e).startswith("cannot switch to state"):  # refused before sending anything
            raise ConnectionEnded(str(e)) from e
        raise
    finally:
        try:
            await pool.release(conn)
        except Exception as e:  # asyncpg closed it; the pool connects a new one when needed
            log.info("a connection could not be reset and was closed (%s: %s)", type(e).__name__, e)


class Database:
    """A pool of asyncpg connections, used from trio.

    Construct with `open_database`; it owns the trio-asyncio loop and closes the pool on
    exit.
    """

    def __init__(
        self,
        loop: trio_asyncio.TrioEventLoop,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 10,
        connect_timeout: float = 5.0,
        command_timeout: float = 10.0,
        retry_attempts: int = 3,
    ) -> None:
        self._loop = loop
        self.dsn = dsn
        self._min = min_size
        self._max = max_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._attempts = max(1, retry_attempts)
        self._pool: asyncpg.Pool | None = None
        self.healthy = False
        self.units_run = 0
        self.units_failed = 0
        self._last_probe = -PROBE_INTERVAL

    # -- bridge ---------------------------------------------------------------------

    async def aio(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run an asyncio coroutine function on the bridge, as is (no pool, no retry)."""
        return await self._loop.run_aio_coroutine(_call(fn, *args))

    async def connect(self) -> None:
        """Create the pool, retrying while the server is starting up."""
        async def create() -> asyncpg.Pool:
            return await asyncpg.create_pool(
                self.dsn,
                min_size=self._min,
                max_size=self._max,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                init=_init_connection,
                # No idle-connection timer: asyncpg arms one on every release and cancels it
                # on the next acquire; trio-asyncio keeps cancelled timers in its heap until
                # they fall due (300 s), so at a few thousand commits/s the heap held
                # hundreds of thousands of dead timers, costing memory and every loop pass.
                max_inactive_connection_lifetime=0,
            )

        self._pool = await self._retrying(
            lambda: self.aio(create), stop=tenacity.stop_after_delay(30), budget=30.0
        )
        self.healthy = True

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with trio.move_on_after(5, shield=True) as cs:
                await self.aio(pool.close)
            if cs.cancelled_caught:
                pool.terminate()

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any, transaction: bool = True) -> T:
        """Run `fn(conn, *args)` in one transaction on a pooled connection.

        Retries transient failures; raises `DatabaseUnavailable` when they persist.
        """
        if self._pool is None:
            raise DatabaseUnavailable("the database is not connected")
        if not self.healthy:
            await self._probe()
        pool = self._pool

        async def unit() -> T:
            async with _checked_out(pool, self._connect_timeout) as conn:
                if transaction:
                    async with conn.transaction():
                        return await fn(conn, *args)
                return await fn(conn, *args)

        return await self._retrying(
            lambda: self.aio(unit),
            stop=tenacity.stop_after_attempt(self._attempts),
            budget=self._command_timeout * self._attempts,
        )

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async def q(conn: Conn) -> Any:
            return await conn.fetchval(sql, *args)

        return await self.run(q, transaction=False)

    async def _probe(self) -> None:
        """While the database is down, fail fast: at most one quick ping per
        `PROBE_INTERVAL` decides whether a unit of work is even tried."""
        now = trio.current_time()
        if now - self._last_probe < PROBE_INTERVAL:
            raise DatabaseUnavailable("the database is unreachable")
        self._last_probe = now
        if not await self.ping():
            raise DatabaseUnavailable("the database is unreachable")
        log.info("the database is reachable again")

    async def ping(self) -> bool:
        """True when the server answers `SELECT 1` within a second."""
        if self._pool is None:
            return False
        pool = self._pool

        async def q() -> Any:
            async with _checked_out(pool, 1.0) as conn:
                return await conn.fetchval("SELECT 1", timeout=1.0)

        try:
            with trio.fail_after(1.5):
                ok = await self.aio(q) == 1
        except PoolBusy:
            ok = True  # every connection is in use, so the server is answering them
        except (trio.TooSlowError, *_TRANSIENT):
            ok = False
        self.healthy = ok
        return ok

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """Hold one connection for a sequence of bridged calls (LISTEN, COPY streams)."""
        if self._pool is None:
            raise DatabaseUnavailable("the database is not connected")
        conn = await self.aio(self._pool.acquire)
        try:
            yield conn
        finally:
            with trio.move_on_after(5, shield=True):
                await self.aio(self._pool.release, conn)

    # -- retry ----------------------------------------------------------------------

    async def _retrying(
        self, attempt: Callable[[], Awaitable[T]], *, stop: tenacity.stop.stop_base, budget: float
    ) -> T:
        retryer = tenacity.AsyncRetrying(
            sleep=trio.sleep,
            stop=stop,
            wait=tenacity.wait_exponential_jitter(multiplier=0.05, max=1.0),
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, PoolBusy) or is_transient(e)),
            reraise=True,
        )
        try:
            with trio.fail_after(budget + 1):
                async for try_ in retryer:
                    with try_:
                        result = await attempt()
                        self.units_run += 1
                        self.healthy = True
                        return result
        except trio.TooSlowError:
            self.units_failed += 1
            if self.healthy and not await self.ping():
                log.warning("the database is unreachable (no answer in time): failing fast until it answers")
            raise DatabaseUnavailable("the database did not answer in time") from None
        except PoolBusy:
            raise DatabaseUnavailable("the database is busy; nothing changed, retry") from None
        except Exception as e:
            if is_transient(e):
                self.units_failed += 1
                # Only a server that does not answer a ping is down: a statement that
                # timed out under load leaves it up (this unit still failed: retry it).
                if self.healthy and not await self.ping():
                    log.warning("the database is unreachable (%s): failing fast until it answers", type(e).__name__)
                raise DatabaseUnavailable(f"the database did not complete the work: {type(e).__name__}") from e
            raise
        raise AssertionError("unreachable")  # pragma: no cover


async def _init_connection(conn: asyncpg.Connection) -> None:
    # NUMERIC round-trips as Decimal by default; JSON/JSONB as text (callers decode with msgspec).
    await conn.execute("SET TIME ZONE 'UTC'")


@asynccontextmanager
async def open_bridge() -> AsyncIterator[Any]:
    """The asyncio loop on top of trio that every `Database` of this process runs on."""
    async with trio_asyncio.open_loop() as loop:
        _compact_cancelled_timers(loop)
        yield loop


def _compact_cancelled_timers(loop: Any) -> None:
    """Drop cancelled timers from the bridge loop's heap once they are most of it.

    asyncpg arms a timer for every statement's `command_timeout` and cancels it when the
    answer comes. trio-asyncio keeps a cancelled timer in its heap until it falls due, so
    at thousands of statements a second the heap holds tens of thousands of dead timers
    (memory, and a comparison per push and pop). asyncio's own loop compacts its heap
    when cancelled timers are more than half of it; this gives trio-asyncio's loop the
    same, through the hook `TimerHandle.cancel` calls (`_timer_handle_cancelled`). A
    loop without the heap this expects is left alone.
    """
    timers = getattr(loop, "_timers", None)
    if not isinstance(timers, list) or not hasattr(loop, "_timer_handle_cancelled"):
        return
    cancelled = 0

    def on_cancel(handle: Any) -> None:
        nonlocal cancelled
        cancelled += 1
        if cancelled > 256 and cancelled * 2 > len(timers):
            timers[:] = [t for t in timers if not t.cancelled()]
            heapq.heapify(timers)
            cancelled = 0

    loop._timer_handle_cancelled = on_cancel


@asynccontextmanager
async def open_database(dsn: str, *, loop: Any = None, **options: Any) -> AsyncIterator[Database]:
    """A connected pool on `loop` (a new bridge loop when None); closed on exit."""
    if loop is None:
        async with open_bridge() as loop:
            async with open_database(dsn, loop=loop, **options) as db:
                yield db
        return
    db = Database(loop, dsn, **options)
    await db.connect()
    try:
        yield db
    finally:
        await db.close()


async def ensure_database_exists(loop: Any, admin_dsn: str, name: str) -> bool:
    """Create database `name` through `admin_dsn` unless it exists; True when created."""
    async def create() -> bool:
        conn = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                return False
            await conn.execute(f'CREATE DATABASE "{name}"')
            return True
        finally:
            await conn.close()

    return await loop.run_aio_coroutine(_call(create))
