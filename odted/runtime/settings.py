"""Each user's effective fee schedule and slippage, held in memory for the actors.

Fills and fee estimates happen synchronously on ticks, so actors read settings from this
cache, never from the database. An actor `ensure`s its user's entry when it loads; the
user API `put`s the new settings after `PATCH /user` commits, so the new schedule applies
to every one of the user's simulations from the next fill on (api-walkthrough 2.6).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Awaitable, Callable
from uuid import UUID

from odted.domain.fees import FeeSchedule

__all__ = ["UserSettingsCache", "Settings", "settings_cache_for"]

Settings = tuple[FeeSchedule, Decimal]
Loader = Callable[[UUID], Awaitable[Settings | None]]


class UserSettingsCache:
    def __init__(self, loader: Loader, *, default_slippage: Decimal) -> None:
        self._loader = loader
        self._default = (FeeSchedule.default(), default_slippage)
        self._by_user: dict[UUID, Settings] = {}
        self.version = 0  # bumped by every `put`: a quiet actor's watch ends with it (runtime.watch)

    async def ensure(self, user_id: UUID) -> Settings:
        got = self._by_user.get(user_id)
        if got is None:
            loaded = await self._loader(user_id)
            got = self._by_user[user_id] = loaded if loaded is not None else self._default
        return got

    def get(self, user_id: UUID) -> Settings:
        """The settings of a user whose entry was ensured (the defaults otherwise)."""
        return self._by_user.get(user_id, self._default)

    def put(self, user_id: UUID, fees: FeeSchedule, slippage: Decimal) -> None:
        self._by_user[user_id] = (fees, slippage)
        self.version += 1


def settings_cache_for(users: Any) -> UserSettingsCache:
    """A cache loading from the users service and kept current by its settings listeners."""

    async def load(user_id: UUID) -> Settings | None:
        got = await users.store.settings(user_id)
        return None if got is None else (got.fee_schedule, got.slippage)

    cache = UserSettingsCache(load, default_slippage=users.store.default_slippage)
    users.settings_listeners.append(lambda uid, s: cache.put(uid, s.fee_schedule, s.slippage))
    return cache
