"""The bots fixture: the live-trading environment (it runs the runtime's `BotService`)."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

__all__ = ["bots_env"]


@pytest.fixture
async def bots_env(live_env) -> AsyncIterator:
    assert live_env.services.bots is not None
    yield live_env
