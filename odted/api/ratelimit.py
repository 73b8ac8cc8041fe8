"""Rate limits: in-memory credit buckets, one per user, per client address, per email.

A bucket holds up to `capacity` credits and regains `refill_per_second` of them
continuously. A request takes its route's cost (`Api.route(..., cost=N)`: 1 by default
for routes that take a token, 5 for a strike chain, more for heavier reads; 0 is free);
when the bucket holds less than the cost, nothing is taken and the request is answered
`429 rate_limited` with `Retry-After` (whole seconds until the cost is available).

- Requests with a token are charged to the user's bucket (`ratelimit.user_*`);
  `GET /user` reports its fill as `usage_percent` (0: full credit, 100: empty).
- Requests without one (the `/auth/*` routes, a token that does not authenticate) are
  charged to the client address (`ratelimit.client_*`).
- Failed password and verification-code submissions are charged to the email
  (`ratelimit.login_failures` per `ratelimit.login_failure_window` seconds), so guessing
  is bounded however many addresses a guesser has.

Buckets live in this process only; an idle bucket refills completely and is forgotten.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Hashable

from odted.api.errors import ApiError
from odted.api.services import Principal
from odted.config import RateLimitConfig

__all__ = ["CreditBuckets", "RateLimits", "retry_after_header"]

_SWEEP_AT = 50_000  # buckets remembered before full ones are forgotten


class CreditBuckets:
    """Credit buckets by key, refilled continuously on the `clock` (seconds)."""

    def __init__(self, capacity: float, refill_per_second: float, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity <= 0 or refill_per_second <= 0:
            raise ValueError("capacity and refill rate must be positive")
        self.capacity = float(capacity)
        self.refill_per_second = float(refill_per_second)
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (credits, as of)

    def level(self, key: Hashable) -> float:
        """The credits `key` holds now."""
        now = self._clock()
        entry = self._buckets.get(key)
        if entry is None:
            return self.capacity
        credits, at = entry
        return min(self.capacity, credits + (now - at) * self.refill_per_second)

    def take(self, key: Hashable, cost: float = 1.0) -> float:
        """Take `cost` credits from `key`: 0.0 when taken, else the seconds until they are there.

        A cost above the capacity is taken from a full bucket (it would never fit otherwise).
        """
        level = self.level(key)
        need = min(float(cost), self.capacity)
        if level + 1e-9 < need:
            return (need - level) / self.refill_per_second
        self._store(key, max(0.0, level - cost))
        return 0.0

    def spend(self, key: Hashable, cost: float = 1.0) -> None:
        """Take `cost` credits whatever the level (down to empty): for charges after the fact."""
        self._store(key, max(0.0, self.level(key) - cost))

    def wait_time(self, key: Hashable, cost: float = 1.0) -> float:
        """Seconds until `key` holds `cost` credits (0.0: it does now)."""
        return max(0.0, (min(float(cost), self.capacity) - self.level(key)) / self.refill_per_second)

    def usage_percent(self, key: Hashable) -> int:
        """How much of the bucket is used, 0 (full credit) to 100 (empty), rounded."""
        used = 1.0 - self.level(key) / self.capacity
        return max(0, min(100, int(used * 100 + 0.5)))

    def __len__(self) -> int:
        return len(self._buckets)

    def _store(self, key: Hashable, credits: float) -> None:
        self._buckets.pop(key, None)  # re-insert: the dict stays ordered by last use
        self._buckets[key] = (credits, self._clock())
        if len(self._buckets) > _SWEEP_AT:
            self._sweep()

    def _sweep(self) -> None:
        """Forget full buckets (they are indistinguishable from new ones), then the oldest."""
        for key in [k for k in self._buckets if self.level(k) >= self.capacity]:
            del self._buckets[key]
        excess = len(self._buckets) - _SWEEP_AT // 2
        if excess > 0:
            for key in list(self._buckets)[:excess]:
                del self._buckets[key]


def retry_after_header(seconds: float) -> dict[str, str]:
    """`Retry-After` in whole seconds, never 0."""
    return {"Retry-After": str(max(1, math.ceil(seconds - 1e-9)))}


class RateLimits:
    """The daemon's buckets: per user, per client address, per email for failed logins."""

    def __init__(self, config: RateLimitConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.users = CreditBuckets(config.user_capacity, config.user_refill_per_second, clock=clock)
        self.clients = CreditBuckets(config.client_capacity, config.client_refill_per_second, clock=clock)
        self.login_failures = CreditBuckets(config.login_failures,
                                            config.login_failures / config.login_failure_window, clock=clock)

    def charge(self, principal: Principal | None, client: str | None, cost: int) -> None:
        """Charge a request to its user (or, without one, its client address); 429 when short."""
        if cost <= 0:
            return
        if principal is not None:
            wait = self.users.take(principal.user_id, cost)
        else:
            wait = self.clients.take(client or "unknown", cost)
        if wait:
            raise ApiError(429, "rate_limited",
                           f"this request costs {cost} credit(s); retry in {math.ceil(wait)} s",
                           {"cost": cost}, headers=retry_after_header(wait))

    def usage_percent(self, user_id: str) -> int:
        return self.users.usage_percent(user_id)

    def check_login(self, email: str) -> None:
        """429 when `email` has used up its failed-login budget."""
        if self.login_failures.level(email) < 1.0:
            wait = self.login_failures.wait_time(email, 1.0)
            raise ApiError(429, "too_many_failures",
                           f"too many failed attempts for this email; retry in {math.ceil(wait)} s",
                           headers=retry_after_header(wait))

    def login_failed(self, email: str) -> None:
        self.login_failures.spend(email, 1.0)
