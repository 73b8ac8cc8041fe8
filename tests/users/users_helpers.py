"""Helpers for the users tests: a controllable clock, reading codes from the outbox, and
the email-code flow over HTTP."""

from __future__ import annotations

import email
import email.policy
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from odted.config import Config

ROOT = Path(__file__).resolve().parents[2]
ODTED = str(Path(sys.executable).parent / "odted")
PASSWORD = "correct-horse-battery"


class FakeClock:
    """Wall time (UTC) and monotonic time that move only when told to."""

    def __init__(self) -> None:
        self.wall = datetime(2025, 1, 15, 14, 30, tzinfo=timezone.utc)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


def outbox(config: Config) -> Path:
    return config.state_dir / "outbox"


def read_code(config: Config, to: str) -> str:
    """The code in the newest message to `to` in the outbox."""
    files = sorted(outbox(config).glob("*.eml"))
    for path in reversed(files):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["To"] == to:
            body = msg.get_content()
            m = re.search(r"\b(\d{6})\b", body)
            assert m, body
            return m.group(1)
    raise AssertionError(f"no message to {to} in {[p.name for p in files]}")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": token}


async def request_code(client: httpx.AsyncClient, config: Config, to: str) -> str:
    r = await client.post("/auth/verify-email", json={"email": to})
    assert r.status_code == 204, r.text
    return read_code(config, to.strip().lower())


async def sign_up(client: httpx.AsyncClient, config: Config, to: str, password: str | None = PASSWORD) -> str:
    """Register `to` through the code flow; its token."""
    code = await request_code(client, config, to)
    body: dict[str, Any] = {"email": to, "verification_code": code}
    if password is not None:
        body["password"] = password
    r = await client.post("/auth/register", json=body)
    assert r.status_code == 201, r.text
    return r.json()["token"]
