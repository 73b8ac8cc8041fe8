"""An answer that needs no body (401, 404, 405) to a request whose body is still on its way
never leaves the connection hanging: the answer waits for the body, the connection takes
the next request, and a client that reuses connections gets every answer."""

from __future__ import annotations

import re
import socket
import time

import requests
import trio

BODY = b'{"slippage": "0.10", "padding": "' + b"x" * 200 + b'"}'


def read_response(sock: socket.socket) -> bytes:
    """The status line of one response (its body read past), or b"" when the server closed."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    m = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
    while m and len(rest) < int(m.group(1)):
        rest += sock.recv(65536)
    return head.split(b"\r\n")[0]


def body_late_then_next_request(url: str, request_line: bytes) -> list[bytes | str]:
    """Send a request's head, its body a moment later (an answer that needs no body is
    ready by then), read the answer, then send a next request on the same connection."""
    host, port = url.removeprefix("http://").split(":")
    out: list[bytes | str] = []
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request_line + b" HTTP/1.1\r\nHost: odted\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(BODY))
        time.sleep(0.1)
        try:
            sock.sendall(BODY)
            out.append(read_response(sock))
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: odted\r\n\r\n")
            out.append(read_response(sock))
        except ConnectionError as e:
            out.append(type(e).__name__)
        except TimeoutError:
            out.append("hung")
    return out


async def test_a_response_before_the_body_never_hangs_the_connection(live_env):
    for request_line, status in [(b"PATCH /user", b"401"), (b"POST /live/orders", b"401"),
                                 (b"POST /nowhere", b"404"), (b"POST /health", b"405")]:
        got = await trio.to_thread.run_sync(body_late_then_next_request, live_env.url, request_line)
        assert got == [b"HTTP/1.1 " + status + b" ", b"HTTP/1.1 200 "], got


async def test_a_client_that_reuses_connections_gets_every_answer(live_env):
    _, token = await live_env.user()

    def many() -> list[int]:
        statuses = []
        with requests.Session() as s:
            for i in range(60):
                headers = {"Authorization": token} if i % 3 == 0 else {}
                r = s.patch(f"{live_env.url}/user", data=BODY, headers={**headers, "Content-Type": "application/json"},
                            timeout=3)
                statuses.append(r.status_code)
        return statuses

    statuses = await trio.to_thread.run_sync(many)
    assert set(statuses) == {204, 401} and len(statuses) == 60
