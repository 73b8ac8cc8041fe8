"""systemd's notify protocol: READY=1, WATCHDOG=1, STOPPING=1 over `$NOTIFY_SOCKET`."""

from __future__ import annotations

import os
import socket
from typing import Mapping

import trio

__all__ = ["Notifier"]


class Notifier:
    """Sends notifications when `NOTIFY_SOCKET` is set; does nothing otherwise."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        self._addr = addr or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        self.watchdog_interval: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6 / 2

    @property
    def enabled(self) -> bool:
        return self._addr is not None

    def notify(self, message: str) -> None:
        if self._addr is None:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            try:
                s.connect(self._addr)
                s.sendall(message.encode())
            except OSError:
                pass  # systemd went away; nothing to tell

    def ready(self, status: str = "") -> None:
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    async def run_watchdog(self, healthy=lambda: True) -> None:
        """Ping the watchdog at half its interval while `healthy()` holds."""
        if self.watchdog_interval is None or self._addr is None:
            return
        while True:
            if healthy():
                self.notify("WATCHDOG=1")
            await trio.sleep(self.watchdog_interval)
