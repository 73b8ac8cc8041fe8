"""`odted` as a real process: serve, signals, kill -9, sd_notify, CLI exits."""

import os
import socket
import subprocess
import time

import httpx
import pytest

import sys
from pathlib import Path

ODTED = str(Path(sys.executable).parent / "odted")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _postgres_pids_for(state_dir) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = open(f"/proc/{entry}/cmdline", "rb").read()
        except OSError:
            continue
        if b"postgres" in cmd and str(state_dir).encode() in cmd:
            pids.append(int(entry))
    return pids


def _wait_gone(state_dir, timeout=10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = _postgres_pids_for(state_dir)
        if not left:
            return []
        time.sleep(0.05)
    return _postgres_pids_for(state_dir)


def test_serve_answers_health_and_exits_0_on_sigterm_leaving_no_postgres(daemon_factory):
    d = daemon_factory().start()
    assert httpx.get(f"{d.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{d.url}/ready").status_code == 200
    assert _postgres_pids_for(d.state_dir), "the embedded server runs under the state dir"
    t0 = time.monotonic()
    assert d.terminate() == 0
    assert time.monotonic() - t0 < 10
    assert _wait_gone(d.state_dir) == []
    assert "odted stopped" in d.log()


def test_a_restart_after_kill_9_recovers_the_cluster_and_keeps_the_data(daemon_factory):
    d = daemon_factory().start()
    d.kill()
    assert _wait_gone(d.state_dir) == [], "the embedded server dies with its daemon"
    d2 = daemon_factory(d.state_dir).start()
    assert httpx.get(f"{d2.url}/ready").status_code == 200
    assert d2.terminate() == 0
    out = subprocess.run([ODTED, "db", "status", "--state-dir", str(d.state_dir)], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "0001_foundation" in out.stdout and "pending" not in out.stdout


def test_a_second_process_on_the_same_state_dir_is_refused_and_harms_nothing(daemon_factory):
    d = daemon_factory().start()
    out = subprocess.run([ODTED, "db", "status", "--state-dir", str(d.state_dir)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "in use by another odted process" in out.stderr
    assert httpx.get(f"{d.url}/ready").status_code == 200
    assert d.terminate() == 0


def test_sd_notify_ready_watchdog_and_stopping_arrive_on_the_socket(daemon_factory, tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    d = daemon_factory(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}).start()
    messages = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sum(m.startswith("WATCHDOG=1") for m in messages) < 2:
        messages.append(sock.recv(4096).decode())
    assert messages[0].startswith("READY=1")
    assert sum(m == "WATCHDOG=1" for m in messages) >= 2
    assert d.terminate() == 0
    rest = []
    sock.settimeout(2)
    try:
        while True:
            rest.append(sock.recv(4096).decode())
    except TimeoutError:
        pass
    assert "STOPPING=1" in rest
    sock.close()


def test_bad_config_exits_2_with_one_line(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[server]\nport = 1\n")
    out = subprocess.run([ODTED, "serve", "--config", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == "odted: config: server.port: unknown setting"


def test_bad_usage_exits_2_with_one_line():
    out = subprocess.run([ODTED, "serve", "--bogus"], capture_output=True, text=True)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    out = subprocess.run([ODTED], capture_output=True, text=True)
    assert out.returncode == 2


def test_version_prints_the_version():
    out = subprocess.run([ODTED, "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("odted ")


def test_db_migrate_then_status_on_a_fresh_state_dir(tmp_path):
    state = tmp_path / "s"
    out = subprocess.run([ODTED, "db", "migrate", "--state-dir", str(state)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "0001_foundation" in out.stdout
    again = subprocess.run([ODTED, "db", "migrate", "--state-dir", str(state)], capture_output=True, text=True)
    assert "applied 0 migration(s)" in again.stdout
    assert _wait_gone(state) == []
