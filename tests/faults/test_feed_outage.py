"""Feed outage: a daemon fed over the upstream WebSocket by a second odted. The upstream
dies: /ready turns 503 and the feed reports it is not connected; the upstream comes back:
ticks flow again, /ready is 200, and no tick older than one already seen is republished."""

from __future__ import annotations

import time

import httpx
import pytest

from faults_helpers import TOKEN, daemon_env, wait_until

pytestmark = pytest.mark.slow


def feed_state(url: str) -> dict:
    return httpx.get(f"{url}/status", timeout=5).json()["sections"]["feed"]


def test_an_upstream_outage_turns_ready_503_and_recovers_without_replaying_old_ticks(daemon_factory, tmp_path):
    upstream = daemon_factory(tmp_path / "upstream", env=daemon_env()).start()
    ws = upstream.url.replace("http://", "ws://") + "/__ws"
    down_env = daemon_env(ODTED_FEED_SOURCE="upstream", ODTED_FEED_UPSTREAM_URL=ws,
                          ODTED_FEED_UPSTREAM_TOKEN=TOKEN, ODTED_FEED_STALE_AFTER_MS="2000",
                          ODTED_FEED_UPSTREAM_SILENCE_TIMEOUT="2", ODTED_FEED_UPSTREAM_RECONNECT_MAX="1")
    d = daemon_factory(tmp_path / "downstream", env=down_env).start()
    assert wait_until(lambda: httpx.get(f"{d.url}/ready").status_code == 200, timeout=30), \
        httpx.get(f"{d.url}/ready").text
    before = feed_state(d.url)
    assert before["connected"] is True and before["seq"]

    upstream.kill()  # the upstream connection drops and no tick arrives
    stale = wait_until(lambda: httpx.get(f"{d.url}/ready").status_code == 503, timeout=20)
    assert stale, "ready turns 503 while market data is stale"
    reasons = httpx.get(f"{d.url}/ready").json()["reasons"]
    assert any(r.startswith("market data") for r in reasons), reasons
    assert wait_until(lambda: feed_state(d.url)["connected"] is False, timeout=20)
    last_seen = feed_state(d.url)["last_tick_ts"]

    up2 = daemon_factory(tmp_path / "upstream", env=daemon_env())
    up2.port = upstream.port  # the same address: the downstream reconnects to it
    up2.url = upstream.url
    up2.start()
    assert wait_until(lambda: httpx.get(f"{d.url}/ready").status_code == 200, timeout=30), \
        httpx.get(f"{d.url}/ready").text
    after = feed_state(d.url)
    assert after["connected"] is True
    assert after["last_tick_ts"] > last_seen, "a reconnect never republishes an older tick as new"
    assert d.terminate() == 0 and up2.terminate() == 0
