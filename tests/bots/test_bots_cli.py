"""`odted bots list|start|stop` and `odted logs tail [--follow]` against a running daemon
(they talk to its HTTP API), with the URL and token from flags, the environment and
`cli.toml`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Queue

import httpx
import pytest

from bots_helpers import SPREAD

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ODTED = str(Path(sys.executable).parent / "odted")

TOKEN = "cli-test-token"
DAEMON_ENV = {
    "ODTED_AUTH_STATIC_TOKENS": f'["{TOKEN}"]',
    "ODTED_FEED_SYNTHETIC_DATE": "2025-01-15",
    "ODTED_FEED_SYNTHETIC_START_TIME": "09:59:57",
    "ODTED_LOGGING_LEVEL": "warning",
}


def cli_env(tmp_path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: no settings but `extra` (and an empty config home)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ODTED_URL", "ODTED_TOKEN", "XDG_CONFIG_HOME")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return {**env, **extra}


def odted(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ODTED, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_the_bots_and_logs_commands_drive_a_running_daemon(daemon_factory, tmp_path):
    d = daemon_factory(env=DAEMON_ENV).start()
    h = {"Authorization": TOKEN}
    strategy = httpx.post(f"{d.url}/strategies", json={"config": SPREAD}, headers=h).json()
    r = httpx.post(f"{d.url}/bots", headers=h, json={"strategy_id": strategy["id"], "name": "CLI bot",
                                                      "starting_capital": "25000"})
    assert r.status_code == 201, r.text
    bot = r.json()
    flags = ("--url", d.url, "--token", TOKEN)
    env = cli_env(tmp_path)
    by_env = cli_env(tmp_path, ODTED_URL=d.url, ODTED_TOKEN=TOKEN)

    # usage and settings
    for args in (("bots",), ("logs",), ("bots", "start"), ("bots", "stop", "--flatten"), ("logs", "tail")):
        r = odted(by_env, *args)
        assert r.returncode == 2 and r.stderr.startswith("odted: "), (args, r.stderr)
    r = odted(env, "bots", "list", "--url", d.url)
    assert r.returncode == 2 and "token is required" in r.stderr
    r = odted(env, "bots", "list", "--url", d.url, "--token", "wrong")
    assert r.returncode == 1 and r.stderr.startswith("odted: unauthorized:"), r.stderr
    r = odted(env, "bots", "list", "--url", "http://127.0.0.1:9", "--token", TOKEN)
    assert r.returncode == 1 and "cannot reach" in r.stderr

    # list, with flags
    r = odted(env, "bots", "list", *flags)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [bot["id"], "idle", "25000", "CLI", "bot"]

    # start, with the environment and the bot's name
    r = odted(by_env, "bots", "start", "cli bot")
    assert r.returncode == 0, r.stderr
    session_id, status, day = r.stdout.split()
    assert status in ("scheduled", "registering", "waiting_for_data", "running") and day == "2025-01-15"
    r = odted(by_env, "bots", "start", bot["id"])
    assert r.returncode == 1 and r.stderr.startswith("odted: bot_not_idle:"), r.stderr
    r = odted(by_env, "bots", "start", "no such bot")
    assert r.returncode == 1 and r.stderr.startswith("odted: not_found:"), r.stderr

    # logs tail, with cli.toml
    (tmp_path / "config" / "odted").mkdir(parents=True)
    (tmp_path / "config" / "odted" / "cli.toml").write_text(f'url = "{d.url}"\ntoken = "{TOKEN}"\n')
    log_url = f"{d.url}/bots/{bot['id']}/sessions/{session_id}/decision-log"
    wait_for(lambda: httpx.get(log_url, headers=h).json())
    r = odted(env, "logs", "tail", "CLI bot")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines and all(line.startswith("2025-01-15T") for line in lines)
    assert "running" in lines[0]
    r = odted(env, "logs", "tail", bot["id"], session_id)
    assert r.returncode == 0 and r.stdout.splitlines()[: len(lines)] == lines

    # --follow prints each entry once, new ones as they come (here: the stop's), until Ctrl-C
    follow = subprocess.Popen([ODTED, "logs", "tail", "CLI bot", "--follow"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    queue: Queue[str] = Queue()
    threading.Thread(target=lambda: [queue.put(x.rstrip("\n")) for x in follow.stdout], daemon=True).start()
    try:
        seen = [queue.get(timeout=20) for _ in lines]
        assert seen == lines
        # stop with --flatten: the active session moves to killing, then killed
        r = odted(env, "bots", "stop", "CLI bot", "--flatten")
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [session_id, "killing"]
        while not any("session killed" in line for line in seen):
            seen.append(queue.get(timeout=20))
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=10) == 0, follow.stderr.read()
    finally:
        if follow.poll() is None:
            follow.kill()
    time.sleep(0.2)
    while not queue.empty():
        seen.append(queue.get())
    assert len(seen) == len(set(seen)), "no entry is printed twice"

    session_url = f"{d.url}/bots/{bot['id']}/sessions/{session_id}"
    wait_for(lambda: httpx.get(session_url, headers=h).json()["status"] == "killed")
    r = odted(env, "bots", "stop", "CLI bot")
    assert r.returncode == 1 and "no active session" in r.stderr
    r = odted(env, "bots", "stop", "CLI bot", session_id)
    assert r.returncode == 1 and r.stderr.startswith("odted: session_terminal:"), r.stderr
    r = odted(env, "bots", "list")
    assert r.stdout.split()[:2] == [bot["id"], "killed"]
    assert d.terminate() == 0


def test_a_bad_cli_toml_is_a_usage_error(tmp_path):
    (tmp_path / "config" / "odted").mkdir(parents=True)
    (tmp_path / "config" / "odted" / "cli.toml").write_text('url = "http://x"\ncolour = "blue"\n')
    r = odted(cli_env(tmp_path), "bots", "list")
    assert r.returncode == 2 and "cli.toml" in r.stderr, r.stderr
