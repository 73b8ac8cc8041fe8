"""A lean HTTP/1.1 keep-alive load generator for the benchmarks (asyncio, raw sockets).

Each connection sends a request, reads the whole response (Content-Length framed) and
records the latency, for `duration` seconds. Kept minimal so the client costs far less
CPU per request than the server under test.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class LoadResult:
    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(p / 100 * len(s)))]

    def summary(self) -> str:
        return (f"{self.requests} requests in {self.seconds:.1f}s: {self.rps:,.0f} req/s, "
                f"p50 {self.pct(50) * 1000:.1f} ms, p99 {self.pct(99) * 1000:.1f} ms, statuses {self.statuses}")


async def _connection(host: str, port: int, make_request: Callable[[int], bytes], deadline: float,
                      result: LoadResult, conn_no: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = 0
    try:
        while time.perf_counter() < deadline:
            req = make_request(conn_no * 1_000_000 + i)
            i += 1
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - t0)
            result.requests += 1
            result.statuses[status] = result.statuses.get(status, 0) + 1
    finally:
        writer.close()


def run_load(host: str, port: int, make_request: Callable[[int], bytes], *, connections: int = 64,
             duration: float = 10.0) -> LoadResult:
    async def main() -> LoadResult:
        result = LoadResult()
        t0 = time.perf_counter()
        deadline = t0 + duration
        await asyncio.gather(*(_connection(host, port, make_request, deadline, result, n) for n in range(connections)))
        result.seconds = time.perf_counter() - t0
        return result

    return asyncio.run(main())


def get(path: str, headers: dict[str, str] | None = None) -> Callable[[int], bytes]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    raw = f"GET {path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode()
    return lambda i: raw


def post_json(path: str, body: Callable[[int], bytes], headers: Callable[[int], dict[str, str]] | None = None) -> Callable[[int], bytes]:
    def make(i: int) -> bytes:
        b = body(i)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers(i) if headers else {}).items())
        return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(b)}\r\n{extra}\r\n").encode() + b
    return make
