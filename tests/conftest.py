"""Shared fixtures: one embedded PostgreSQL per test run, a fresh database per test
(cloned from a migrated template), and the real app served on an ephemeral loopback port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import httpx
import pytest
import trio

from odted import __version__
from odted.api.app import create_app
from odted.api.services import Services, StaticTokens
from odted.config import Config, load_config
from odted.daemon import hypercorn_config
from odted.metrics import Registry
from odted.store import migrate
from odted.store.db import Database, ensure_database_exists, open_bridge, open_database
from odted.store.embedded import EmbeddedPostgres

import hypercorn.trio

TEMPLATE_DB = "odted_template"
ROOT = Path(__file__).resolve().parent.parent
ODTED = str(Path(sys.executable).parent / "odted")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """The run's PostgreSQL server (not durable: fsync off, for speed)."""
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), durable=False)
    pg.start()
    try:
        trio.run(_prepare_template, pg)
        yield pg
    finally:
        pg.stop()


async def _prepare_template(pg: EmbeddedPostgres) -> None:
    async with open_bridge() as loop:
        await ensure_database_exists(loop, pg.dsn("postgres"), TEMPLATE_DB)
        async with open_database(pg.dsn(TEMPLATE_DB), loop=loop, min_size=1, max_size=1) as db:
            await migrate.migrate(db)


@pytest.fixture
def make_database(pg_server: EmbeddedPostgres) -> Callable[..., Any]:
    """Create a fresh, migrated database; returns its DSN."""

    async def make(loop: Any, *, migrated: bool = True) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        template = TEMPLATE_DB if migrated else "template0"

        async def create() -> None:
            import asyncpg

            conn = await asyncpg.connect(pg_server.dsn("postgres"))
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            finally:
                await conn.close()

        async def run() -> None:
            await create()

        await loop.run_aio_coroutine(run())
        return pg_server.dsn(name)

    return make


@pytest.fixture
async def bridge() -> AsyncIterator[Any]:
    async with open_bridge() as loop:
        yield loop


@pytest.fixture
async def db(bridge: Any, make_database: Callable[..., Any]) -> AsyncIterator[Database]:
    """A connected pool on a fresh, migrated database of its own."""
    dsn = await make_database(bridge)
    async with open_database(dsn, loop=bridge, min_size=1, max_size=8, retry_attempts=2) as database:
        yield database


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(None, env={}, overrides={
        "state.dir": str(tmp_path / "state"),
        "server.bind": "127.0.0.1:0",
        "auth.static_tokens": ["test-token"],
    })


@pytest.fixture
async def services(config: Config, db: Database) -> Services:
    return Services(
        config=config, db=db, metrics=Registry(), started_at=datetime.now(timezone.utc),
        auth=StaticTokens(config.auth.static_tokens), version=__version__,
    )


@pytest.fixture
async def server(services: Services) -> AsyncIterator[str]:
    """The real app under hypercorn on an ephemeral loopback port; yields the base URL."""
    app = create_app(services)
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: hypercorn.trio.serve(
                app, hypercorn_config(services.config), shutdown_trigger=shutdown.wait, task_status=task_status
            )
        )
        yield binds[0]
        shutdown.set()


@pytest.fixture
async def client(server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=10) as c:
        yield c


# -- daemon subprocesses --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DaemonProcess:
    """`odted serve` as a subprocess, with its log captured to a file."""

    def __init__(self, state_dir: Path, *, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = state_dir.parent / f"daemon-{self.port}.log"
        self.env = {**os.environ, **(env or {})}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> DaemonProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [ODTED, "serve", "--state-dir", str(self.state_dir), "--bind", f"127.0.0.1:{self.port}", *self.args],
            stdout=logf, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT,
        )
        logf.close()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"daemon not healthy in {timeout}s:\n{self.log()}")

    def terminate(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop_quietly(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def daemon_factory(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    made: list[DaemonProcess] = []

    def make(state_dir: Path | None = None, **kwargs: Any) -> DaemonProcess:
        d = DaemonProcess(state_dir or tmp_path / "state", **kwargs)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop_quietly()
