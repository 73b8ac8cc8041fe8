"""The server ending a connection under a unit of work — its FATAL goodbye when it shuts
down — is weather: the unit is retried on a fresh connection, or the caller gets
`DatabaseUnavailable`; never a raw asyncpg error (an actor takes that for a bug and
crashes), and never a second run of a unit that already committed.

PostgreSQL sends the goodbye and then closes the socket. When asyncpg reads the
goodbye before the close, its protocol is left consuming an error nobody asked for, and
the unit's next statement fails with `InternalClientError` ("another operation is in
progress") instead of a connection error. A proxy that holds the close back for a moment
makes that ordering certain.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlparse

import asyncpg
import pytest
import trio

from odted.store.db import Database, DatabaseUnavailable, open_database
from odted.store.embedded import PORT

HOLD_CLOSE = 0.5


async def _pump(source: trio.abc.Stream, sink: trio.abc.Stream, hold_close: float) -> None:
    try:
        while data := await source.receive_some(65536):
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the peer went away, or the other direction closed this stream
    await trio.sleep(hold_close)
    await sink.aclose()


async def _serve_proxy(unix_path: str, *, task_status: trio.TaskStatus[int]) -> None:
    """Forward TCP connections to PostgreSQL's socket; pass the server's close on late."""
    async def handle(client: trio.SocketStream) -> None:
        server = await trio.open_unix_socket(unix_path)
        async with trio.open_nursery() as n:
            n.start_soon(_pump, client, server, 0)
            n.start_soon(_pump, server, client, HOLD_CLOSE)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as n:
        n.start_soon(trio.serve_listeners, handle, listeners)
        task_status.started(port)


@pytest.fixture
async def proxied(bridge: Any, make_database: Any, pg_server: Any, nursery: trio.Nursery) -> Any:
    direct = await make_database(bridge)
    port = await nursery.start(_serve_proxy, str(pg_server.socket_dir / f".s.PGSQL.{PORT}"))
    name = urlparse(direct).path.lstrip("/")
    async with open_database(f"postgresql://postgres@127.0.0.1:{port}/{name}?sslmode=disable",
                             loop=bridge, min_size=1, max_size=2, retry_attempts=3) as db:
        await db.fetchval("CREATE TABLE t (x int)")
        yield db, direct


async def _end_my_backend(conn: asyncpg.Connection, direct: str) -> None:
    """Have the server end `conn` (as a shutdown does) and wait until its goodbye is in."""
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    admin = await asyncpg.connect(direct)
    try:
        await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await asyncio.sleep(HOLD_CLOSE / 5)  # the FATAL is read; the close is still held back


@pytest.mark.parametrize("ended_before", ["a statement", "the commit"])
async def test_a_unit_whose_connection_the_server_ended_is_retried_on_a_fresh_one(proxied, ended_before):
    db: Database
    db, direct = proxied
    attempts = 0

    async def unit(conn: asyncpg.Connection) -> int:
        nonlocal attempts
        attempts += 1
        await conn.execute("INSERT INTO t VALUES ($1)", attempts)
        if attempts == 1:
            await _end_my_backend(conn, direct)
        if ended_before == "a statement":
            await conn.execute("INSERT INTO t VALUES ($1)", attempts)
        return attempts

    with trio.fail_after(10):
        assert await db.run(unit) == 2
    rows = [r[0] for r in await db.run(lambda conn: conn.fetch("SELECT x FROM t ORDER BY x"))]
    assert rows == ([2, 2] if ended_before == "a statement" else [2]), "the first attempt left nothing"


async def test_a_unit_that_committed_is_not_run_again_when_its_connection_ends_before_release(proxied):
    db: Database
    db, direct = proxied
    attempts = 0

    async def unit(conn: asyncpg.Connection) -> str:
        nonlocal attempts
        attempts += 1
        await conn.execute("INSERT INTO t VALUES ($1)", attempts)  # autocommit
        await _end_my_backend(conn, direct)
        return "committed"

    with trio.fail_after(10):
        assert await db.run(unit, transaction=False) == "committed"
    assert attempts == 1
    assert await db.fetchval("SELECT count(*) FROM t") == 1


async def test_an_idle_pooled_connection_the_server_ended_fails_neither_a_ping_nor_the_next_unit(proxied):
    db: Database
    db, direct = proxied
    pid = await db.fetchval("SELECT pg_backend_pid()")  # its connection goes back to the pool

    async def terminate() -> None:
        admin = await asyncpg.connect(direct)
        try:
            await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()

    await db.aio(terminate)
    await trio.sleep(HOLD_CLOSE / 5)  # the FATAL is read; the close is still held back
    with trio.fail_after(5):
        assert isinstance(await db.ping(), bool)  # down or up, but an answer
        while True:
            try:
                assert await db.fetchval("SELECT pg_backend_pid()") != pid
                break
            except DatabaseUnavailable:  # failing fast for a probe interval after a "down" ping
                await trio.sleep(0.05)
