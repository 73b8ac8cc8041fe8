"""Start `odted serve` for a benchmark on a fresh state dir; stop it afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon(tuple):
    """(host, port) of a running daemon, with its state dir."""

    state: Path


@contextmanager
def daemon(args: list[str] | None = None, env: dict[str, str] | None = None) -> Iterator[Daemon]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="odted-bench-") as tmp:
        log = open(Path(tmp) / "daemon.log", "wb")
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "odted"), "serve", "--state-dir", f"{tmp}/state",
             "--bind", f"127.0.0.1:{port}", *(args or [])],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ODTED_LOGGING_LEVEL": "warning", **(env or {})},
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"daemon did not start:\n{(Path(tmp) / 'daemon.log').read_text()}")
                    time.sleep(0.1)
            d = Daemon(("127.0.0.1", port))
            d.state = Path(tmp) / "state"
            yield d
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
            log.close()


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}"
