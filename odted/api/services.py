"""What the API needs from the rest of the daemon, built by the daemon and passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

from odted.config import Config
from odted.metrics import Registry
from odted.store.db import Database

if TYPE_CHECKING:
    from odted.api.ratelimit import RateLimits
    from odted.api.users import Users

__all__ = ["Services", "Principal", "Authenticator", "StaticTokens"]


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: `user_id` is the account's UUID string; `token_id` the hex
    SHA-256 of the token it came with (None for an operator token)."""

    user_id: str
    email: str | None = None
    token_id: str | None = None


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None: ...


class StaticTokens:
    """Operator tokens from `auth.static_tokens`; each is its own principal."""

    def __init__(self, tokens: list[str]) -> None:
        import hashlib
        import hmac

        self._hmac = hmac
        self._digests = {hashlib.sha256(t.encode()).hexdigest(): i for i, t in enumerate(tokens)}
        self._sha = hashlib.sha256

    async def authenticate(self, token: str) -> Principal | None:
        digest = self._sha(token.encode()).hexdigest()
        for known, i in self._digests.items():
            if self._hmac.compare_digest(known, digest):
                return Principal(user_id=f"static-{i}")
        return None


@dataclass
class Services:
    config: Config
    db: Database
    metrics: Registry
    started_at: datetime
    auth: Authenticator
    version: str
    # Market data, filled in by the daemon when a feed runs.
    market: Any = None
    # Extra readiness checks: name -> async fn returning None (ok) or a reason.
    readiness: dict[str, Callable[[], Awaitable[str | None]]] = field(default_factory=dict)
    # Extra /status sections: name -> fn returning a msgspec-encodable value.
    status: dict[str, Callable[[], Any]] = field(default_factory=dict)
    # Rate-limit buckets and the accounts service; built from `config` when not given.
    ratelimits: RateLimits = None  # type: ignore[assignment]
    users: Users = None  # type: ignore[assignment]
    # Live trading (odted.runtime.service.LiveService), when the daemon runs it.
    live: Any = None
    # Bot sessions (odted.runtime.bots.BotService), when the daemon runs live trading.
    bots: Any = None
    # The /__ws hub (odted.api.ws.WebSocketHub): register channels on it before serving.
    ws_hub: Any = None

    def __post_init__(self) -> None:
        from odted.api.ratelimit import RateLimits
        from odted.api.users import Users

        if self.ratelimits is None:
            self.ratelimits = RateLimits(self.config.ratelimit)
        if self.users is None:
            self.users = Users.build(self.config, self.db, self.ratelimits)
        if self.ws_hub is None:
            from odted.api.ws import WebSocketHub

            self.ws_hub = WebSocketHub.from_config(self.config)
