"""/__ws under abuse: a flood of subscribe messages, and 10,000 connections opened and
closed, leave nothing behind (connections, subscribers, tasks, file descriptors)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import msgspec
import pytest
import trio
import trio.testing
import trio_websocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "market_data"))

from md_fixtures import TOKEN, calendar, config, hub, market, ticks_of, ws_url  # noqa: E402,F401 - fixtures

CHAIN = "live_option_chain"
AGG = "live_aggregate_data"


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked(cushion=0.02)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_thousands_of_subscribe_messages_keep_one_subscription_and_the_server_answers(
        server, hub, market, calendar, nursery):
    ws = await trio_websocket.connect_websocket_url(nursery, ws_url(server))
    await ws.send_message(msgspec.json.encode({"token": TOKEN}).decode())
    for i in range(5000):
        which = [CHAIN, AGG] if i % 2 else [AGG]
        await ws.send_message(msgspec.json.encode({"action": "subscribe", "channels": which}).decode())
        if i % 7 == 0:
            await ws.send_message("{not json")
    await settle()
    assert hub.channel(CHAIN).subscribers == 1 and hub.channel(AGG).subscribers == 1
    tick = ticks_of(calendar, n=1)[0]
    market.bus.publish(tick)
    with trio.fail_after(10):
        got = {msgspec.json.decode(await ws.get_message())["channel"] for _ in range(2)}
    assert got == {CHAIN, AGG}, "one frame per channel per tick, however many subscribes"
    await ws.aclose()


@pytest.mark.slow
async def test_ten_thousand_connect_disconnect_cycles_leak_nothing(server, hub, market, calendar, nursery):
    url = ws_url(server)

    async def cycle(n: int) -> None:
        ws = await trio_websocket.connect_websocket_url(nursery, url)
        if n % 2:
            await ws.send_message(msgspec.json.encode({"token": TOKEN}).decode())
            await ws.send_message(msgspec.json.encode({"action": "subscribe", "channels": [AGG, CHAIN]}).decode())
        await ws.aclose()

    async def batch(k: int) -> None:
        limiter = trio.CapacityLimiter(50)

        async def one(n: int) -> None:
            async with limiter:
                await cycle(n)

        async with trio.open_nursery() as n:
            for i in range(k):
                n.start_soon(one, i)

    await batch(500)  # warm up
    await settle()
    fds0, tasks0 = fds(), trio.lowlevel.current_statistics().tasks_living
    with trio.fail_after(600):
        for _ in range(19):
            await batch(500)
    await settle()
    with trio.fail_after(10):
        while hub.connections:
            await trio.sleep(0.05)
    assert hub.channel(CHAIN).subscribers == 0 and hub.channel(AGG).subscribers == 0
    assert fds() - fds0 <= 5
    assert trio.lowlevel.current_statistics().tasks_living - tasks0 <= 10


@pytest.mark.slow
def test_sigterm_exits_promptly_even_with_a_websocket_client_that_stopped_reading(daemon_factory):
    import socket as _socket
    import subprocess
    import time

    import httpx

    from faults_helpers import daemon_env

    d = daemon_factory(env=daemon_env(ODTED_FEED_SYNTHETIC_SPEED="60")).start()
    host, port = "127.0.0.1", d.port
    sock = _socket.create_connection((host, port))
    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, 4096)
    sock.sendall((f"GET /__ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert b"101" in sock.recv(1024).split(b"\r\n")[0]

    def frame(text: str) -> bytes:  # a masked client text frame
        data = text.encode()
        mask = b"\x01\x02\x03\x04"
        head = bytes([0x81, 0x80 | len(data)]) if len(data) < 126 else bytes([0x81, 0xFE]) + len(data).to_bytes(2, "big")
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))

    sock.sendall(frame('{"token": "fault-test-token"}'))
    sock.sendall(frame('{"action": "subscribe", "channels": ["live_option_chain"]}'))
    time.sleep(5)  # the chain flows at 60 ticks/s; this client reads nothing
    t0 = time.monotonic()
    code = d.terminate(timeout=30)
    elapsed = time.monotonic() - t0
    sock.close()
    assert code == 0
    assert elapsed < 12, f"shutdown took {elapsed:.1f} s"
