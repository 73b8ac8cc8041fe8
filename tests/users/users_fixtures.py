"""Fixtures for users (imported by each test module: a conftest.py here would shadow the
root one for `from conftest import ...`): the injectable clock, and the real `Users` service
(with that clock and cheap argon2 parameters) behind the real app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from odted import __version__
from odted.api.ratelimit import RateLimits
from odted.api.services import Services
from odted.api.users import Users
from odted.config import Config, load_config
from odted.metrics import Registry
from odted.store.db import Database
from users_helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Extra settings for a test: `@pytest.mark.parametrize("config_overrides", [{...}])`."""
    return {}


@pytest.fixture
def config(tmp_path: Path, config_overrides: dict[str, Any]) -> Config:
    return load_config(None, env={}, overrides={
        "state.dir": str(tmp_path / "state"),
        "server.bind": "127.0.0.1:0",
        **config_overrides,
    })


@pytest.fixture
async def services(config: Config, db: Database, clock: FakeClock) -> Services:
    limits = RateLimits(config.ratelimit, clock=clock.monotonic)
    # Cheap argon2 parameters: the tests exercise the flow, not the KDF's cost.
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    users = Users.build(config, db, limits, hasher=hasher, now=clock.now, clock=clock.monotonic)
    return Services(
        config=config, db=db, metrics=Registry(), started_at=clock.now(), auth=users.authenticator,
        version=__version__, ratelimits=limits, users=users,
    )


