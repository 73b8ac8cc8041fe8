"""Helpers for fault tests: a daemon with a token and a fixed synthetic day, a client
that retries like a careful trading client."""

from __future__ import annotations

import time

import httpx

TOKEN = "fault-test-token"
H = {"Authorization": TOKEN}
DAY = "2025-01-15"
CALL = "SPXW  250115C05950000"


def daemon_env(**extra: str) -> dict[str, str]:
    return {
        "ODTED_AUTH_STATIC_TOKENS": f'["{TOKEN}"]',
        "ODTED_FEED_SYNTHETIC_DATE": DAY,
        "ODTED_FEED_SYNTHETIC_START_TIME": "10:00:00",
        "ODTED_LOGGING_LEVEL": "warning",
        "ODTED_RATELIMIT_USER_CAPACITY": "1000000",
        "ODTED_RATELIMIT_USER_REFILL_PER_SECOND": "1000000",
        "ODTED_RATELIMIT_CLIENT_CAPACITY": "1000000",
        "ODTED_RATELIMIT_CLIENT_REFILL_PER_SECOND": "1000000",
        **extra,
    }


def market_order(action: str = "buy to open") -> dict:
    return {"type": "market", "legs": [{"instrument": CALL, "quantity": "1", "action": action}]}


def wait_until(cond, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(interval)
    return cond()


def ok_or_none(fn):
    try:
        return fn()
    except httpx.HTTPError:
        return None
